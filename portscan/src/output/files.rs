//! The output files nmap's users feed to other tools (-oN, -oX, -oG, our -oJ, and -oA for
//! all four), beside what goes to stdout. Every file is opened before the first probe, so
//! that a path that cannot be written is a usage error while nothing has been sent yet;
//! a write that fails later names the file it was for.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use common::contract::error::{Error, Result, describe_io_error};

/// The stylesheet nmap's XML names unless told otherwise.
pub const DEFAULT_STYLESHEET: &str = "/usr/share/nmap/nmap.xsl";

/// One output format a file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Xml,
    Grepable,
    Json,
}

impl Kind {
    pub const ALL: [Self; 4] = [Self::Normal, Self::Xml, Self::Grepable, Self::Json];

    /// The format's place in [`Kind::ALL`], and in the arrays indexed like it.
    pub fn index(self) -> usize {
        self as usize
    }

    /// nmap's flag for the format (ours for NDJSON).
    pub fn flag(self) -> &'static str {
        match self {
            Self::Normal => "-oN",
            Self::Xml => "-oX",
            Self::Grepable => "-oG",
            Self::Json => "-oJ",
        }
    }

    /// The extension -oA gives the format's file, nmap's where nmap has one.
    fn extension(self) -> &'static str {
        match self {
            Self::Normal => "nmap",
            Self::Xml => "xml",
            Self::Grepable => "gnmap",
            Self::Json => "json",
        }
    }
}

/// The files asked for: a path per format (`-` is stdout), and what the XML file says of
/// its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Indexed as [`Kind::ALL`].
    pub paths: [Option<String>; 4],
    /// The stylesheet the XML names, if any.
    pub stylesheet: Option<String>,
    /// The command line, as the files record it.
    pub command_line: String,
}

impl Wanted {
    /// From the flags: one path per format, or `-oA BASE`'s four.
    pub fn new(
        paths: [Option<String>; 4],
        all: Option<&str>,
        stylesheet: Option<String>,
        no_stylesheet: bool,
        command_line: String,
    ) -> Result<Self> {
        let paths = match all {
            // As nmap refuses it: four formats cannot share stdout, and `-.nmap` and its
            // siblings are no one's wish.
            Some("-") => {
                return Err(Error::usage(
                    "-oA -: -oA takes a base name for its four files; stdout (-) can take one format (-oN -, -oX -, -oG -, -oJ -)",
                ));
            }
            Some(base) => Kind::ALL.map(|kind| Some(format!("{base}.{}", kind.extension()))),
            None => paths,
        };
        let to_stdout: Vec<&'static str> = Kind::ALL
            .iter()
            .zip(&paths)
            .filter(|(_, path)| path.as_deref() == Some("-"))
            .map(|(kind, _)| kind.flag())
            .collect();
        if to_stdout.len() > 1 {
            return Err(Error::usage(format!(
                "{} all write to stdout (-); one at most can",
                to_stdout.join(", ")
            )));
        }
        Ok(Self {
            paths,
            stylesheet: if no_stylesheet {
                None
            } else {
                Some(stylesheet.unwrap_or_else(|| DEFAULT_STYLESHEET.to_owned()))
            },
            command_line,
        })
    }

    pub fn path(&self, kind: Kind) -> Option<&str> {
        self.paths[kind.index()].as_deref()
    }

    /// Whether some format goes to stdout, which then gets nothing else.
    pub fn takes_stdout(&self) -> bool {
        self.paths.iter().flatten().any(|path| path == "-")
    }

    /// Whether a document-shaped file (normal, XML, grepable) is asked for: they need the
    /// per-host report.
    pub fn any_document(&self) -> bool {
        [Kind::Normal, Kind::Xml, Kind::Grepable]
            .into_iter()
            .any(|kind| self.path(kind).is_some())
    }
}

/// Where one format goes: stdout, or a file opened at the start.
pub struct Dest<'a> {
    /// "-oX scan.xml"; `None` for stdout, whose failures are the run's output errors (a
    /// closed pipe is quiet).
    label: Option<String>,
    out: Box<dyn Write + 'a>,
}

impl<'a> Dest<'a> {
    pub fn stdout(out: impl Write + 'a) -> Self {
        Self {
            label: None,
            out: Box::new(out),
        }
    }

    /// Turns a write failure into the run's error: an output error on stdout, or one that
    /// names the file.
    pub fn error(&self, error: io::Error) -> Error {
        relabel(self.label(), Error::output(error))
    }

    /// "-oX scan.xml"; `None` for stdout.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
}

/// A record writer's failure, made one that names the file (`label`) it was writing.
pub fn relabel(label: Option<&str>, error: Error) -> Error {
    match (label, error) {
        (Some(label), Error::Output(source)) => Error::io(format!("writing {label}"), source),
        (_, other) => other,
    }
}

impl Write for Dest<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Opens (creates or truncates) every file `wanted` names, giving `stdout` to the format
/// that asks for `-`; a path that cannot be opened is a usage error, before any probe.
/// Returns the destinations indexed as [`Kind::ALL`], and `stdout` back if no format took
/// it.
pub fn open<'a, W: Write + 'a>(
    wanted: &Wanted,
    stdout: W,
) -> Result<([Option<Dest<'a>>; 4], Option<W>)> {
    let mut stdout = Some(stdout);
    let mut dests: [Option<Dest<'a>>; 4] = Default::default();
    for (index, kind) in Kind::ALL.into_iter().enumerate() {
        let Some(path) = wanted.paths[index].as_deref() else {
            continue;
        };
        dests[index] = Some(if path == "-" {
            Dest::stdout(stdout.take().expect("one format at most takes stdout"))
        } else {
            let label = format!("{} {path}", kind.flag());
            let file = File::create(path)
                .map_err(|e| Error::usage(format!("{label}: {}", describe_io_error(&e))))?;
            Dest {
                label: Some(label),
                out: Box::new(BufWriter::new(file)),
            }
        });
    }
    Ok((dests, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(paths: [Option<&str>; 4], all: Option<&str>) -> Result<Wanted> {
        Wanted::new(
            paths.map(|path| path.map(str::to_owned)),
            all,
            None,
            false,
            String::new(),
        )
    }

    #[test]
    fn each_kind_is_at_its_index() {
        for (index, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), index);
        }
    }

    #[test]
    fn all_names_four_files_by_nmaps_extensions() {
        let all = wanted([None; 4], Some("scans/today")).unwrap();
        assert_eq!(
            all.paths,
            ["nmap", "xml", "gnmap", "json"].map(|ext| Some(format!("scans/today.{ext}")))
        );
        assert_eq!(all.stylesheet.as_deref(), Some(DEFAULT_STYLESHEET));
        assert!(all.any_document() && !all.takes_stdout());
    }

    #[test]
    fn one_format_at_most_goes_to_stdout() {
        let one = wanted([None, Some("-"), Some("g"), None], None).unwrap();
        assert!(one.takes_stdout());
        let two = wanted([Some("-"), Some("-"), None, None], None).unwrap_err();
        assert_eq!(
            two.to_string(),
            "-oN, -oX all write to stdout (-); one at most can"
        );
        assert_eq!(two.exit_code(), 2);
        let json_only = wanted([None, None, None, Some("j")], None).unwrap();
        assert!(!json_only.any_document());
        let all = wanted([None; 4], Some("-")).unwrap_err();
        assert!(all.to_string().starts_with("-oA -: "), "{all}");
        assert_eq!(all.exit_code(), 2);
    }

    #[test]
    fn an_unwritable_path_is_a_usage_error_naming_it() {
        let bad = wanted([None, Some("/nonexistent/x.xml"), None, None], None).unwrap();
        let Err(error) = open(&bad, Vec::new()) else {
            panic!("opened /nonexistent/x.xml");
        };
        assert_eq!(
            error.to_string(),
            "-oX /nonexistent/x.xml: No such file or directory"
        );
        assert_eq!(error.exit_code(), 2);
    }
}
