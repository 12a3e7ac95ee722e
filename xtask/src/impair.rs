//! A delay-and-loss line between two TUN devices. These kernels have no `tc netem`, yet a
//! scanner must be tested on a slow, lossy link: two namespaces, each holding one end of
//! this line, see each other through it at the round trip and loss it is given.
//!
//! Both devices are created in the caller's namespace; the caller moves each into its
//! namespace (`ip link set NAME netns NS`) and gives it an address. A TUN device carries
//! bare IP packets, so the line needs no ARP and forwards any protocol unchanged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// What one direction did with the packets it read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub forwarded: u64,
    pub lost: u64,
}

/// A running line; it stops, and its devices vanish, when closed or dropped.
pub struct Line {
    stop: Arc<AtomicBool>,
    directions: Vec<JoinHandle<io::Result<Counts>>>,
}

/// How long a direction waits for a packet before it looks at the stop flag again.
const TICK: Duration = Duration::from_millis(20);

/// Larger than any packet a TUN device without offloads hands over (its MTU is 1500).
const PACKET_BUFFER: usize = 65_536;

impl Line {
    /// Creates TUN devices `a` and `b` in the current network namespace and starts
    /// forwarding between them, each direction on its own thread.
    pub fn open(a: &str, b: &str, impairment: Impairment) -> io::Result<Line> {
        if !(0.0..=1.0).contains(&impairment.loss) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "loss must be between 0 and 1",
            ));
        }
        let a = Arc::new(create(a)?);
        let b = Arc::new(create(b)?);
        let stop = Arc::new(AtomicBool::new(false));
        let directions = [(&a, &b, 1), (&b, &a, 2)]
            .into_iter()
            .map(|(from, to, stream)| {
                let (from, to, stop) = (Arc::clone(from), Arc::clone(to), Arc::clone(&stop));
                let mut draws = SplitMix64(impairment.seed ^ stream);
                std::thread::spawn(move || forward(&from, &to, impairment, &mut draws, &stop))
            })
            .collect();
        Ok(Line { stop, directions })
    }

    /// Stops forwarding and says what both directions did together.
    pub fn close(mut self) -> io::Result<Counts> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Counts::default();
        for direction in self.directions.drain(..) {
            let counts = direction
                .join()
                .map_err(|_| io::Error::other("a forwarding thread panicked"))??;
            total.forwarded += counts.forwarded;
            total.lost += counts.lost;
        }
        Ok(total)
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
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
    stop: &AtomicBool,
) -> io::Result<Counts> {
    let mut counts = Counts::default();
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
                counts.forwarded += 1;
            } else {
                counts.lost += 1;
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
                    counts.lost += 1;
                    continue;
                }
                let due = Instant::now() + draws.around(impairment.delay, impairment.jitter);
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
    Ok(counts)
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
    fn the_same_seed_draws_the_same_sequence() {
        let (mut first, mut second) = (SplitMix64(42), SplitMix64(42));
        assert!((0..100).all(|_| first.next() == second.next()));
    }
}
