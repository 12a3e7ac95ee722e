//! When to send, how long to wait, how many times to try: the adaptive timing of a scan as
//! small pure structs fed with events and an explicit `now`, so the event loop never reads
//! the clock behind their back and every rule here is unit-tested with a fake clock.
//!
//! The rules follow nmap's (`timing.cc`) and TCP's (RFC 6298): a smoothed RTT and its
//! variance give the probe timeout; a host retries a probe one try more than the most tries
//! that ever got an answer from it (nmap's rule), and more when the loss it has shown makes
//! losing every try of an answering port likely; a retry waits longer than the try before (a
//! bounded form of RFC 6298's back-off), so a burst of delay does not pass for silence.
//!
//! The congestion window per host is not nmap's, which halves on loss: on a long path
//! that loses a little at random (a radio link, a VPN over the internet) that keeps a scan at
//! a few dozen probes in flight (issue 13). Random loss is the link's, and costs retries;
//! congestion is told by what a queue does, judged once a round trip: the least RTT of the
//! round rising above the host's least RTT (TCP Vegas's signal: a queue building in front of
//! a bottleneck), or a round losing far more than the host usually does (a full queue
//! dropping in bursts). Queueing sets the window to what the path carried at its least RTT
//! (the window times the least RTT over the round's, BBR's bandwidth-delay product); a
//! burst of loss halves it. Until the first sign of congestion the window doubles each round
//! trip, so it reaches a long path's bandwidth-delay product in a few; after it, the window
//! grows by an eighth a round trip, probing for more as BBR does.
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
            // 20,000 probes a second on a 100 ms path: what a long link needs to scan all
            // ports in a few seconds, and far below the descriptor budget.
            max_cwnd: 2000.0,
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
    /// The least RTT of a first try's answer (the path with its queues empty), and when it
    /// was seen.
    min_rtt: Option<(Duration, Instant)>,
    /// The round trip being watched, from the first answer on.
    round: Option<Round>,
    /// Tries of probes that got an answer, and how many of those tries went unanswered:
    /// the host's loss over the whole scan, which sizes the retries.
    tries_answered: u64,
    tries_lost: u64,
    /// The host's ration of ICMP errors, for the tries that draw them (UDP's).
    icmp: IcmpLimit,
}

/// What one round trip showed: it ends when a probe sent after it began is answered.
#[derive(Debug, Clone, Copy)]
struct Round {
    started: Instant,
    /// The least RTT of the round's first-try answers.
    min_rtt: Option<Duration>,
    /// Answers, and those among them that came only to a retry of a try sent since the
    /// last cut; kept over rounds until there are [`LOSS_EVIDENCE_ROUND`] to judge.
    answered: u32,
    retried: u32,
    /// Begun by a cut: its answers are to probes sent under the old window, and say
    /// nothing of the new one.
    draining: bool,
}

impl Round {
    fn starting(now: Instant) -> Self {
        Self {
            started: now,
            min_rtt: None,
            answered: 0,
            retried: 0,
            draining: false,
        }
    }
}

/// The share of a round's answers that needed a retry past which the losses are a queue
/// dropping rather than the path's noise: three times the host's usual share, within these.
const LOSS_BURST_LEAST: f64 = 0.1;
const LOSS_BURST_MOST: f64 = 0.3;

/// The answers a round (or a few) needs before its share of retries means anything.
const LOSS_EVIDENCE_ROUND: u32 = 20;

/// How far the least RTT of a round may rise above the host's before the rise is a queue,
/// not jitter: a quarter of the least RTT, and at least this.
const QUEUE_DELAY_FLOOR: Duration = Duration::from_millis(5);

/// The least RTT is forgotten after this long (BBR's `min_rtt` window), so that a path that
/// became longer is not read as a queue that never drains.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);

/// The window's growth a round trip once congestion was seen: an eighth.
const PROBE_GROWTH: f64 = 0.125;

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
            min_rtt: None,
            round: None,
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
        let mut round = self.round.take().unwrap_or_else(|| Round::starting(now));
        round.answered += 1;
        if try_number > 0 {
            // The try before this one was lost on the way (a firewall's drop never answers
            // at all, so it counts for nothing here). It left about a timeout before this
            // one; lost before the last cut, it belongs to the burst the cut answered.
            let lost_at = sent.checked_sub(self.timeout_for(try_number - 1));
            let since_cut = match (self.last_cut, lost_at) {
                (Some(cut), Some(lost_at)) => lost_at >= cut,
                (Some(_), None) => false,
                (None, _) => true,
            };
            round.retried += u32::from(since_cut);
        } else {
            // Karn's rule: only a first try's answer times the path; a retried probe's
            // answer may belong to an earlier try (every try is a fresh connection here,
            // but the host may still be answering the previous one's SYN).
            let rtt = now.saturating_duration_since(sent);
            round.min_rtt = Some(round.min_rtt.map_or(rtt, |least| least.min(rtt)));
            let expired = |(_, seen): (Duration, Instant)| {
                now.saturating_duration_since(seen) > MIN_RTT_LIFETIME
            };
            if self
                .min_rtt
                .is_none_or(|least| rtt <= least.0 || expired(least))
            {
                self.min_rtt = Some((rtt, now));
            }
            self.sample_rtt(rtt);
            // Doubling a round trip until congestion shows, an eighth after.
            self.cwnd += if self.cwnd < self.ssthresh {
                1.0
            } else {
                PROBE_GROWTH
            };
            self.cwnd = self.cwnd.min(self.profile.max_cwnd);
        }
        if sent >= round.started {
            self.end_round(round, now);
        } else {
            self.round = Some(round);
        }
    }

    /// A round trip is over: judges what it showed, and starts the next.
    fn end_round(&mut self, round: Round, now: Instant) {
        let mut next = Round::starting(now);
        if round.draining {
            self.round = Some(next);
            return;
        }
        let queued = match (round.min_rtt, self.min_rtt) {
            (Some(round_least), Some((least, _))) => {
                let tolerance = (least / 4).max(QUEUE_DELAY_FLOOR);
                (round_least > least + tolerance).then_some((least, round_least))
            }
            _ => None,
        };
        let judged_loss = round.answered >= LOSS_EVIDENCE_ROUND;
        #[expect(clippy::cast_precision_loss, reason = "exact to 2^52 tries")]
        let usual = if self.tries_answered == 0 {
            0.0
        } else {
            self.tries_lost as f64 / self.tries_answered as f64
        };
        let burst = judged_loss
            && f64::from(round.retried)
                > f64::from(round.answered)
                    * (3.0 * usual).clamp(LOSS_BURST_LEAST, LOSS_BURST_MOST);
        if let Some((least, round_least)) = queued {
            // What the path carried with its queue empty: the window scaled down by the
            // queue's share of the round trip.
            self.cwnd = (self.cwnd * least.as_secs_f64() / round_least.as_secs_f64()).max(2.0);
            self.cut_at(now);
            next.draining = true;
        } else if burst {
            self.cwnd = (self.cwnd / 2.0).max(2.0);
            self.cut_at(now);
            next.draining = true;
        } else if !judged_loss {
            // Too few answers to judge the losses of: they count with the next round's.
            next.answered = round.answered;
            next.retried = round.retried;
        }
        self.round = Some(next);
    }

    /// Congestion was seen now: the window stops doubling from here.
    fn cut_at(&mut self, now: Instant) {
        self.ssthresh = self.cwnd;
        self.last_cut = Some(now);
    }

    /// A probe went unanswered for its whole timeout. Silence is what a firewall's drop
    /// looks like, so it says nothing about congestion; the answer to the retry may.
    pub fn on_timeout(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
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

    /// One round trip: as many probes as the window lets go at `at`, all answered `rtt`
    /// later, every `retried_every`-th only on its second try. Returns when it ended and
    /// how many went.
    fn round_trip(
        host: &mut HostTiming,
        at: Instant,
        rtt: Duration,
        retried_every: Option<usize>,
    ) -> (Instant, usize) {
        let mut sent = 0;
        while host.can_send(at) {
            host.on_send(at);
            sent += 1;
        }
        for answer in 1..=sent {
            let retried = retried_every.is_some_and(|every| answer % every == 0);
            host.on_answer(at + rtt, at, u8::from(retried));
        }
        (at + rtt, sent)
    }

    #[test]
    fn the_window_doubles_each_round_trip_until_it_reaches_the_most() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        let mut now = t0;
        let mut windows = Vec::new();
        for _ in 0..9 {
            let (end, sent) = round_trip(&mut host, now, 100 * MS, None);
            windows.push(sent);
            now = end;
        }
        // A 100 ms path carrying 20,000 probes a second is full in eight round trips.
        assert_eq!(windows, [10, 20, 40, 80, 160, 320, 640, 1280, 2000]);
    }

    #[test]
    fn scattered_losses_at_a_flat_round_trip_cost_no_window() {
        // This rule changed with issue 13: one answer in 25 needing a retry (2% lost each
        // way) used to cut the window whenever a few of them came close together.
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        let mut now = t0;
        let mut windows = Vec::new();
        for round in 0..30u32 {
            // Jitter of a few milliseconds is no queue.
            let rtt = (100 + round % 4) * MS;
            let (end, sent) = round_trip(&mut host, now, rtt, Some(25));
            windows.push(sent);
            now = end;
        }
        // A retried answer does not grow the window, so it doubles a little less.
        assert_eq!(&windows[..3], [10, 20, 40]);
        assert!(windows[8..].iter().all(|&sent| sent == 2000), "{windows:?}");
    }

    #[test]
    fn a_rising_round_trip_sets_the_window_to_what_the_path_carries() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        let mut now = t0;
        for _ in 0..3 {
            now = round_trip(&mut host, now, 20 * MS, None).0;
        }
        assert!((host.cwnd - 80.0).abs() < 1e-9);
        // A queue of 30 ms builds in front of a bottleneck; the round is judged at the
        // first answer of the next.
        let (end, sent) = round_trip(&mut host, now, 50 * MS, None);
        assert_eq!(sent, 80);
        host.on_send(end);
        host.on_answer(end + 50 * MS, end, 0);
        // The window as it was, 161, times 20 ms over 50: what the path carries with its
        // queue empty.
        assert!((host.cwnd - 64.4).abs() < 1e-9, "cwnd {}", host.cwnd);
        now = end + 50 * MS;
        // The round of the probes sent before the cut judges the old window: no second
        // cut; and from the cut on, the window grows by an eighth a round trip.
        let (end, sent) = round_trip(&mut host, now, 20 * MS, None);
        assert_eq!(sent, 64);
        assert!((host.cwnd - 72.4).abs() < 1e-9, "cwnd {}", host.cwnd);
        let (_, next) = round_trip(&mut host, end, 20 * MS, None);
        assert_eq!(next, 72);
        assert!((host.cwnd - 81.4).abs() < 1e-9, "cwnd {}", host.cwnd);
    }

    #[test]
    fn a_burst_of_loss_halves_the_window_once() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        let mut now = t0;
        for _ in 0..3 {
            now = round_trip(&mut host, now, 20 * MS, None).0;
        }
        // A queue overflowing: one answer in two came only to a retry. The window grew
        // by the other 40 before the round was judged, at the next round's first answer.
        let (end, _) = round_trip(&mut host, now, 20 * MS, Some(2));
        assert!((host.cwnd - 120.0).abs() < 1e-9, "cwnd {}", host.cwnd);
        host.on_send(end);
        host.on_answer(end + 20 * MS, end, 0);
        assert!((host.cwnd - 60.5).abs() < 1e-9, "cwnd {}", host.cwnd);
        // The retries of tries lost before the cut belong to the burst it answered, and
        // the round after it judges the old window: no further cut.
        now = end + 20 * MS;
        for _ in 0..3 {
            now = round_trip(&mut host, now, 20 * MS, Some(2)).0;
        }
        assert!(host.cwnd > 60.5, "cwnd {}", host.cwnd);
        // Losses of tries sent since the cut, far past the host's usual share, cut again.
        let later = now + 2 * SECOND;
        let (end, _) = round_trip(&mut host, later, 20 * MS, Some(2));
        let grown = host.cwnd;
        host.on_send(end);
        host.on_answer(end + 20 * MS, end, 0);
        assert!(
            (f64::midpoint(grown, PROBE_GROWTH) - host.cwnd).abs() < 1e-9,
            "cwnd {} from {grown}",
            host.cwnd
        );
    }

    #[test]
    fn a_path_that_grew_longer_is_not_a_queue_for_ever() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        let mut now = t0;
        for _ in 0..3 {
            now = round_trip(&mut host, now, 20 * MS, None).0;
        }
        // The route changed: 200 ms from now on. The least RTT seen is forgotten after
        // ten seconds, and the window grows again.
        let mut windows = Vec::new();
        while now < t0 + 20 * SECOND {
            let (end, sent) = round_trip(&mut host, now, 200 * MS, None);
            windows.push(sent);
            now = end;
            while host.in_flight > 0 {
                host.on_answer(now, t0, 0);
            }
        }
        let last = *windows.last().unwrap();
        assert!(last > 20, "{windows:?}");
    }

    #[test]
    fn scattered_losses_never_cut_the_window() {
        let t0 = Instant::now();
        let mut host = HostTiming::new(profile());
        // One answer in 20 needed a retry: a path losing 2.5% each way.
        for answer in 0..3000u32 {
            host.on_send(t0);
            let try_number = u8::from(answer % 20 == 19);
            host.on_answer(t0 + answer * MS, t0, try_number);
        }
        assert!((host.cwnd - 2000.0).abs() < 1e-9, "cwnd {}", host.cwnd);
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
