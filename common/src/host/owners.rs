//! Which processes hold which sockets. The kernel keeps no owner with a socket, so the only
//! way is to read every process's fd table: one pass over /proc/*/fd, keeping only the
//! socket inodes asked about (research note §2.3: the scan is what makes `ss -p` slow).
//! sockls uses it for `-p`, proctree for the ports a process listens on.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};

use crate::contract::record::OsText;

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
        // The scan is all system calls, which run in parallel. First the threads take
        // processes one at a time from a shared counter, setting aside those with more than
        // SPLIT fds; then they share those tables out in ranges of fd numbers, so that one
        // process holding most of a host's sockets does not leave the other threads idle.
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(4);
        let next = AtomicUsize::new(0);
        let large = Mutex::new(Vec::new());
        let mut parts = on_threads(threads, || scan_pids(&pids, &next, wanted, &large));
        let large = large.into_inner().expect("the fd scan does not panic");
        // Taken in turns across the tables: two threads in one process's fd table contend
        // for its locks, so they keep to different processes while there are several.
        let most = large
            .iter()
            .map(|t| t.open.div_ceil(SPLIT))
            .max()
            .unwrap_or(0);
        let ranges: Vec<(Large, u32)> = (0..most)
            .flat_map(|range| {
                large
                    .iter()
                    .filter(move |t| range < t.open.div_ceil(SPLIT))
                    .map(move |&t| (t, range * SPLIT))
            })
            .collect();
        // Most hosts have no table that large: no threads for nothing.
        if !ranges.is_empty() {
            let next = AtomicUsize::new(0);
            parts.extend(on_threads(threads, || scan_ranges(&ranges, &next, wanted)));
        }
        // The ranges end at the count of open fds; what lies beyond (in a sparse table, or
        // opened meanwhile) is listed.
        let mut map = OwnerMap::default();
        let mut path = String::new();
        for table in &large {
            if let Ok(dir) = open_fd_dir(table.pid, &mut path) {
                map.read_listed(table.pid, dir, table.open, wanted);
            }
        }
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

    /// Notes fd `fd` of `pid`, whose link reads `target`, if it is a wanted socket.
    fn add(&mut self, pid: u32, fd: u32, target: &[u8], wanted: Option<&HashSet<u64>>) {
        let Some(inode) = socket_inode(target) else {
            return;
        };
        if wanted.is_none_or(|set| set.contains(&inode)) {
            self.owners
                .entry(inode)
                .or_default()
                .push(Owner { pid, fd });
        }
    }

    /// Reads the fds of `pid` from `from` on, as its fd directory `dir` lists them. The
    /// directory's offset is the fd number plus 2 (after `.` and `..`), and the kernel lists
    /// from there: any fd open all along is found, however the table changed meanwhile.
    fn read_listed(&mut self, pid: u32, dir: OwnedFd, from: u32, wanted: Option<&HashSet<u64>>) {
        if rustix::fs::seek(&dir, rustix::fs::SeekFrom::Start(u64::from(from) + 2)).is_err() {
            return;
        }
        let Ok(mut dir) = Dir::from_fd(dir) else {
            return;
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
        let mut link = [0; LINK];
        for fd in fds {
            if let Ok(target) = read_link(&dir, fd, &mut link) {
                self.add(pid, fd, target, wanted);
            }
        }
    }
}

/// A process's fd table is read in ranges of this many fd numbers when it holds more fds.
const SPLIT: u32 = 1024;

/// A process with more than [`SPLIT`] fds, left for the ranges.
#[derive(Clone, Copy)]
struct Large {
    pid: u32,
    /// Its open fds, when it was set aside.
    open: u32,
}

/// Runs `work` on `threads` threads and collects what each found.
fn on_threads(threads: usize, work: impl Fn() -> OwnerMap + Sync) -> Vec<OwnerMap> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(&work)).collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("the fd scan does not panic"))
            .collect()
    })
}

/// Opens `/proc/PID/fd`, building the path in `path`.
fn open_fd_dir(pid: u32, path: &mut String) -> nix::Result<OwnedFd> {
    path.clear();
    path.push_str("/proc/");
    path.push_str(itoa(pid, &mut [0; 10]));
    path.push_str("/fd");
    open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn scan_pids(
    pids: &[u32],
    next: &AtomicUsize,
    wanted: Option<&HashSet<u64>>,
    large: &Mutex<Vec<Large>>,
) -> OwnerMap {
    let mut map = OwnerMap::default();
    let mut path = String::new();
    while let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
        let dir = match open_fd_dir(pid, &mut path) {
            Ok(dir) => dir,
            Err(Errno::EACCES | Errno::EPERM) => {
                map.denied += 1;
                map.denied_pids.push(pid);
                continue;
            }
            // Gone since /proc was listed, or a kernel thread: nothing to hold a socket.
            Err(_) => continue,
        };
        let open = open_fds(&dir);
        if open > SPLIT {
            large
                .lock()
                .expect("the fd scan does not panic")
                .push(Large { pid, open });
            continue;
        }
        let next = probe_dense(&dir, open, &mut |fd, target| {
            map.add(pid, fd, target, wanted);
        });
        map.read_listed(pid, dir, next, wanted);
    }
    map
}

/// Reads the ranges of large fd tables that threads take from `next`: every fd number of
/// the range, up to the table's count of open fds.
fn scan_ranges(
    ranges: &[(Large, u32)],
    next: &AtomicUsize,
    wanted: Option<&HashSet<u64>>,
) -> OwnerMap {
    let mut map = OwnerMap::default();
    let mut path = String::new();
    let mut link = [0; LINK];
    while let Some(&(table, start)) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
        let Ok(dir) = open_fd_dir(table.pid, &mut path) else {
            continue;
        };
        for fd in start..table.open.min(start.saturating_add(SPLIT)) {
            if let Ok(target) = read_link(&dir, fd, &mut link) {
                map.add(table.pid, fd, target, wanted);
            }
        }
    }
    map
}

/// How many fds are open in the fd directory `dir`: its size on Linux 6.2 and later, 0 on
/// older kernels.
fn open_fds(dir: &OwnedFd) -> u32 {
    fstat(dir).map_or(0, |stat| u32::try_from(stat.st_size).unwrap_or(0))
}

/// Reads a process's fds by number, 0, 1, 2, ..., without listing the directory, until
/// `open` were found (the count [`open_fds`] gives) or a sparse table has had a few misses,
/// and returns the first fd not read; the caller lists the rest. Most fd tables are dense,
/// and listing /proc/PID/fd costs the kernel about a quarter as much again as reading
/// every link.
fn probe_dense(dir: &OwnedFd, open: u32, found: &mut impl FnMut(u32, &[u8])) -> u32 {
    let allowed_misses = 16 + open / 16;
    let (mut seen, mut misses, mut fd) = (0, 0, 0);
    let mut link = [0; LINK];
    while seen < open && misses <= allowed_misses {
        match read_link(dir, fd, &mut link) {
            Ok(target) => {
                seen += 1;
                found(fd, target);
            }
            Err(rustix::io::Errno::NOENT) => misses += 1,
            // Open, but not ours to read: counted, so the count still adds up.
            Err(_) => seen += 1,
        }
        fd += 1;
    }
    fd
}

/// Room for any socket link, `socket:[` and a u64 and `]`; longer links are cut short.
const LINK: usize = 32;

/// The target of fd link `fd` in `dir`, into `buffer` (the scan reads one per fd, so it
/// allocates nothing). A link longer than the buffer comes back cut short, which cannot make
/// it look like a socket's: those all fit, and no other link starts with `socket:[`.
fn read_link(dir: impl AsFd, fd: u32, buffer: &mut [u8; LINK]) -> rustix::io::Result<&[u8]> {
    let len = rustix::fs::readlinkat_raw(dir, itoa(fd, &mut [0; 10]), &mut *buffer)?;
    Ok(&buffer[..len])
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

/// A process's name, from /proc/PID/comm; an error if the process has gone. The name is
/// bytes the process chose (prctl PR_SET_NAME), kept as they are, as proctree keeps them.
pub fn comm(pid: u32) -> io::Result<OsText> {
    let mut name = fs::read(format!("/proc/{pid}/comm"))?;
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    Ok(OsText(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
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
        let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let wanted = HashSet::from([inode]);
        let map = OwnerMap::scan(Some(&wanted)).unwrap();
        let owners = map.owners(inode);
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(owners[0].pid, std::process::id());
        assert_eq!(i32::try_from(owners[0].fd).unwrap(), listener.as_raw_fd());
        assert!(map.owners(inode + 1).is_empty());
    }

    #[test]
    fn a_large_fd_table_is_read_whole_in_ranges() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let copies = 3 * SPLIT;
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let need = u64::from(copies) + 1024;
        if soft < need {
            if hard < need {
                eprintln!("skipped: the fd limit {hard} is below {need}");
                return;
            }
            setrlimit(Resource::RLIMIT_NOFILE, need, hard).unwrap();
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut held: Vec<OwnedFd> = (0..copies)
            .map(|_| rustix::io::fcntl_dupfd_cloexec(&listener, 0).unwrap())
            .collect();
        // And one past the end of the dense part, which the ranges do not reach.
        let high = i32::try_from(need).unwrap() - 64;
        held.push(rustix::io::fcntl_dupfd_cloexec(&listener, high).unwrap());
        let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let map = OwnerMap::scan(Some(&HashSet::from([inode]))).unwrap();
        let mut expected: Vec<i32> = held.iter().map(AsRawFd::as_raw_fd).collect();
        expected.push(listener.as_raw_fd());
        expected.sort_unstable();
        let found: Vec<i32> = map
            .owners(inode)
            .iter()
            .map(|owner| i32::try_from(owner.fd).unwrap())
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_listing_starts_at_the_fd_asked_for() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let copies: Vec<OwnedFd> = (0..4)
            .map(|_| rustix::io::fcntl_dupfd_cloexec(&listener, 0).unwrap())
            .collect();
        let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let from = copies.iter().map(AsRawFd::as_raw_fd).max().unwrap();
        let mut map = OwnerMap::default();
        let dir = open_fd_dir(std::process::id(), &mut String::new()).unwrap();
        let wanted = HashSet::from([inode]);
        map.read_listed(
            std::process::id(),
            dir,
            u32::try_from(from).unwrap(),
            Some(&wanted),
        );
        let fds: Vec<i32> = map
            .owners(inode)
            .iter()
            .map(|owner| i32::try_from(owner.fd).unwrap())
            .collect();
        assert_eq!(fds, [from], "only the fds from {from} on");
    }

    #[test]
    fn a_sparse_fd_table_is_read_whole() {
        // A copy far above the other fds: the probe by number gives up before it, and the
        // listing must still find it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let high = rustix::io::fcntl_dupfd_cloexec(&listener, 1000).unwrap();
        let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let map = OwnerMap::scan(Some(&HashSet::from([inode]))).unwrap();
        let fds: Vec<i32> = map
            .owners(inode)
            .iter()
            .map(|owner| i32::try_from(owner.fd).unwrap())
            .collect();
        assert_eq!(fds, [listener.as_raw_fd(), high.as_raw_fd()]);
        assert!(high.as_raw_fd() >= 1000);
    }
}
