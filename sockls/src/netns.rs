//! Other network namespaces: a dump over sock_diag, and /proc/thread-self/net, cover only the
//! namespace of the calling thread, so each namespace is listed from a thread that has
//! joined it with setns(2) (needs CAP_SYS_ADMIN); the rest of the process stays where it is.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::contract::error::{Error, Result, describe_io_error};
use common::host::sockets::{self, Listing, Query, Source};
use nix::sched::{CloneFlags, setns};

/// Where `ip netns add` puts named namespaces.
const NAMED: &str = "/run/netns";

/// A namespace to list: how records name it, and the file that refers to it.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub label: String,
    pub path: PathBuf,
}

/// Resolves `--netns NAME|PATH|pid:N`.
pub fn resolve(spec: &str) -> Result<Namespace> {
    let path = if let Some(pid) = spec.strip_prefix("pid:") {
        let pid: u32 = pid
            .parse()
            .map_err(|_| Error::usage(format!("--netns '{spec}': '{pid}' is not a process id")))?;
        PathBuf::from(format!("/proc/{pid}/ns/net"))
    } else if spec.contains('/') {
        PathBuf::from(spec)
    } else if spec.is_empty() {
        return Err(Error::usage("--netns: empty namespace name"));
    } else {
        PathBuf::from(NAMED).join(spec)
    };
    Ok(Namespace {
        label: spec.to_owned(),
        path,
    })
}

/// Every network namespace that a name or a process refers to, each once: named ones by
/// their name, the others as `net:[INODE]`.
pub fn all() -> Result<Vec<Namespace>> {
    let mut by_inode: BTreeMap<(u64, u64), Namespace> = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(NAMED) {
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(meta) = fs::metadata(&path) {
                let label = entry.file_name().to_string_lossy().into_owned();
                by_inode
                    .entry((meta.dev(), meta.ino()))
                    .or_insert(Namespace { label, path });
            }
        }
    }
    let proc = fs::read_dir("/proc").map_err(|e| Error::input("reading /proc", e))?;
    for entry in proc.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = entry.path().join("ns/net");
        // Processes that end, or that we may not look into, are simply not counted.
        if let Ok(meta) = fs::metadata(&path) {
            by_inode
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| Namespace {
                    label: format!("net:[{}]", meta.ino()),
                    path,
                });
        }
    }
    Ok(by_inode.into_values().collect())
}

/// Lists the sockets of `namespace` from a thread that joins it.
pub fn list(namespace: &Namespace, query: &Query, source: Source) -> Result<Listing> {
    let what = || format!("network namespace {}", namespace.label);
    let file = File::open(&namespace.path)
        .map_err(|e| Error::failed(format!("{}: {}", what(), describe_io_error(&e))))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::failed(format!("entering {}: {}", what(), e.desc())))?;
                let mut listing = sockets::list(query, source);
                for record in &mut listing.records {
                    record.netns = Some(namespace.label.clone());
                }
                for problem in &mut listing.problems {
                    *problem = format!("{}: {problem}", what());
                }
                Ok(listing)
            })
            .join()
            .expect("listing a namespace does not panic")
    })
}
