//! The man pages and shell completions xtask generates (`make man`, `make completions`),
//! read by the programs that read them: man, bash, zsh and fish.

use std::path::PathBuf;
use std::process::Command;

use crate::fixtures::{TempDir, require_program};
use crate::util::{LIMIT, run, stdout_text};
use clap_complete::Shell;
use xtask::completion::{file_name, tool_script};
use xtask::manual::{man_page, tools};

/// Writes each tool's script for `shell` into `dir`; returns portscan's.
fn write_scripts(dir: &TempDir, shell: Shell) -> PathBuf {
    for tool in tools() {
        let name = tool.command.get_name().to_owned();
        std::fs::write(
            dir.join(&file_name(shell, &name)),
            tool_script(shell, tool.command),
        )
        .unwrap();
    }
    dir.join(&file_name(shell, "portscan"))
}

fn shell_output(program: &str, args: &[&str], dir: &TempDir) -> String {
    let output = run(
        Command::new(program).args(args).current_dir(dir.join("")),
        LIMIT,
    );
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_text(&output)
}

#[test]
fn man_renders_every_page_with_its_sections_and_no_warning() {
    require_program("man", &["--version"]);
    let dir = TempDir::new("ops-man");
    let tools = tools();
    for tool in &tools {
        let name = tool.command.get_name();
        let path = dir.join(&format!("{name}.1"));
        std::fs::write(&path, man_page(tool, &["sockls"]).unwrap()).unwrap();
        let output = run(
            Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80")
                .env("LC_ALL", "C.UTF-8")
                .env("MANPAGER", "cat"),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty(),
            "{name}: {stderr}"
        );
        let page = stdout_text(&output);
        let headings: Vec<&str> = page
            .lines()
            .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
            .collect();
        for heading in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "RECORD FIELDS",
        ] {
            assert!(
                headings.contains(&heading),
                "{name}: {heading} in {headings:?}"
            );
        }
        for heading in ["EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
            assert!(
                headings.contains(&heading),
                "{name}: {heading} in {headings:?}"
            );
        }
        assert!(!headings.contains(&"EXTRA"), "{name}: {headings:?}");
        // The examples are the ones --help shows, and a usage error is status 2 in both.
        assert!(page.contains(tool.manual.examples[0].command), "{name}");
        assert!(page.contains("usage error"), "{name}");
    }
}

#[test]
fn bash_completes_nmap_spellings_and_their_files() {
    require_program("bash", &["--version"]);
    let dir = TempDir::new("ops-bash-completion");
    let script = write_scripts(&dir, Shell::Bash);
    std::fs::write(dir.join("scan-targets.txt"), "127.0.0.1\n").unwrap();
    let complete = |words: &str| {
        let program = format!(
            "source {}\ncomplete -p portscan\nCOMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             _portscan portscan \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        shell_output("bash", &["--norc", "--noprofile", "-c", &program], &dir)
    };
    let options = complete("portscan -s");
    let registered = options.lines().next().unwrap_or_default();
    assert!(
        registered.starts_with("complete ") && registered.ends_with(" -F _portscan portscan"),
        "not registered: {options}"
    );
    let offered: Vec<&str> = options.lines().skip(1).collect();
    for nmap in ["-sV", "-sU", "-sT", "-sS", "-sn"] {
        assert!(offered.contains(&nmap), "{nmap} in {offered:?}");
    }
    assert!(complete("portscan -i").lines().any(|line| line == "-iL"));
    for flag in ["-iL", "-oX", "-oA"] {
        let files = complete(&format!("portscan {flag} scan-"));
        assert_eq!(
            files.lines().nth(1),
            Some("scan-targets.txt"),
            "{flag}: {files}"
        );
    }
}

#[test]
fn zsh_hands_the_nmap_spellings_to_arguments() {
    require_program("zsh", &["--version"]);
    let dir = TempDir::new("ops-zsh-completion");
    let script = write_scripts(&dir, Shell::Zsh);
    let path = script.display().to_string();
    shell_output("zsh", &["-n", &path], &dir);
    // _arguments and compdef stand in for the completion system's: what _portscan passes
    // to _arguments is its whole specification.
    let program = format!(
        "compdef() {{ : }}\n_arguments() {{ print -rl -- \"$@\" }}\nsource {path}\n_portscan"
    );
    let specs = shell_output("zsh", &["-f", "-c", &program], &dir);
    let specs: Vec<&str> = specs.lines().collect();
    for spec in [
        "-iL+[same as --input-list]:FILE:_files",
        "-oX+[same as --output-xml]:FILE:_files",
        "-sV[same as --service-version]",
        "-Pn[same as --no-ping]",
    ] {
        assert!(specs.contains(&spec), "{spec} in {specs:?}");
    }
}

#[test]
fn fish_completes_nmap_spellings() {
    require_program("fish", &["--version"]);
    let dir = TempDir::new("ops-fish-completion");
    let script = write_scripts(&dir, Shell::Fish);
    let program = format!("source {}; complete -C 'portscan -s'", script.display());
    let offered = shell_output("fish", &["--no-config", "-c", &program], &dir);
    let offered: Vec<&str> = offered
        .lines()
        .map(|line| line.split('\t').next().unwrap_or(line))
        .collect();
    for nmap in ["-sV", "-sU", "-sT", "-sS", "-sn"] {
        assert!(offered.contains(&nmap), "{nmap} in {offered:?}");
    }
    let program = format!("source {}; complete -C 'portscan -i'", script.display());
    let offered = shell_output("fish", &["--no-config", "-c", &program], &dir);
    assert!(
        offered.lines().any(|line| line.starts_with("-iL\t")),
        "{offered}"
    );
}
