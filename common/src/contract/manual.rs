//! The parts of a tool's manual that follow its options (examples, notes, exit statuses),
//! written once per tool as data rather than as one block of prose, so that `--help` prints
//! them as text and the man page (xtask renders it in roff) puts each under its own
//! heading: EXAMPLES and EXIT STATUS, not one section called EXTRA.

use std::fmt::Write as _;

/// What a tool's long help says after its options, and its man page in sections of its own.
#[derive(Debug)]
pub struct Manual {
    /// Command lines with what each does.
    pub examples: &'static [Example],
    /// Paragraphs of prose, each hard-wrapped for the terminal (the man page refills them).
    pub notes: &'static [&'static str],
    /// Each exit status the tool can end with, and when.
    pub exit_status: &'static [(u8, &'static str)],
}

/// One example: a command line and what it does (empty when the line says it all).
#[derive(Debug)]
pub struct Example {
    pub command: &'static str,
    pub does: &'static str,
}

impl Manual {
    /// The text `--help` prints after the options: the examples with their explanations in
    /// one column, the notes, and the exit statuses in one sentence.
    pub fn help_text(&self) -> String {
        let column = self
            .examples
            .iter()
            .filter(|example| !example.does.is_empty())
            .map(|example| example.command.len())
            .max()
            .unwrap_or(0)
            + 2;
        let mut text = String::from("Examples:\n");
        for Example { command, does } in self.examples {
            if does.is_empty() {
                let _ = writeln!(text, "  {command}");
            } else {
                let _ = writeln!(text, "  {command:column$}{does}");
            }
        }
        for paragraph in self.notes {
            let _ = write!(text, "\n{paragraph}\n");
        }
        let statuses: Vec<String> = self
            .exit_status
            .iter()
            .map(|(status, when)| format!("{status} {when}"))
            .collect();
        let _ = write!(text, "\nExit status: {}.", statuses.join("; "));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_aligns_examples_and_joins_statuses() {
        let manual = Manual {
            examples: &[
                Example {
                    command: "tool -a",
                    does: "all of it",
                },
                Example {
                    command: "tool --long-option x",
                    does: "one",
                },
                Example {
                    command: "tool --json | jq .a_field_that_is_long_enough",
                    does: "",
                },
            ],
            notes: &["A note\non two lines."],
            exit_status: &[(0, "success"), (2, "usage error")],
        };
        assert_eq!(
            manual.help_text(),
            "Examples:\n  tool -a               all of it\n  tool --long-option x  one\n  \
             tool --json | jq .a_field_that_is_long_enough\n\nA note\non two lines.\n\n\
             Exit status: 0 success; 2 usage error."
        );
    }
}
