//! Build chores that need the tools' clap definitions or a bit of Rust: man pages and shell
//! completions (generated from the same definitions the binaries parse with, so they cannot
//! drift), the loopback listeners the demo scans, and the impaired link the bench scans over.
//!
//! cargo run -p xtask -- man DIR | completions DIR | listen SECONDS PORT...
//!                       | impair SECONDS DELAY_MS JITTER_MS LOSS_PERCENT TUN_A TUN_B
//!                                [--rate PACKETS_PER_SECOND --queue PACKETS] [--counts FILE]

use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use std::{env, fs};

use xtask::completion;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => man(Path::new(dir)),
        ["completions", dir] => completions(Path::new(dir)),
        ["listen", seconds, ports @ ..] if !ports.is_empty() => listen(seconds, ports),
        ["impair", seconds, delay, jitter, loss, a, b, options @ ..] => {
            impair(seconds, delay, jitter, loss, (a, b), options)
        }
        _ => Err(USAGE.into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(io::stderr(), "xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: xtask man DIR | completions DIR | listen SECONDS PORT... \
    | impair SECONDS DELAY_MS JITTER_MS LOSS_PERCENT TUN_A TUN_B \
    [--rate PACKETS_PER_SECOND --queue PACKETS] [--counts FILE]";

fn man(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tools = xtask::manual::tools();
    let names: Vec<String> = tools
        .iter()
        .map(|tool| tool.command.get_name().to_owned())
        .collect();
    for tool in &tools {
        let name = tool.command.get_name();
        let path = dir.join(format!("{name}.1"));
        let others: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|other| *other != name)
            .collect();
        let page = xtask::manual::man_page(tool, &others)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn completions(dir: &Path) -> Result<(), String> {
    for shell in completion::SHELLS {
        let shell_dir: PathBuf = dir.join(shell.to_string());
        fs::create_dir_all(&shell_dir).map_err(|e| format!("{}: {e}", shell_dir.display()))?;
        for tool in xtask::manual::tools() {
            let path = shell_dir.join(completion::file_name(shell, tool.command.get_name()));
            let script = completion::tool_script(shell, tool.command);
            fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Listens on 127.0.0.1 at each port that is free, accepting nothing, for `seconds`; prints
/// the ports it holds. The demo's stand-ins for real services, bounded in time.
fn listen(seconds: &str, ports: &[&str]) -> Result<(), String> {
    let seconds = number(seconds, "a number of seconds")?;
    let mut held = Vec::new();
    for port in ports {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' is not a port"))?;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
            let _ = writeln!(io::stdout(), "{port}");
        }
    }
    let _ = io::stdout().flush();
    std::thread::sleep(Duration::from_secs(seconds));
    drop(held);
    Ok(())
}

/// Creates TUN devices `a` and `b` joined by a line that delays each packet by
/// `delay ± jitter` milliseconds and loses `loss` percent of them, each way, behind a
/// bottleneck of `--rate` packets a second with a queue of `--queue` packets if given;
/// prints `ready` once the devices exist (the caller then moves them into their namespaces)
/// and forwards for `seconds`. With `--counts FILE`, what each direction did so far is
/// written to FILE ten times a second (a line per direction, `a>b` then `b>a`: forwarded,
/// lost, dropped by the full queue), so a bench can tell drops at the start of a scan from
/// those once it settled. On exit the devices vanish; the totals go to stderr.
fn impair(
    seconds: &str,
    delay: &str,
    jitter: &str,
    loss: &str,
    (a, b): (&str, &str),
    options: &[&str],
) -> Result<(), String> {
    let seconds = number(seconds, "a number of seconds")?;
    let delay = Duration::from_millis(number(delay, "a delay in milliseconds")?);
    let jitter = Duration::from_millis(number(jitter, "a jitter in milliseconds")?);
    let loss: f64 = loss
        .parse()
        .ok()
        .filter(|percent| (0.0..=100.0).contains(percent))
        .ok_or_else(|| format!("'{loss}' is not a loss percentage from 0 to 100"))?;
    let (mut rate, mut queue, mut counts_file) = (None, None, None);
    for pair in options.chunks(2) {
        match pair {
            ["--rate", value] => rate = Some(number(value, "a rate in packets a second")?),
            ["--queue", value] => queue = Some(number(value, "a queue length in packets")?),
            ["--counts", file] => counts_file = Some(PathBuf::from(file)),
            _ => return Err(USAGE.into()),
        }
    }
    let bottleneck = match (rate, queue) {
        (None, None) => None,
        (Some(rate), Some(queue)) if rate > 0 => Some(xtask::impair::BottleneckSpec {
            #[expect(clippy::cast_precision_loss, reason = "a rate far below 2^52")]
            rate: rate as f64,
            queue: usize::try_from(queue).map_err(|_| format!("a queue of {queue} packets"))?,
        }),
        _ => return Err("--rate (above 0) and --queue go together".into()),
    };
    let impairment = xtask::impair::Impairment {
        delay,
        jitter,
        loss: loss / 100.0,
        seed: 1,
        bottleneck,
    };
    let line = xtask::impair::Line::open(a, b, impairment).map_err(|e| e.to_string())?;
    writeln!(io::stdout(), "ready")
        .and_then(|()| io::stdout().flush())
        .map_err(|e| format!("stdout: {e}"))?;
    let end = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(file) = &counts_file {
            write_counts(file, line.counts())?;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    let counts = line.close().map_err(|e| e.to_string())?;
    let _ = writeln!(
        io::stderr(),
        "xtask: impair: {} packets forwarded, {} lost, {} dropped by the full queue",
        counts.forwarded,
        counts.lost,
        counts.queue_dropped
    );
    Ok(())
}

/// Replaces `file` with the counts of each direction, whole: a reader never sees half.
fn write_counts(file: &Path, directions: [xtask::impair::Counts; 2]) -> Result<(), String> {
    let [ab, ba] = directions;
    let text = format!(
        "a>b {} {} {}\nb>a {} {} {}\n",
        ab.forwarded, ab.lost, ab.queue_dropped, ba.forwarded, ba.lost, ba.queue_dropped
    );
    let partial = file.with_extension("partial");
    fs::write(&partial, text)
        .and_then(|()| fs::rename(&partial, file))
        .map_err(|e| format!("{}: {e}", file.display()))
}

fn number(text: &str, what: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("'{text}' is not {what}"))
}
