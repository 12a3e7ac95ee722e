//! When to send, how long to wait, how many times to try: the adaptive timing of a scan as
//! small pure structs fed with events and an explicit `now`, so the event loop never reads
//! the clock behind their back and every rule here is unit-tested with a fake clock.
//!
//! The rules follow nmap's (`timing.cc`) and TCP's (RFC 6298): a smoothed RTT and its
//! variance give the probe timeout; a congestion window per host grows by one probe per
//! answer in slow start and by one per window past `ssthresh`, and halves at most once per
//! timeout period when losses pile up; a host retries a probe one try more than the most
//! tries that ever got an answer from it (nmap's rule), and more when the loss it has shown
//! makes losing every try of an answering port likely; a retry waits longer than the try
//! before (a bounded form of RFC 6298's back-off), so a burst of delay does not pass for
//! silence.
//!
//! A host's ICMP errors are rationed too, by the host: Linux answers at most one a second to
//! each address after a burst of six (`net.ipv4.icmp_ratelimit`), so a closed UDP port past
//! the burst falls silent like a dropped one. [`IcmpLimit`] notices the ration as it bites,
//! keeps a lower bound of what the host has left, and lets UDP tries go only as that
//! allows: a try it vouched for that stays silent was dropped, and one it did not vouch for
//! is sent again, at no cost to its retries.

use std::time::{Duration, Instant};

/// The knobs of a scan, set by a `-T` preset and then by the individual options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The probe timeout before a host has answered anything.
    pub initial_timeout: Duration,
    pub min_timeout: Duration,
    pub max_timeout: Duration,
    /// Retransmissions after the first try; nmap's `--max-retries`.
    pub max_retries: u8,
    /// The least time between two probes to one host (`-T0`..`-T2` are polite this way).
    pub scan_delay: Duration,
    /// Probes in flight to one host before any answer.
    pub initial_cwnd: f64,
    /// The most probes in flight to one host.
    pub max_cwnd: f64,
    /// Give up a host that takes longer than this.
    pub host_timeout: Option<Duration>,
}

impl Profile {
    /// nmap's `-T0` (paranoid) to `-T5` (insane) templates, adapted to connect().
    pub fn preset(level: u8) -> Self {
        let ms = Duration::from_millis;
        let base = Self {
            initial_timeout: ms(1000),
            min_timeout: ms(100),
            max_timeout: ms(10_000),
            max_retries: 10,
            scan_delay: Duration::ZERO,
            initial_cwnd: 10.0,
            max_cwnd: 1000.0,
            host_timeout: None,
        };
        match level {
            0 => Self {
                initial_timeout: ms(300_000),
                scan_delay: ms(300_000),
                max_cwnd: 1.0,
                initial_cwnd: 1.0,
                ..base
            },
            1 => Self {
                initial_timeout: ms(15_000),
                scan_delay: ms(15_000),
                max_cwnd: 1.0,
                initial_cwnd: 1.0,
                ..base
            },
            2 => Self {
                scan_delay: ms(400),
                max_cwnd: 1.0,
                initial_cwnd: 1.0,
                ..base
            },
            4 => Self {
                initial_timeout: ms(500),
                max_timeout: ms(1250),
                max_retries: 6,
                max_cwnd: 2000.0,
                ..base
            },
            5 => Self {
                initial_timeout: ms(250),
                min_timeout: ms(50),
                max_timeout: ms(300),
                max_retries: 2,
                max_cwnd: 5000.0,
                host_timeout: Some(Duration::from_secs(900)),
                ..base
            },
            _ => base,
        }
    }
}

/// The timing state of one host.
#[derive(Debug, Clone)]
pub struct HostTiming {
    profile: Profile,
    srtt: Option<Duration>,
    rttvar: Duration,
    cwnd: f64,
    ssthresh: f64,
    in_flight: usize,
    last_send: Option<Instant>,
    /// When the window was last cut, so that one burst of losses cuts it once.
    last_cut: Option<Instant>,
    /// The highest try number (0 = first) that ever got an answer.
    max_successful_try: u8,
    /// The share of recent answers that came only to a retry, averaged over about the last
    /// [`LOSS_MEMORY`] answers.
    loss_rate: f64,
    /// Tries of probes that got an answer, and how many of those tries went unanswered:
    /// the host's loss over the whole scan, which sizes the retries.
    tries_answered: u64,
    tries_lost: u64,
    /// The host's ration of ICMP errors, for the tries that draw them (UDP's).
    icmp: IcmpLimit,
}

/// How many answers the loss rate remembers, roughly.
const LOSS_MEMORY: f64 = 32.0;

/// The loss rate past which losses are congestion rather than the path's noise.
const LOSS_TOLERANCE: f64 = 0.1;

/// The answered tries a host's loss rate needs before it sizes retries; until then, and
/// for a host that never answers, nmap's rule alone decides.
const LOSS_EVIDENCE: u64 = 50;

/// A retry waits at most this many times the timeout.
const MOST_BACKOFF: u32 = 3;

/// The chance, at the host's loss rate, that every try to a port that answers is lost and
/// the port is reported filtered: retries are added until it falls below this.
const MISREPORT_CHANCE: f64 = 1e-6;

impl HostTiming {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            srtt: None,
            rttvar: Duration::ZERO,
            cwnd: profile.initial_cwnd,
            ssthresh: profile.max_cwnd,
            in_flight: 0,
            last_send: None,
            last_cut: None,
            max_successful_try: 0,
            loss_rate: 0.0,
            tries_answered: 0,
            tries_lost: 0,
            icmp: IcmpLimit::default(),
        }
    }

    /// The host's ration of ICMP errors.
    pub fn icmp(&self) -> &IcmpLimit {
        &self.icmp
    }

    pub fn icmp_mut(&mut self) -> &mut IcmpLimit {
        &mut self.icmp
    }

    /// How long to wait for the answer to try `try_number` (0 = the first) of a probe:
    /// the timeout, once more for each earlier try up to [`MOST_BACKOFF`] times, at most the
    /// profile's maximum. TCP doubles without end; a scan would pay for that on every
    /// filtered port, while a late answer needs only some slack. Before the host has
    /// answered, the initial timeout is generous already: no back-off, so that a sweep of
    /// silent addresses costs what it does in nmap.
    pub fn timeout_for(&self, try_number: u8) -> Duration {
        if self.srtt.is_none() {
            return self.timeout();
        }
        let backoff = (u32::from(try_number) + 1).min(MOST_BACKOFF);
        (self.timeout() * backoff).min(self.profile.max_timeout.max(self.timeout()))
    }

    /// Whether an answer has set the round-trip estimate.
    pub fn has_rtt(&self) -> bool {
        self.srtt.is_some()
    }

    /// How long to wait for the answer to a probe sent now: srtt + 4 * rttvar, clamped.
    pub fn timeout(&self) -> Duration {
        match self.srtt {
            None => self.profile.initial_timeout,
            Some(srtt) => {
                (srtt + 4 * self.rttvar).clamp(self.profile.min_timeout, self.profile.max_timeout)
            }
        }
    }

    /// Whether one more probe may go to this host now.
    pub fn can_send(&self, now: Instant) -> bool {
        self.window_open() && self.next_send_at(now) <= now
    }

    /// Whether the congestion window has room (the scan delay aside).
    pub fn window_open(&self) -> bool {
        // The window is fractional while it grows; a probe fits while a whole one does.
        #[expect(clippy::cast_precision_loss, reason = "windows are far below 2^52")]
        let in_flight = self.in_flight as f64;
        in_flight < self.cwnd.floor().max(1.0)
    }

    /// The earliest time the scan delay lets the next probe go.
    pub fn next_send_at(&self, now: Instant) -> Instant {
        match self.last_send {
            Some(last) if !self.profile.scan_delay.is_zero() => last + self.profile.scan_delay,
            _ => now,
        }
    }

    pub fn on_send(&mut self, now: Instant) {
        self.in_flight += 1;
        self.last_send = Some(now);
    }

    /// An answer (accepted, refused, or an ICMP error) to a probe sent at `sent`, on try
    /// `try_number` (0 = the first).
    pub fn on_answer(&mut self, now: Instant, sent: Instant, try_number: u8) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.max_successful_try = self.max_successful_try.max(try_number);
        self.tries_answered += u64::from(try_number) + 1;
        self.tries_lost += u64::from(try_number);
        let lost = try_number > 0;
        // A probe sent before the last cut belongs to the burst that caused it: counting
        // it again would cut again for the same losses, and a window cut small gets few
        // answers to dilute them, so it would keep cutting.
        let before_cut = self.last_cut.is_some_and(|cut| sent < cut);
        if !before_cut {
            self.loss_rate += (f64::from(u8::from(lost)) - self.loss_rate) / LOSS_MEMORY;
        }
        if lost {
            // An answer to a retry: the earlier try was lost on the way (a firewall's drop
            // never answers at all, so it counts for nothing here). A loss now and then is
            // the path's noise, a radio link or a busy router: halving for each, as TCP
            // does, makes a scan over a path losing 2% crawl at a few probes per round
            // trip. Losses that pile up are a queue overflowing or a host rate-limiting.
            if self.loss_rate > LOSS_TOLERANCE {
                self.cut(now);
            }
            // Karn's rule: a retried probe's answer may belong to an earlier try, so its
            // time says nothing about the RTT. (Every try is a fresh connection here, but
            // the host may still be answering the previous one's SYN.)
            return;
        }
        self.sample_rtt(now.saturating_duration_since(sent));
        if self.cwnd < self.ssthresh {
            self.cwnd += 1.0;
        } else {
            self.cwnd += 1.0 / self.cwnd;
        }
        self.cwnd = self.cwnd.min(self.profile.max_cwnd);
    }

    /// A probe went unanswered for its whole timeout. Silence is what a firewall's drop
    /// looks like, so it says nothing about congestion; the answer to the retry may.
    pub fn on_timeout(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Halves the window, once per timeout period however many losses show up in it.
    fn cut(&mut self, now: Instant) {
        let recently_cut = self
            .last_cut
            .is_some_and(|cut| now.saturating_duration_since(cut) < self.timeout());
        if !recently_cut {
            self.ssthresh = (self.cwnd / 2.0).max(2.0);
            self.cwnd = self.ssthresh;
            self.last_cut = Some(now);
            // The cut answers the losses seen so far; the next must be earned anew.
            self.loss_rate = 0.0;
        }
    }

    /// A probe that never left (a local failure): it frees its slot and teaches nothing.
    pub fn on_abandon(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Whether a probe unanswered on try `try_number` deserves another try: up to
    /// `max_retries`, but only one more than ever helped with this host, so that a filtered
    /// port does not cost ten timeouts when every answer came on the first try (nmap's
    /// rule); and as many as the host's loss calls for, which nmap's rule learns too late
    /// for the ports it has already given up on a lossy path.
    pub fn should_retry(&self, try_number: u8) -> bool {
        let allowed = self
            .max_successful_try
            .saturating_add(1)
            .max(self.retries_for_loss())
            .min(self.profile.max_retries);
        try_number < allowed
    }

    /// The fewest retries that make losing every try below [`MISREPORT_CHANCE`].
    fn retries_for_loss(&self) -> u8 {
        if self.tries_lost == 0 || self.tries_answered < LOSS_EVIDENCE {
            return 0;
        }
        #[expect(clippy::cast_precision_loss, reason = "exact to 2^52 tries")]
        let loss = self.tries_lost as f64 / self.tries_answered as f64;
        // 0 < loss < 1: one try of each answered probe is the answered one.
        let tries = (MISREPORT_CHANCE.ln() / loss.ln()).ceil();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to a small positive count"
        )]
        let tries = tries.clamp(1.0, 255.0) as u8;
        tries - 1
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        // RFC 6298, section 2: alpha = 1/8, beta = 1/4.
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }
}

/// A host's ration of ICMP errors as this side sees it, for the tries a port can answer
/// with one (UDP: a closed port's port unreachable).
///
/// Linux keeps a token bucket per peer address (`inet_peer_xrlim_allow`): one token every
/// `icmp_ratelimit` (1 s by default), at most [`ICMP_BURST`] kept, one spent on each error;
/// with none left, the error is not sent, and a closed port is as silent as a dropped one.
/// Loopback is exempt. Until the ration bites, nothing is known and nothing is held back.
/// It is noticed at the first silence of a host that has sent errors before (a closed
/// port's silence then is as likely as a drop). From that moment the host is assumed to
/// have no token left, and the bucket is modelled from there: a token every [`interval`],
/// at most [`ICMP_BURST`], one less for each error that comes, whoever's probe drew it. As
/// long as the interval is not shorter than the host's, the model never holds more than
/// the host does, so a try that goes only when the model has a token for it, and one for
/// every other try in flight, is sure of an answer if its port is closed: its silence is
/// a drop (or, as ever, a loss). A try that was sent before the ration was noticed proves
/// nothing by its silence and is sent again as the same try.
///
/// Waiting costs nothing that a faster pace would save: the floor is the host's, one
/// closed port per interval. The bucket fills while nothing is sent, so after a pause a
/// burst goes at once. An error that answers a retry of a try the model vouched for says
/// the model held more than the host: the interval grows, and the model starts empty.
///
/// [`interval`]: IcmpLimit::interval
#[derive(Debug, Clone, Default)]
pub struct IcmpLimit {
    /// The host never rations (loopback).
    exempt: bool,
    /// Errors the host sent.
    errors: u64,
    /// Errors that tries in flight may draw: each has a token of the model set aside.
    outstanding: u32,
    /// The model, once the ration was noticed.
    bucket: Option<Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    /// When the ration was noticed; tries sent before it were not paced.
    since: Instant,
    /// The fewest tokens the host can have had at `at` (negative while errors to tries
    /// sent before `since` come in).
    tokens: f64,
    at: Instant,
    /// The time the host takes to earn a token, or more.
    interval: Duration,
}

/// The most tokens a Linux host keeps: `XRLIM_BURST_FACTOR`.
pub const ICMP_BURST: f64 = 6.0;

/// Linux's default `icmp_ratelimit`, the interval assumed when the ration is noticed.
const ICMP_INTERVAL: Duration = Duration::from_secs(1);

/// The interval grows to at most this when the model proves to have held too much.
const MOST_ICMP_INTERVAL: Duration = Duration::from_secs(10);

impl IcmpLimit {
    /// A host that never rations its errors: the loopback device is exempt from the limit.
    pub fn exempt(&mut self) {
        self.exempt = true;
    }

    /// Whether the ration was noticed.
    pub fn noticed(&self) -> bool {
        self.bucket.is_some()
    }

    /// The time the host takes to earn an error, as far as it is known.
    pub fn interval(&self) -> Option<Duration> {
        self.bucket.as_ref().map(|bucket| bucket.interval)
    }

    /// A try that may draw `errors` errors (one per datagram it sends) went out.
    pub fn on_send(&mut self, errors: u8) {
        self.outstanding += u32::from(errors);
    }

    /// The host answered try `try_number`, sent at `sent` and able to draw `errors`
    /// errors, with errors (`error`: it spent a token on each) or not (a datagram, which
    /// costs it nothing).
    pub fn on_answer(
        &mut self,
        now: Instant,
        sent: Instant,
        try_number: u8,
        errors: u8,
        error: bool,
    ) {
        self.outstanding = self.outstanding.saturating_sub(u32::from(errors));
        if !error {
            return;
        }
        self.errors += 1;
        if let Some(bucket) = &mut self.bucket {
            bucket.refill(now);
            bucket.tokens -= f64::from(errors);
            if try_number > 0 && sent >= bucket.since {
                // A try the model vouched for was silent, and its port is closed.
                bucket.interval = (bucket.interval * 3 / 2).min(MOST_ICMP_INTERVAL);
                bucket.tokens = bucket.tokens.min(0.0);
            }
        }
    }

    /// A try sent at `sent`, able to draw `errors` errors, went unanswered until `now`;
    /// whether its silence counts as one of the port's tries. It notices the ration if the
    /// host has sent errors before.
    pub fn on_silence(&mut self, now: Instant, sent: Instant, errors: u8) -> bool {
        self.outstanding = self.outstanding.saturating_sub(u32::from(errors));
        if self.bucket.is_none() && self.errors > 0 && !self.exempt {
            self.bucket = Some(Bucket {
                since: now,
                tokens: 0.0,
                at: now,
                interval: ICMP_INTERVAL,
            });
        }
        self.bucket
            .as_ref()
            .is_none_or(|bucket| sent >= bucket.since)
    }

    /// A try able to draw `errors` errors left, and its answer will never be read (a
    /// local failure).
    pub fn on_abandon(&mut self, errors: u8) {
        self.outstanding = self.outstanding.saturating_sub(u32::from(errors));
    }

    /// Whether one more try, able to draw `errors` errors, may go now: a token of the model
    /// for each, and for each error the tries in flight may draw.
    pub fn allows(&mut self, now: Instant, errors: u8) -> bool {
        let needed = f64::from(self.outstanding) + needs(errors);
        self.bucket.as_mut().is_none_or(|bucket| {
            bucket.refill(now);
            bucket.tokens >= needed
        })
    }

    /// When the model will next have the tokens for one more try able to draw `errors`
    /// errors: `None` if only an answer or a silence of a try in flight can make room.
    pub fn next_allowed(&self, now: Instant, errors: u8) -> Option<Instant> {
        let Some(bucket) = &self.bucket else {
            return Some(now);
        };
        let needed = f64::from(self.outstanding) + needs(errors);
        if needed > ICMP_BURST {
            return None;
        }
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let interval = bucket.interval.as_secs_f64();
        let tokens = (bucket.tokens + elapsed / interval).min(ICMP_BURST);
        // At least a microsecond: rounding must not promise a token that is not there.
        let wait = Duration::from_secs_f64(((needed - tokens) * interval).max(0.0));
        Some(now + wait.max(Duration::from_micros(1)))
    }
}

/// The tokens a try able to draw `errors` errors waits for: one each, but no more than the
/// host can hold, or it would wait for ever (it then draws what the host has).
fn needs(errors: u8) -> f64 {
    f64::from(errors).min(ICMP_BURST)
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed / self.interval.as_secs_f64()).min(ICMP_BURST);
        self.at = now;
    }
}

/// The scan-wide send rate: `--max-rate` is a ceiling (a token bucket), `--min-rate` a floor
/// that lets probes go past the congestion windows while the scan runs slower than it.
#[derive(Debug, Clone)]
pub struct Rate {
    ceiling: Option<f64>,
    floor: Option<f64>,
    start: Instant,
    tokens: f64,
    refilled: Instant,
    sent: u64,
}

impl Rate {
    pub fn new(now: Instant, max_rate: Option<f64>, min_rate: Option<f64>) -> Self {
        Self {
            ceiling: max_rate,
            floor: min_rate,
            start: now,
            tokens: 1.0,
            refilled: now,
            sent: 0,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.ceiling {
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            // A burst of at most a tenth of a second's worth keeps the ceiling honest.
            self.tokens = (self.tokens + elapsed * rate).min((rate / 10.0).max(1.0));
            self.refilled = now;
        }
    }

    /// Whether the ceiling lets one more probe go now.
    pub fn allows(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.ceiling.is_none() || self.tokens >= 1.0
    }

    /// When the ceiling will next let a probe go.
    pub fn next_allowed(&mut self, now: Instant) -> Instant {
        self.refill(now);
        match self.ceiling {
            Some(rate) if self.tokens < 1.0 => {
                // At least a microsecond: rounding must not promise a token that is not there.
                now + Duration::from_secs_f64((1.0 - self.tokens) / rate)
                    .max(Duration::from_micros(1))
            }
            _ => now,
        }
    }

    /// Whether the scan runs below `--min-rate`, so probes may go past the windows.
    pub fn behind_floor(&self, now: Instant) -> bool {
        self.floor.is_some_and(|rate| {
            let due = now.saturating_duration_since(self.start).as_secs_f64() * rate;
            #[expect(clippy::cast_precision_loss, reason = "exact to 2^52 probes")]
            let sent = self.sent as f64;
            sent < due
        })
    }

    pub fn on_send(&mut self) {
        self.sent += 1;
        if self.ceiling.is_some() {
            self.tokens -= 1.0;
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SECOND: Duration = Duration::from_secs(1);

    fn profile() -> Profile {
        Profile::preset(3)
    }

    #[test]
    fn the_timeout_follows_the_rtt_and_stays_clamped() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        assert_eq!(host.timeout(), 1000 * MS);
        host.on_send(t0);
        host.on_answer(t0 + 40 * MS, t0, 0);
        // srtt 40, rttvar 20: 40 + 80.
        assert_eq!(host.timeout(), 120 * MS);
        host.on_send(t0);
        host.on_answer(t0 + 40 * MS, t0, 0);
        // rttvar decays to 15: 40 + 60, clamped up to the 100 ms floor.
        assert_eq!(host.timeout(), 100 * MS);
        let mut slow = HostTiming::new(profile());
        slow.on_send(t0);
        slow.on_answer(t0 + 9000 * MS, t0, 0);
        assert_eq!(slow.timeout(), 10_000 * MS);
    }

    #[test]
    fn retried_answers_do_not_feed_the_rtt() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        host.on_send(t0);
        host.on_answer(t0 + 5000 * MS, t0, 1);
        assert_eq!(host.timeout(), 1000 * MS);
    }

    #[test]
    fn the_window_grows_with_answers_and_halves_once_per_loss_burst() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        for _ in 0..10 {
            assert!(host.can_send(t0));
            host.on_send(t0);
        }
        assert!(!host.can_send(t0), "the initial window is 10");
        for _ in 0..10 {
            host.on_answer(t0 + MS, t0, 0);
        }
        assert!(
            (host.cwnd - 20.0).abs() < 1e-9,
            "slow start: one more per answer"
        );
        for _ in 0..12 {
            host.on_send(t0 + MS);
        }
        let later = t0 + 500 * MS;
        host.on_timeout();
        assert!((host.cwnd - 20.0).abs() < 1e-9, "silence is no congestion");
        // 1 - (31/32)^n passes the 10% tolerance at the fourth loss in a row.
        for _ in 0..3 {
            host.on_answer(later, t0, 1);
            assert!((host.cwnd - 20.0).abs() < 1e-9, "a few losses are noise");
        }
        host.on_answer(later, t0, 1);
        assert!((host.cwnd - 10.0).abs() < 1e-9, "losses piling up cut");
        for _ in 0..4 {
            host.on_answer(later + 300 * MS, t0, 1);
        }
        assert!(
            (host.cwnd - 10.0).abs() < 1e-9,
            "the probes sent before the cut belong to the burst it answered"
        );
        let after = later + MS;
        for _ in 0..3 {
            host.on_send(after);
            host.on_answer(after + 200 * MS, after, 1);
        }
        assert!((host.cwnd - 10.0).abs() < 1e-9, "the count starts again");
        host.on_send(after);
        host.on_answer(after + 200 * MS, after, 1);
        assert!(
            (host.cwnd - 5.0).abs() < 1e-9,
            "losses piling up again cut again"
        );
        // Past ssthresh the window grows by one per window of answers.
        host.on_send(later);
        host.on_answer(later + MS, later, 0);
        assert!((host.cwnd - 5.2).abs() < 1e-9);
        // 10 + 12 + 4 + 1 sent; 10 + 3 + 1 + 4 + 4 + 1 answered, 1 timed out.
        assert_eq!(host.in_flight, 3);
    }

    #[test]
    fn scattered_losses_never_cut_the_window() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        // One answer in 20 needed a retry: a path losing 2.5% each way.
        for answer in 0..2000u32 {
            host.on_send(t0);
            let try_number = u8::from(answer % 20 == 19);
            host.on_answer(t0 + answer * MS, t0, try_number);
        }
        assert!((host.cwnd - 1000.0).abs() < 1e-9, "cwnd {}", host.cwnd);
    }

    #[test]
    fn the_window_never_closes_completely() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        for step in 0..20 {
            host.on_send(t0);
            host.on_answer(t0 + step * 2000 * MS, t0, 1);
        }
        assert!(host.can_send(t0 + 60_000 * MS));
    }

    #[test]
    fn retries_are_sized_by_what_helped() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        // Nothing known yet (a silent host), or a clean path: nmap's single retry.
        assert!(host.should_retry(0));
        assert!(!host.should_retry(1));
        for _ in 0..2000 {
            host.on_send(t0);
            host.on_answer(t0 + MS, t0, 0);
        }
        assert!(host.should_retry(0));
        assert!(!host.should_retry(1));
        // One answer on the fourth try: up to four retries, whatever the loss rate says.
        host.on_send(t0);
        host.on_answer(t0 + MS, t0, 3);
        assert!(host.should_retry(3));
        assert!(!host.should_retry(4));
        let mut none = HostTiming::new(Profile {
            max_retries: 0,
            ..profile()
        });
        none.on_send(t0);
        none.on_answer(t0 + MS, t0, 3);
        assert!(!none.should_retry(0));
    }

    #[test]
    fn a_lossy_path_earns_retries_before_any_port_needs_them() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        // 4% of tries lost (2% each way), but no answer ever needed more than two tries.
        for answer in 0..2000 {
            host.on_send(t0);
            host.on_answer(t0 + MS, t0, u8::from(answer % 25 == 0));
        }
        // 0.04^4 > 1e-6 >= 0.04^5: five tries.
        assert!(host.should_retry(3));
        assert!(!host.should_retry(4));
    }

    #[test]
    fn retries_wait_longer_up_to_a_bound() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        host.on_send(t0);
        host.on_answer(t0 + 100 * MS, t0, 0);
        assert_eq!(host.timeout(), 300 * MS);
        assert_eq!(host.timeout_for(0), 300 * MS);
        assert_eq!(host.timeout_for(1), 600 * MS);
        assert_eq!(host.timeout_for(2), 900 * MS);
        assert_eq!(host.timeout_for(9), 900 * MS);
        let silent = HostTiming::new(profile());
        assert_eq!(
            silent.timeout_for(1),
            1000 * MS,
            "no back-off before an answer"
        );
        let mut slow = HostTiming::new(profile());
        slow.on_send(t0);
        slow.on_answer(t0 + 4000 * MS, t0, 0);
        assert_eq!(slow.timeout_for(2), 10_000 * MS, "at most the maximum");
    }

    #[test]
    fn the_scan_delay_spaces_probes() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(Profile::preset(2));
        assert!(host.can_send(t0));
        host.on_send(t0);
        host.on_answer(t0 + MS, t0, 0);
        assert!(!host.can_send(t0 + 399 * MS));
        assert!(host.can_send(t0 + 400 * MS));
        assert_eq!(host.next_send_at(t0 + MS), t0 + 400 * MS);
    }

    #[test]
    fn the_icmp_ration_is_noticed_at_a_silence_after_errors() {
        let t0 = Instant::now();
        let mut icmp = IcmpLimit::default();
        // Silence from a host that never sent an error: a drop, and a try like any other.
        icmp.on_send(1);
        assert!(icmp.on_silence(t0 + 100 * MS, t0, 1));
        assert!(!icmp.noticed());
        icmp.on_send(1);
        icmp.on_answer(t0 + MS, t0, 0, 1, false);
        assert!(
            !icmp.noticed(),
            "a datagram from the port costs the host nothing"
        );
        icmp.on_send(1);
        icmp.on_answer(t0 + MS, t0, 0, 1, true);
        assert!(
            icmp.allows(t0 + MS, 1),
            "nothing held back before the ration bites"
        );
        icmp.on_send(1);
        let noticed = t0 + 100 * MS;
        assert!(!icmp.on_silence(noticed, t0, 1), "sent unpaced: no try");
        assert_eq!(icmp.interval(), Some(SECOND));
        // The host may have nothing left: the first token comes an interval later.
        assert!(!icmp.allows(noticed, 1));
        assert_eq!(icmp.next_allowed(noticed, 1), Some(noticed + SECOND));
        assert!(icmp.allows(noticed + SECOND, 1));
        let mut loopback = IcmpLimit::default();
        loopback.exempt();
        loopback.on_send(1);
        loopback.on_answer(t0, t0, 0, 1, true);
        loopback.on_send(1);
        assert!(loopback.on_silence(noticed, t0, 1));
        assert!(!loopback.noticed());
    }

    fn before(t0: Instant) -> Instant {
        t0.checked_sub(MS)
            .expect("a clock past its first millisecond")
    }

    /// A ration noticed at `t0`, its model empty then.
    fn rationed(t0: Instant) -> IcmpLimit {
        let mut icmp = IcmpLimit::default();
        icmp.on_send(1);
        icmp.on_answer(t0, t0, 0, 1, true);
        icmp.on_send(1);
        icmp.on_silence(t0, before(t0), 1);
        icmp
    }

    #[test]
    fn each_try_in_flight_holds_a_token_and_a_silence_gives_it_back() {
        let t0 = Instant::now();
        let mut icmp = rationed(t0);
        let t1 = t0 + SECOND;
        assert!(icmp.allows(t1, 1));
        icmp.on_send(1);
        assert!(!icmp.allows(t1, 1), "the one token is the try's");
        assert_eq!(icmp.next_allowed(t1, 1), Some(t1 + SECOND));
        // Vouched for and silent: a drop, a try of the port; the token is still there.
        assert!(icmp.on_silence(t1 + 100 * MS, t1, 1));
        assert!(icmp.allows(t1 + 100 * MS, 1));
        icmp.on_send(1);
        icmp.on_answer(t1 + 101 * MS, t1 + 100 * MS, 0, 1, true);
        assert!(!icmp.allows(t1 + 101 * MS, 1), "the error spent it");
        // The host earns its tokens on its own clock, not from the error.
        let next = icmp.next_allowed(t1 + 101 * MS, 1).unwrap();
        let due = t1 + SECOND;
        let off = next.saturating_duration_since(due) + due.saturating_duration_since(next);
        assert!(off < Duration::from_micros(2), "{off:?}");
        // Six in flight hold every token the host can keep: only an answer makes room.
        let mut full = rationed(t0);
        for _ in 0..6 {
            full.on_send(1);
        }
        assert_eq!(full.next_allowed(t0 + 60 * SECOND, 1), None);
    }

    #[test]
    fn after_a_pause_the_ration_allows_a_burst() {
        let t0 = Instant::now();
        let mut icmp = rationed(t0);
        let later = t0 + 60 * SECOND;
        let mut burst = 0;
        while icmp.allows(later, 1) {
            icmp.on_send(1);
            burst += 1;
        }
        assert_eq!(burst, 6);
    }

    #[test]
    fn a_try_of_two_datagrams_holds_and_spends_two_tokens() {
        let t0 = Instant::now();
        let mut icmp = rationed(t0);
        let t1 = t0 + SECOND;
        assert!(!icmp.allows(t1, 2));
        assert_eq!(icmp.next_allowed(t1, 2), Some(t1 + SECOND));
        let t2 = t1 + SECOND;
        assert!(icmp.allows(t2, 2));
        icmp.on_send(2);
        assert!(!icmp.allows(t2, 1));
        icmp.on_answer(t2 + MS, t2, 0, 2, true);
        assert!(!icmp.allows(t2 + MS, 1), "both tokens spent");
        assert!(icmp.allows(t2 + SECOND + MS, 1));
        // More than the host can hold waits for a full bucket, not for ever.
        let many = rationed(t0);
        assert_eq!(many.next_allowed(t0, 9), Some(t0 + 6 * SECOND));
    }

    #[test]
    fn a_vouched_try_that_was_closed_after_all_slows_the_pace() {
        let t0 = Instant::now();
        let mut icmp = rationed(t0);
        let t1 = t0 + SECOND;
        icmp.on_send(1);
        assert!(icmp.on_silence(t1 + 100 * MS, t1, 1));
        // Its retry draws the error its first try should have: the host earns tokens
        // slower than the model said.
        icmp.on_send(1);
        icmp.on_answer(t1 + 201 * MS, t1 + 200 * MS, 1, 1, true);
        assert_eq!(icmp.interval(), Some(1500 * MS));
        assert!(!icmp.allows(t1 + 201 * MS, 1));
        // An error to a retry of a try sent before the ration was noticed says nothing.
        let mut unpaced = rationed(t0);
        unpaced.on_send(1);
        unpaced.on_answer(t1, before(t0), 1, 1, true);
        assert_eq!(unpaced.interval(), Some(SECOND));
    }

    #[test]
    fn max_rate_is_a_ceiling() {
        let t0 = Instant::now();
        let mut rate = Rate::new(t0, Some(100.0), None);
        let mut sent = 0;
        let mut now = t0;
        // One simulated second, polled every millisecond.
        while now < t0 + 1000 * MS {
            while rate.allows(now) {
                rate.on_send();
                sent += 1;
            }
            now += MS;
        }
        assert!((95..=111).contains(&sent), "{sent}");
        while rate.allows(now) {
            rate.on_send();
        }
        assert!(rate.next_allowed(now) > now);
        let mut free = Rate::new(t0, None, None);
        assert!(free.allows(t0));
        assert_eq!(free.next_allowed(t0), t0);
    }

    #[test]
    fn min_rate_is_a_floor() {
        let t0 = Instant::now();
        let mut rate = Rate::new(t0, None, Some(1000.0));
        assert!(!rate.behind_floor(t0));
        assert!(rate.behind_floor(t0 + 10 * MS));
        for _ in 0..10 {
            rate.on_send();
        }
        assert!(!rate.behind_floor(t0 + 10 * MS));
        assert_eq!(rate.sent(), 10);
        assert!(!Rate::new(t0, None, None).behind_floor(t0 + 1000 * MS));
    }
}
