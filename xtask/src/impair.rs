//! A delay-and-loss line between two TUN devices. These kernels have no `tc netem`, yet a
//! scanner must be tested on a slow, lossy link: two namespaces, each holding one end of
//! this line, see each other through it at the round trip and loss it is given.
//!
//! A line may also have a bottleneck, a rate in packets a second with a queue of a few
//! packets before it that drops what arrives when full (a router's tail drop): random loss
//! tests that a scanner does not mistake the link's noise for congestion, the bottleneck
//! that it still backs off from the real thing.
//!
//! Both devices are created in the caller's namespace; the caller moves each into its
//! namespace (`ip link set NAME netns NS`) and gives it an address. A TUN device carries
//! bare IP packets, so the line needs no ARP and forwards any protocol unchanged.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tun::Device;

/// How each direction of the line treats a packet.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// One-way delay; the round trip is twice this.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter`, so packets can reorder,
    /// as they do on a real path.
    pub jitter: Duration,
    /// The chance, from 0 to 1, that a packet is lost, drawn independently per packet.
    pub loss: f64,
    /// Seeds the draws, so a run can be repeated packet for packet given the same traffic.
    pub seed: u64,
    /// A rate limit with a finite queue in front of it, or none.
    pub bottleneck: Option<BottleneckSpec>,
}

/// A bottleneck: the line passes at most `rate` packets a second; a packet that comes while
/// `queue` others wait is dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BottleneckSpec {
    pub rate: f64,
    pub queue: usize,
}

/// What one direction did with the packets it read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub forwarded: u64,
    /// Lost at random, or refused by a device that is down.
    pub lost: u64,
    /// Dropped because the bottleneck's queue was full.
    pub queue_dropped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.forwarded += other.forwarded;
        self.lost += other.lost;
        self.queue_dropped += other.queue_dropped;
    }
}

/// A direction's counts as it runs, so that they can be read before the line closes.
#[derive(Debug, Default)]
struct LiveCounts {
    forwarded: AtomicU64,
    lost: AtomicU64,
    queue_dropped: AtomicU64,
}

impl LiveCounts {
    fn read(&self) -> Counts {
        Counts {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            queue_dropped: self.queue_dropped.load(Ordering::Relaxed),
        }
    }
}

/// A running line; it stops, and its devices vanish, when closed or dropped.
pub struct Line {
    stop: Arc<AtomicBool>,
    /// From `a` to `b`, then from `b` to `a`.
    counts: [Arc<LiveCounts>; 2],
    directions: Vec<JoinHandle<io::Result<()>>>,
}

/// How long a direction waits for a packet before it looks at the stop flag again.
const TICK: Duration = Duration::from_millis(20);

/// Larger than any packet a TUN device without offloads hands over (its MTU is 1500).
const PACKET_BUFFER: usize = 65_536;

impl Line {
    /// Creates TUN devices `a` and `b` in the current network namespace and starts
    /// forwarding between them, each direction on its own thread.
    pub fn open(a: &str, b: &str, impairment: Impairment) -> io::Result<Line> {
        let invalid = |why| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if !(0.0..=1.0).contains(&impairment.loss) {
            return invalid("loss must be between 0 and 1");
        }
        if let Some(spec) = impairment.bottleneck
            && !(spec.rate.is_finite() && spec.rate > 0.0)
        {
            return invalid("a bottleneck's rate must be above 0");
        }
        let a = Arc::new(create(a)?);
        let b = Arc::new(create(b)?);
        let stop = Arc::new(AtomicBool::new(false));
        let counts = [Arc::default(), Arc::default()];
        let directions = [(&a, &b, &counts[0], 1), (&b, &a, &counts[1], 2)]
            .into_iter()
            .map(|(from, to, counts, stream)| {
                let (from, to, stop) = (Arc::clone(from), Arc::clone(to), Arc::clone(&stop));
                let counts = Arc::clone(counts);
                let mut draws = SplitMix64(impairment.seed ^ stream);
                std::thread::spawn(move || {
                    forward(&from, &to, impairment, &mut draws, &counts, &stop)
                })
            })
            .collect();
        Ok(Line {
            stop,
            counts,
            directions,
        })
    }

    /// What each direction did so far: from `a` to `b`, and from `b` to `a`.
    pub fn counts(&self) -> [Counts; 2] {
        [self.counts[0].read(), self.counts[1].read()]
    }

    /// Stops forwarding and says what both directions did together.
    pub fn close(mut self) -> io::Result<Counts> {
        self.stop_and_join()?;
        let mut total = Counts::default();
        for direction in self.counts() {
            total.add(direction);
        }
        Ok(total)
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        for direction in self.directions.drain(..) {
            direction
                .join()
                .map_err(|_| io::Error::other("a forwarding thread panicked"))??;
        }
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// A bottleneck at work: when each packet in its queue will have gone through it.
#[derive(Debug)]
struct Bottleneck {
    spec: BottleneckSpec,
    /// The times the packets in the queue (the one going through included) leave it, in
    /// order; the last is when the bottleneck is free again.
    leaving: VecDeque<Instant>,
}

impl Bottleneck {
    fn new(spec: BottleneckSpec) -> Self {
        Self {
            spec,
            leaving: VecDeque::with_capacity(spec.queue + 1),
        }
    }

    /// A packet comes at `now`: when it leaves the bottleneck, or `None` if the queue is
    /// full and it is dropped. The packet going through is not in the queue; those behind
    /// it are, as a router's transmit queue holds what waits for the wire.
    fn admit(&mut self, now: Instant) -> Option<Instant> {
        while self.leaving.front().is_some_and(|&leaves| leaves <= now) {
            self.leaving.pop_front();
        }
        if self.leaving.len() > self.spec.queue {
            return None;
        }
        let start = self.leaving.back().map_or(now, |&free| free.max(now));
        let leaves = start + Duration::from_secs_f64(1.0 / self.spec.rate);
        self.leaving.push_back(leaves);
        Some(leaves)
    }
}

fn create(name: &str) -> io::Result<Device> {
    let mut config = tun::Configuration::default();
    config.tun_name(name).layer(tun::Layer::L3);
    // The device is configured by `ip` after it moves to its namespace; the crate's own
    // configuration would act on this namespace.
    config.platform_config(|linux| {
        linux.ensure_root_privileges(false);
    });
    tun::create(&config).map_err(|e| io::Error::other(format!("{name}: {e}")))
}

/// A packet held back until `due`; `sequence` keeps packets due at the same instant in
/// the order they came.
type Pending = Reverse<(Instant, u64, Vec<u8>)>;

fn forward(
    from: &Device,
    to: &Device,
    impairment: Impairment,
    draws: &mut SplitMix64,
    counts: &LiveCounts,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut bottleneck = impairment.bottleneck.map(Bottleneck::new);
    let mut pending: BinaryHeap<Pending> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut buffer = vec![0u8; PACKET_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(Reverse((due, ..))) = pending.peek()
            && *due <= now
        {
            let Reverse((_, _, packet)) = pending.pop().expect("a packet was peeked");
            // A device that is down refuses packets (EIO), as a cable that is unplugged
            // would lose them: the line is not broken by it.
            if to.send(&packet).is_ok() {
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        let wait = pending
            .peek()
            .map_or(TICK, |Reverse((due, ..))| {
                due.saturating_duration_since(now)
            })
            .min(TICK);
        match from.recv_timeout(&mut buffer, wait) {
            Ok(length) => {
                if draws.unit() < impairment.loss {
                    counts.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let arrived = Instant::now();
                let leaves = match bottleneck.as_mut() {
                    None => arrived,
                    Some(bottleneck) => {
                        let Some(leaves) = bottleneck.admit(arrived) else {
                            counts.queue_dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        leaves
                    }
                };
                let due = leaves + draws.around(impairment.delay, impairment.jitter);
                sequence += 1;
                pending.push(Reverse((due, sequence, buffer[..length].to_vec())));
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Sebastiano Vigna's SplitMix64: a tiny, well-mixed generator, plenty for drawing loss
/// and jitter, and seedable so a run can be repeated.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A draw from [0, 1): the top 53 bits, as many as an f64 holds exactly.
    #[expect(clippy::cast_precision_loss, reason = "53 bits fit an f64 exactly")]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration drawn uniformly from `centre ± spread`, never below zero.
    fn around(&mut self, centre: Duration, spread: Duration) -> Duration {
        let offset = spread.mul_f64(2.0 * self.unit());
        (centre + offset).saturating_sub(spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_enough_for_a_loss_rate() {
        let mut draws = SplitMix64(7);
        let lost = (0..100_000).filter(|_| draws.unit() < 0.02).count();
        assert!(
            (1_800..2_200).contains(&lost),
            "{lost} of 100000 lost at 2%"
        );
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let mut draws = SplitMix64(1);
        let centre = Duration::from_millis(25);
        let spread = Duration::from_millis(5);
        let delays: Vec<Duration> = (0..10_000).map(|_| draws.around(centre, spread)).collect();
        let (low, high) = (Duration::from_millis(20), Duration::from_millis(30));
        assert!(delays.iter().all(|d| (low..=high).contains(d)));
        assert!(delays.iter().any(|d| *d < Duration::from_micros(20_500)));
        assert!(delays.iter().any(|d| *d > Duration::from_micros(29_500)));
        assert_eq!(draws.around(centre, Duration::ZERO), centre);
    }

    #[test]
    fn a_bottleneck_paces_packets_and_drops_what_its_full_queue_cannot_hold() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 1000 packets a second: one each millisecond; two may wait behind the one going.
        let mut bottleneck = Bottleneck::new(BottleneckSpec {
            rate: 1000.0,
            queue: 2,
        });
        assert_eq!(bottleneck.admit(t0), Some(t0 + ms(1)));
        assert_eq!(bottleneck.admit(t0), Some(t0 + ms(2)));
        assert_eq!(bottleneck.admit(t0), Some(t0 + ms(3)));
        assert_eq!(bottleneck.admit(t0), None, "the queue is full");
        // As the first leaves, one place frees.
        assert_eq!(bottleneck.admit(t0 + ms(1)), Some(t0 + ms(4)));
        assert_eq!(bottleneck.admit(t0 + ms(1)), None);
        // Idle, it passes a packet at once, after its own time on the wire.
        assert_eq!(bottleneck.admit(t0 + ms(10)), Some(t0 + ms(11)));
    }

    #[test]
    fn a_bottleneck_passes_its_rate_and_drops_the_excess() {
        let t0 = Instant::now();
        let mut bottleneck = Bottleneck::new(BottleneckSpec {
            rate: 2000.0,
            queue: 100,
        });
        // Offered 4000 a second for a second: 2000 pass, the queue's 100 more are late.
        let offered = 4000;
        let passed = (0..offered)
            .filter_map(|i| bottleneck.admit(t0 + Duration::from_micros(250 * i)))
            .collect::<Vec<_>>();
        assert!(
            (2090..=2110).contains(&passed.len()),
            "{} of {offered}",
            passed.len()
        );
        let last = *passed.last().unwrap() - t0;
        let expected = Duration::from_micros(500) * u32::try_from(passed.len()).unwrap();
        assert!(
            last.abs_diff(expected) < Duration::from_millis(1),
            "{last:?}"
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_sequence() {
        let (mut first, mut second) = (SplitMix64(42), SplitMix64(42));
        assert!((0..100).all(|_| first.next() == second.next()));
    }
}
