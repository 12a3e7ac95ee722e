//! The tools' man pages: clap_mangen renders what it knows from the clap definition (name,
//! synopsis, options, version), and this module adds in roff what clap has no section for:
//! the notes, EXAMPLES and EXIT STATUS from each tool's [`Manual`], and RECORD FIELDS read
//! from the tables of docs/FORMAT.md, where every field is documented once (a test below
//! holds those tables equal to the record types' fields).

use std::io;

use common::contract::manual::Manual;
use roff::{Inline, Roff, bold, roman};

/// docs/FORMAT.md as it was when xtask was built: the one place the fields are described.
pub const FORMAT_MD: &str = include_str!("../../docs/FORMAT.md");

/// A tool: its clap command, its manual's prose, and the FORMAT.md headings under which
/// the tables of the records it prints begin.
pub struct Tool {
    pub command: clap::Command,
    pub manual: &'static Manual,
    pub field_tables: &'static [&'static str],
}

/// The four tools, in the order of the man pages' SEE ALSO.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool {
            command: portscan::command(),
            manual: &portscan::MANUAL,
            field_tables: &[
                "## portscan (PortRecord)",
                "### Host discovery (HostRecord)",
            ],
        },
        Tool {
            command: proctree::command(),
            manual: &proctree::MANUAL,
            field_tables: &["### ProcessRecord fields"],
        },
        Tool {
            command: sockls::command(),
            manual: &sockls::MANUAL,
            field_tables: &["## sockls (SocketRecord)"],
        },
        Tool {
            command: svcname::command(),
            manual: &svcname::MANUAL,
            field_tables: &["## ServiceRecord (svcname)"],
        },
    ]
}

/// One row of a field table: the field names it documents (a row may document several,
/// `rtt_ms`, `rttvar_ms`), their type where the table has a type column, and the meaning.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldRow {
    pub names: Vec<String>,
    pub kind: Option<String>,
    pub meaning: String,
}

/// The first table after `heading` in `markdown`, as field rows; an error if the heading or
/// its table is missing, or the table has no field or meaning column.
pub fn field_table(markdown: &str, heading: &str) -> Result<Vec<FieldRow>, String> {
    let mut lines = markdown.lines().skip_while(|line| *line != heading);
    if lines.next().is_none() {
        return Err(format!("docs/FORMAT.md: no heading '{heading}'"));
    }
    let mut table = lines
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'));
    let header = table
        .next()
        .map(cells)
        .ok_or_else(|| format!("docs/FORMAT.md: no table after '{heading}'"))?;
    let column = |name: &str| {
        header
            .iter()
            .position(|cell| cell.eq_ignore_ascii_case(name))
    };
    let meaning = column("meaning")
        .ok_or_else(|| format!("docs/FORMAT.md: the table after '{heading}' has no meaning"))?;
    let kind = column("type");
    // The row under the header is the alignment row (|---|---|).
    Ok(table
        .skip(1)
        .map(cells)
        .map(|row| FieldRow {
            names: backticked(&row[0]).map(str::to_owned).collect(),
            kind: kind.and_then(|at| row.get(at).cloned()),
            meaning: row.get(meaning).cloned().unwrap_or_default(),
        })
        .collect())
}

/// A table row's cells, trimmed, with Markdown's `\|` read as a bar inside a cell.
fn cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cell.push(chars.next().unwrap_or('|')),
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    cells
}

/// The `code` spans of a Markdown text.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// Markdown text as roff inlines: `code` spans bold, the rest roman.
fn inlines(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(
            |(at, part)| {
                if at % 2 == 1 { bold(part) } else { roman(part) }
            },
        )
        .collect()
}

/// A hard-wrapped paragraph as one line for roff, which fills it to the reader's width.
fn refill(paragraph: &str) -> String {
    paragraph.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The man page of `tool`, in roff: clap_mangen's sections with the manual's sections in
/// their conventional places (notes in DESCRIPTION; RECORD FIELDS, EXIT STATUS, EXAMPLES
/// and SEE ALSO after OPTIONS).
pub fn man_page(tool: &Tool, others: &[&str]) -> Result<String, String> {
    // The manual goes in sections of its own below, not clap_mangen's EXTRA.
    let command = tool.command.clone().after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(command);
    let mut page = Page::default();
    page.clap(&man, clap_mangen::Man::render_title)?;
    page.clap(&man, clap_mangen::Man::render_name_section)?;
    page.clap(&man, clap_mangen::Man::render_synopsis_section)?;
    page.clap(&man, clap_mangen::Man::render_description_section)?;
    let mut ours = Roff::new();
    for paragraph in tool.manual.notes {
        ours.control("PP", []).text([roman(refill(paragraph))]);
    }
    page.push(&ours.render());
    page.clap(&man, clap_mangen::Man::render_options_section)?;

    let mut ours = Roff::new();
    record_fields(&mut ours, tool.field_tables)?;
    ours.control("SH", ["EXIT STATUS"]);
    for (status, when) in tool.manual.exit_status {
        ours.control("TP", [])
            .text([bold(status.to_string())])
            .text([roman(format!("{when}."))]);
    }
    ours.control("SH", ["EXAMPLES"]);
    for example in tool.manual.examples {
        ours.control("TP", []).text([bold(example.command)]);
        if !example.does.is_empty() {
            ours.text([roman(format!("{}.", example.does))]);
        }
    }
    ours.control("SH", ["SEE ALSO"]);
    let see_also: Vec<String> = others.iter().map(|name| format!("{name}(1)")).collect();
    ours.text([roman(see_also.join(", "))]);
    page.push(&ours.render());
    page.clap(&man, clap_mangen::Man::render_version_section)?;
    Ok(page.0)
}

/// A man page put together from renderings that each begin with roff's preamble (the
/// apostrophe string): it keeps the first and drops the others.
#[derive(Default)]
struct Page(String);

impl Page {
    fn push(&mut self, rendered: &str) {
        let preamble = Roff::new().render();
        match rendered.strip_prefix(&preamble) {
            Some(body) if !self.0.is_empty() => self.0.push_str(body),
            _ => self.0.push_str(rendered),
        }
    }

    fn clap(
        &mut self,
        man: &clap_mangen::Man,
        render: fn(&clap_mangen::Man, &mut dyn io::Write) -> io::Result<()>,
    ) -> Result<(), String> {
        let mut rendered = Vec::new();
        render(man, &mut rendered).map_err(|e| e.to_string())?;
        self.push(&String::from_utf8(rendered).map_err(|e| e.to_string())?);
        Ok(())
    }
}

/// The RECORD FIELDS section: each table's fields with their type and meaning.
fn record_fields(roff: &mut Roff, headings: &[&str]) -> Result<(), String> {
    roff.control("SH", ["RECORD FIELDS"]).text([roman(
        "NDJSON (--json) and CSV (--csv) records carry these fields, in this order, under \
         these names; absent values are null in JSON and empty in CSV. Text records show \
         some of them, in the columns --header names. The whole contract is docs/FORMAT.md \
         in the source (/usr/share/doc/nettools/FORMAT.md where the Debian package is \
         installed).",
    )]);
    for heading in headings {
        let record = heading.trim_start_matches('#').trim();
        roff.control("SS", [record]);
        for row in field_table(FORMAT_MD, heading)? {
            let mut term = vec![bold(row.names.join(", "))];
            if let Some(kind) = row.kind {
                term.push(roman(format!(" ({})", kind.replace('`', ""))));
            }
            roff.control("TP", [])
                .text(term)
                .text(inlines(&row.meaning));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::contract::record::{
        HostRecord, PortRecord, ProcessRecord, ServiceRecord, SocketRecord,
    };
    use serde::Deserialize;
    use serde::de::{self, Visitor};

    /// The field names a record type reads, as its derived `Deserialize` declares them:
    /// a deserializer that stops at the struct and keeps the list it is handed.
    fn fields_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        struct Introspect<'a>(&'a mut Vec<&'static str>);
        impl<'de> de::Deserializer<'de> for Introspect<'_> {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend_from_slice(fields);
                Err(de::Error::custom("only the field names were wanted"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
                enum identifier ignored_any
            }
        }
        let mut fields = Vec::new();
        let _ = T::deserialize(Introspect(&mut fields));
        fields
    }

    fn documented(heading: &str) -> Vec<String> {
        field_table(FORMAT_MD, heading)
            .unwrap()
            .into_iter()
            .flat_map(|row| row.names)
            .collect()
    }

    #[test]
    fn format_md_documents_every_field_of_every_record_in_order() {
        let cases = [
            ("## portscan (PortRecord)", fields_of::<PortRecord>()),
            ("### Host discovery (HostRecord)", fields_of::<HostRecord>()),
            ("### ProcessRecord fields", fields_of::<ProcessRecord>()),
            ("## sockls (SocketRecord)", fields_of::<SocketRecord>()),
            ("## ServiceRecord (svcname)", fields_of::<ServiceRecord>()),
        ];
        for (heading, fields) in cases {
            assert!(fields.len() > 3, "{heading}: {fields:?}");
            assert_eq!(documented(heading), fields, "docs/FORMAT.md, {heading}");
        }
    }

    #[test]
    fn every_tool_names_tables_that_exist() {
        for tool in tools() {
            for heading in tool.field_tables {
                assert!(!documented(heading).is_empty(), "{heading}");
            }
        }
    }

    #[test]
    fn a_table_row_reads_bars_types_and_several_names() {
        let markdown = "## x (XRecord)\n\ntext\n\n| field | type | meaning |\n|---|---|---|\n\
                        | `a`, `b` | number | `a\\|b` or not |\n| `c` | string | c |\n## next\n";
        assert_eq!(
            field_table(markdown, "## x (XRecord)").unwrap(),
            [
                FieldRow {
                    names: vec!["a".into(), "b".into()],
                    kind: Some("number".into()),
                    meaning: "`a|b` or not".into(),
                },
                FieldRow {
                    names: vec!["c".into()],
                    kind: Some("string".into()),
                    meaning: "c".into(),
                },
            ]
        );
        assert!(field_table(markdown, "## y").is_err());
    }

    #[test]
    fn the_page_has_its_sections_and_no_extra() {
        let tools = tools();
        let page = man_page(&tools[0], &["sockls"]).unwrap();
        for section in [
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH \"RECORD FIELDS\"",
            ".SS \"portscan (PortRecord)\"",
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(!page.contains("EXTRA"));
        assert_eq!(page.matches(&Roff::new().render()).count(), 1);
    }
}
