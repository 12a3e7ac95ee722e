//! Shell completions: clap_complete writes them from the clap definitions, and this module
//! teaches them portscan's nmap spellings (`-iL`, `-sV`, `-oX`...), which clap never sees:
//! portscan rewrites them into long options before parsing (`portscan::nmap_spellings`),
//! since clap cannot declare an option of two letters after one dash. The spellings are
//! found by asking that rewrite, so a spelling added there reaches the completions too.

use std::ffi::OsString;
use std::fmt::Write as _;

use clap_complete::Shell;

/// An nmap spelling and the long option portscan reads it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spelling {
    /// As typed: `-iL`.
    pub nmap: String,
    /// What it becomes: `--input-list`.
    pub long: String,
    /// Whether it takes a value (a file, for every such spelling portscan has).
    pub takes_value: bool,
}

/// The one- and two-letter single-dash options `rewrite` turns into a long option of
/// `command`: every `-X` and `-XY` (X a letter, Y a letter or a digit), asked in turn.
pub fn nmap_spellings(
    command: &clap::Command,
    rewrite: impl Fn(Vec<OsString>) -> Vec<OsString>,
) -> Vec<Spelling> {
    let letters = ('a'..='z').chain('A'..='Z');
    let seconds: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let candidates = letters.flat_map(|first| {
        std::iter::once(format!("-{first}")).chain(
            seconds
                .iter()
                .map(move |second| format!("-{first}{second}")),
        )
    });
    candidates
        .filter_map(|nmap| {
            let [rewritten] = rewrite(vec![OsString::from(&nmap)]).try_into().ok()?;
            let long = rewritten.into_string().ok()?;
            let arg = command.get_arguments().find(|arg| {
                arg.get_long()
                    .is_some_and(|name| long == format!("--{name}"))
            })?;
            Some(Spelling {
                takes_value: arg.get_action().takes_values(),
                long,
                nmap,
            })
        })
        .collect()
}

/// The completion script of `command` for `shell`, offering `spellings` beside the
/// options clap knows (value-taking ones complete file names, as their long options do).
pub fn script(shell: Shell, command: &mut clap::Command, spellings: &[Spelling]) -> String {
    let name = command.get_name().to_owned();
    let mut generated = Vec::new();
    clap_complete::generate(shell, command, &name, &mut generated);
    let generated = String::from_utf8_lossy(&generated).into_owned();
    if spellings.is_empty() {
        return generated;
    }
    match shell {
        Shell::Bash => bash(&generated, &name, spellings),
        Shell::Zsh => zsh(&generated, spellings),
        Shell::Fish => fish(generated, &name, spellings),
        _ => generated,
    }
}

/// Bash: the spellings join the tool's word list, and those that take a file complete one.
fn bash(generated: &str, name: &str, spellings: &[Spelling]) -> String {
    let words: Vec<&str> = spellings.iter().map(|s| s.nmap.as_str()).collect();
    let opts = format!("        {name})\n            opts=\"");
    let mut values = String::new();
    for s in spellings.iter().filter(|s| s.takes_value) {
        let _ = write!(
            values,
            "                {})\n                    COMPREPLY=($(compgen -f \"${{cur}}\"))\n                    return 0\n                    ;;\n",
            s.nmap
        );
    }
    let prev = "            case \"${prev}\" in\n";
    generated
        .replacen(&opts, &format!("{opts}{} ", words.join(" ")), 1)
        .replacen(prev, &format!("{prev}{values}"), 1)
}

/// Zsh: a spec per spelling at the head of `_arguments`' list (`+` lets the file follow
/// glued on or as the next word, as portscan accepts it).
fn zsh(generated: &str, spellings: &[Spelling]) -> String {
    let mut specs = String::new();
    for s in spellings {
        let value = if s.takes_value { "+" } else { "" };
        let file = if s.takes_value { ":FILE:_files" } else { "" };
        let _ = writeln!(specs, "'{}{value}[same as {}]{file}' \\", s.nmap, s.long);
    }
    let head = "_arguments \"${_arguments_options[@]}\" : \\\n";
    generated.replacen(head, &format!("{head}{specs}"), 1)
}

/// Fish: old-style options (`-o`), one dash and a word, which is what these are.
fn fish(mut generated: String, name: &str, spellings: &[Spelling]) -> String {
    for s in spellings {
        let value = if s.takes_value { " -r -F" } else { "" };
        let _ = writeln!(
            generated,
            "complete -c {name} -o {} -d 'same as {}'{value}",
            &s.nmap[1..],
            s.long
        );
    }
    generated
}

/// Every shell the completions are made for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// A tool's completion script for `shell`, with portscan's nmap spellings.
pub fn tool_script(shell: Shell, mut command: clap::Command) -> String {
    let spellings = if command.get_name() == "portscan" {
        nmap_spellings(&command, portscan::nmap_spellings)
    } else {
        Vec::new()
    };
    script(shell, &mut command, &spellings)
}

/// The file `make completions` writes a tool's script for `shell` to, in the shell's own
/// folder (`make install` and `make deb` read them from there).
pub fn file_name(shell: Shell, tool: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{tool}"),
        _ => format!("{tool}.{shell}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spellings() -> Vec<Spelling> {
        nmap_spellings(&portscan::command(), portscan::nmap_spellings)
    }

    #[test]
    fn portscan_s_rewrite_yields_its_nmap_spellings() {
        let found = spellings();
        let find = |nmap: &str| found.iter().find(|s| s.nmap == nmap).cloned();
        assert_eq!(
            find("-iL"),
            Some(Spelling {
                nmap: "-iL".into(),
                long: "--input-list".into(),
                takes_value: true,
            })
        );
        assert_eq!(
            find("-sV").map(|s| (s.long, s.takes_value)),
            Some(("--service-version".into(), false))
        );
        for nmap in [
            "-sT", "-sS", "-sU", "-sn", "-Pn", "-PE", "-r", "-oN", "-oX", "-oG", "-oJ", "-oA",
        ] {
            assert!(find(nmap).is_some(), "{nmap} in {found:?}");
        }
        // Options clap knows itself are not rewritten, so not listed twice.
        assert!(find("-p").is_none() && find("-F").is_none());
    }

    #[test]
    fn each_shell_s_script_offers_them() {
        let found = spellings();
        for shell in SHELLS {
            let script = tool_script(shell, portscan::command());
            let plain = clap_complete_plain(shell);
            assert!(script.len() > plain.len(), "{shell}: nothing added");
            let needle = match shell {
                Shell::Bash => "opts=\"-iL ".to_owned(),
                Shell::Zsh => "'-iL+[same as --input-list]:FILE:_files' \\".to_owned(),
                _ => "complete -c portscan -o iL -d 'same as --input-list' -r -F".to_owned(),
            };
            assert!(script.contains(&needle), "{shell}:\n{script}");
            for spelling in &found {
                assert!(
                    script.contains(&spelling.nmap[1..]),
                    "{shell}: {}",
                    spelling.nmap
                );
            }
        }
    }

    fn clap_complete_plain(shell: Shell) -> String {
        let mut generated = Vec::new();
        clap_complete::generate(shell, &mut portscan::command(), "portscan", &mut generated);
        String::from_utf8(generated).unwrap()
    }
}
