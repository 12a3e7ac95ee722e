//! clap's usage errors said the way every other message is, `tool: what: why`, rather than
//! clap's `error: ...` over a usage block. The sentence is built from the error's kind and
//! context, which clap keeps apart from its rendering, so a change in clap's layout cannot
//! garble it; its details (the possible values, a similar option, `--` before a value that
//! looks like one) are kept.

use std::fmt::Write as _;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::contract::error::Error;

impl Error {
    /// The usage error clap found in a command line: one line saying what is wrong, with
    /// the possible values where clap knows them, and one line of tips where it has any.
    pub fn from_clap(error: &clap::Error) -> Self {
        let mut message = sentence(error).unwrap_or_else(|| rendered_sentence(error));
        if let Some(ContextValue::Strings(values)) = error.get(ContextKind::ValidValue)
            && !values.is_empty()
        {
            let _ = write!(message, " [possible values: {}]", values.join(", "));
        }
        let tips = tips(error);
        Self::Usage {
            message,
            tip: (!tips.is_empty()).then(|| format!("tip: {}", tips.join("; "))),
        }
    }
}

/// The sentence for the kinds a command line of ours can meet, in clap's words; `None` for
/// any other kind, or a context that lacks what the sentence needs.
fn sentence(error: &clap::Error) -> Option<String> {
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let argument = text(ContextKind::InvalidArg);
    let value = text(ContextKind::InvalidValue);
    Some(match error.kind() {
        ErrorKind::UnknownArgument => format!("unexpected argument '{}' found", argument?),
        ErrorKind::InvalidValue if value?.is_empty() => {
            format!(
                "a value is required for '{}' but none was supplied",
                argument?
            )
        }
        ErrorKind::InvalidValue => format!("invalid value '{}' for '{}'", value?, argument?),
        // The reason is our value parser's own message (a bad port list, a bad time).
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(error)?;
            format!("invalid value '{}' for '{}': {why}", value?, argument?)
        }
        ErrorKind::ArgumentConflict => {
            let argument = argument?;
            match error.get(ContextKind::PriorArg) {
                Some(ContextValue::String(prior)) if prior == argument => {
                    format!("the argument '{argument}' cannot be used multiple times")
                }
                Some(ContextValue::String(prior)) => {
                    format!("the argument '{argument}' cannot be used with '{prior}'")
                }
                Some(ContextValue::Strings(priors)) => format!(
                    "the argument '{argument}' cannot be used with '{}'",
                    priors.join("', '")
                ),
                _ => format!(
                    "the argument '{argument}' cannot be used with one or more of the other \
                     specified arguments"
                ),
            }
        }
        // The arguments missing are a list; clap's rendering puts them on lines of their
        // own, which the first line alone would lose.
        ErrorKind::MissingRequiredArgument => match error.get(ContextKind::InvalidArg)? {
            ContextValue::Strings(missing) if !missing.is_empty() => format!(
                "the following required arguments were not provided: '{}'",
                missing.join("', '")
            ),
            _ => return None,
        },
        _ => return None,
    })
}

/// clap's own sentence, for the kinds our command lines hardly meet (an argument that is
/// not UTF-8, for one): the first line of its rendering, which is the sentence after an
/// `error: ` label; the lines after it are the usage block and the pointer to --help.
fn rendered_sentence(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// clap's suggestions: a similar option or value, and its tips.
fn tips(error: &clap::Error) -> Vec<String> {
    let mut tips = Vec::new();
    for (kind, noun) in [
        (ContextKind::SuggestedArg, "argument"),
        (ContextKind::SuggestedValue, "value"),
    ] {
        match error.get(kind) {
            Some(ContextValue::String(similar)) => {
                tips.push(format!("a similar {noun} exists: '{similar}'"));
            }
            Some(ContextValue::Strings(similar)) if similar.len() == 1 => {
                tips.push(format!("a similar {noun} exists: '{}'", similar[0]));
            }
            Some(ContextValue::Strings(similar)) if !similar.is_empty() => {
                tips.push(format!(
                    "some similar {noun}s exist: '{}'",
                    similar.join("', '")
                ));
            }
            _ => {}
        }
    }
    if let Some(ContextValue::StyledStrs(suggestions)) = error.get(ContextKind::Suggested) {
        tips.extend(suggestions.iter().map(ToString::to_string));
    }
    tips
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use clap::{Arg, ArgAction, Command, value_parser};

    use super::*;

    /// A command line with one of each kind of argument the tools have.
    fn command() -> Command {
        Command::new("tool")
            .arg(
                Arg::new("ports")
                    .short('p')
                    .long("ports")
                    .value_name("LIST")
                    .value_parser(|text: &str| {
                        text.parse::<u16>()
                            .map_err(|_| format!("'{text}' is not a port list"))
                    }),
            )
            .arg(
                Arg::new("timing")
                    .short('T')
                    .value_name("0-5")
                    .value_parser(value_parser!(u8).range(0..=5)),
            )
            .arg(
                Arg::new("show")
                    .long("show")
                    .value_name("STATES")
                    .value_parser(["open", "closed", "filtered"]),
            )
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue))
            .arg(
                Arg::new("csv")
                    .long("csv")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("json"),
            )
            .arg(Arg::new("name").long("name"))
            .arg(Arg::new("watch").long("watch").value_name("INTERVAL"))
            .arg(Arg::new("count").long("count").requires("watch"))
            .arg(Arg::new("operands").num_args(0..))
    }

    /// What each line of the report says, after `tool: `.
    fn lines(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("tool").chain(args.iter().copied());
        let error = command().try_get_matches_from(args).unwrap_err();
        match Error::from_clap(&error) {
            Error::Usage { message, tip } => std::iter::once(message).chain(tip).collect(),
            other => panic!("not a usage error: {other:?}"),
        }
    }

    #[test]
    fn common_mistakes_are_said_in_one_or_two_lines() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["--bogus"],
                &[
                    "unexpected argument '--bogus' found",
                    "tip: to pass '--bogus' as a value, use '-- --bogus'",
                ],
            ),
            (
                &["--jsn"],
                &[
                    "unexpected argument '--jsn' found",
                    "tip: a similar argument exists: '--json'",
                ],
            ),
            (
                &["-p"],
                &["a value is required for '--ports <LIST>' but none was supplied"],
            ),
            (
                &["--show", "opne"],
                &[
                    "invalid value 'opne' for '--show <STATES>' \
                     [possible values: open, closed, filtered]",
                    "tip: a similar value exists: 'open'",
                ],
            ),
            (
                &["-p", "x"],
                &["invalid value 'x' for '--ports <LIST>': 'x' is not a port list"],
            ),
            (
                &["-T", "9"],
                &["invalid value '9' for '-T <0-5>': 9 is not in 0..=5"],
            ),
            (
                &["--json", "--csv"],
                &["the argument '--json' cannot be used with '--csv'"],
            ),
            (
                &["--name", "a", "--name", "b"],
                &["the argument '--name <name>' cannot be used multiple times"],
            ),
            (
                &["--count", "2"],
                &["the following required arguments were not provided: '--watch <INTERVAL>'"],
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(lines(args), *expected, "{args:?}");
        }
    }

    #[test]
    fn several_tips_share_one_line() {
        let mut error = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(&command());
        let string = |text: &str| ContextValue::String(text.to_owned());
        error.insert(ContextKind::InvalidArg, string("--jso"));
        error.insert(
            ContextKind::SuggestedArg,
            ContextValue::Strings(vec!["--json".into(), "--jsonl".into()]),
        );
        error.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec!["to pass '--jso' as a value, use '-- --jso'".into()]),
        );
        let Error::Usage { message, tip } = Error::from_clap(&error) else {
            panic!("not a usage error");
        };
        assert_eq!(message, "unexpected argument '--jso' found");
        assert_eq!(
            tip.as_deref(),
            Some(
                "tip: some similar arguments exist: '--json', '--jsonl'; \
                 to pass '--jso' as a value, use '-- --jso'"
            )
        );
    }

    #[test]
    fn other_kinds_keep_clap_s_sentence() {
        let error = command()
            .try_get_matches_from([OsString::from("tool"), OsString::from_vec(vec![0xff])])
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidUtf8);
        let Error::Usage { message, tip } = Error::from_clap(&error) else {
            panic!("not a usage error");
        };
        assert_eq!(
            message,
            "invalid UTF-8 was detected in one or more arguments"
        );
        assert_eq!(tip, None);
    }
}
