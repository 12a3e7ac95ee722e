//! Which processes hold which sockets. The kernel keeps no owner with a socket, so the only
//! way is to read every process's fd table: one pass over /proc/*/fd, keeping only the
//! socket inodes asked about (research note §2.3: the scan is what makes `ss -p` slow).
//! sockls uses it for `-p`, proctree for the ports a process listens on.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, readlinkat};
use nix::sys::stat::Mode;

/// One fd of one process that refers to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub pid: u32,
    pub fd: u32,
}

/// The socket inodes found in process fd tables, and what could not be read.
#[derive(Debug, Default)]
pub struct OwnerMap {
    owners: HashMap<u64, Vec<Owner>>,
    /// Processes whose fd table we may not read (another user's, without privilege).
    pub denied: usize,
    /// Those processes, in pid order: for them, no owner found means nothing.
    pub denied_pids: Vec<u32>,
}

impl OwnerMap {
    /// Reads every process's fd table, keeping the sockets in `wanted` (all when None).
    pub fn scan(wanted: Option<&HashSet<u64>>) -> io::Result<Self> {
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc")? {
            let entry = entry?;
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            {
                pids.push(pid);
            }
        }
        // The scan is all system calls, which run in parallel: threads take processes one at
        // a time from a shared counter, so one process with many fds does not leave a thread
        // idle (the pids of a busy host's big processes bunch together).
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(4);
        let next = AtomicUsize::new(0);
        let mut map = OwnerMap::default();
        let parts: Vec<OwnerMap> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| scan_pids(&pids, &next, wanted)))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("the fd scan does not panic"))
                .collect()
        });
        for part in parts {
            map.denied += part.denied;
            map.denied_pids.extend(part.denied_pids);
            for (inode, owners) in part.owners {
                map.owners.entry(inode).or_default().extend(owners);
            }
        }
        for owners in map.owners.values_mut() {
            owners.sort_unstable();
        }
        map.denied_pids.sort_unstable();
        Ok(map)
    }

    /// The fds that refer to socket `inode`, in pid order.
    pub fn owners(&self, inode: u64) -> &[Owner] {
        self.owners.get(&inode).map_or(&[], Vec::as_slice)
    }

    /// Whether the fd table of `pid` could not be read.
    pub fn is_denied(&self, pid: u32) -> bool {
        self.denied_pids.binary_search(&pid).is_ok()
    }
}

fn scan_pids(pids: &[u32], next: &AtomicUsize, wanted: Option<&HashSet<u64>>) -> OwnerMap {
    let mut map = OwnerMap::default();
    let mut path = String::new();
    while let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
        path.clear();
        path.push_str("/proc/");
        path.push_str(itoa(pid, &mut [0; 10]));
        path.push_str("/fd");
        let mut dir = match Dir::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => dir,
            Err(Errno::EACCES | Errno::EPERM) => {
                map.denied += 1;
                map.denied_pids.push(pid);
                continue;
            }
            // Gone since /proc was listed, or a kernel thread: nothing to hold a socket.
            Err(_) => continue,
        };
        let fds: Vec<u32> = dir
            .iter()
            .filter_map(Result::ok)
            .filter_map(|entry| {
                std::str::from_utf8(entry.file_name().to_bytes())
                    .ok()?
                    .parse()
                    .ok()
            })
            .collect();
        for fd in fds {
            let Ok(target) = readlinkat(&dir, itoa(fd, &mut [0; 10])) else {
                continue;
            };
            let Some(inode) = socket_inode(target.as_bytes()) else {
                continue;
            };
            if wanted.is_none_or(|set| set.contains(&inode)) {
                map.owners.entry(inode).or_default().push(Owner { pid, fd });
            }
        }
    }
    map
}

/// The inode in a `socket:[12345]` link.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Formats `n` without allocating: the scan does it once per fd.
fn itoa(mut n: u32, buffer: &mut [u8; 10]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).expect("digits")
}

/// A process's name, from /proc/PID/comm; None if the process has gone.
pub fn comm(pid: u32) -> io::Result<String> {
    let mut text = fs::read_to_string(format!("/proc/{pid}/comm"))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[x]"), None);
        assert_eq!(itoa(0, &mut [0; 10]), "0");
        assert_eq!(itoa(4_294_967_295, &mut [0; 10]), "4294967295");
    }

    #[test]
    fn the_scan_finds_our_own_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .unwrap()
        .ino();
        let wanted = HashSet::from([inode]);
        let map = OwnerMap::scan(Some(&wanted)).unwrap();
        let owners = map.owners(inode);
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(owners[0].pid, std::process::id());
        assert_eq!(
            i32::try_from(owners[0].fd).unwrap(),
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        );
        assert!(map.owners(inode + 1).is_empty());
    }
}
