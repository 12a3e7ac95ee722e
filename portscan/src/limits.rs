//! The descriptor budget: every probe in flight holds a socket, so the scan raises
//! RLIMIT_NOFILE's soft limit to the hard one at start and keeps what is in flight under it
//! with headroom for stdout, stderr, epoll and whatever the resolver opens.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Sockets a scan never exceeds, whatever the limit: past this, more in flight only fills
/// the kernel's queues (and the local port range has about 28,000 ports).
pub const MOST: usize = 16_384;

/// Raises the soft limit as far as allowed and returns how many sockets a scan may hold.
pub fn socket_budget() -> usize {
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let open = std::fs::read_dir("/proc/self/fd").map_or(8, Iterator::count);
    budget(soft, open)
}

/// What is left of `soft` descriptors with `open` already taken, less headroom.
fn budget(soft: usize, open: usize) -> usize {
    let headroom = (soft / 16).max(8);
    soft.saturating_sub(open + headroom).clamp(1, MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_headroom() {
        assert_eq!(budget(64, 5), 51);
        assert_eq!(budget(1024, 5), 955);
        assert_eq!(budget(1_048_576, 5), MOST);
        assert_eq!(budget(10, 5), 1);
    }
}
