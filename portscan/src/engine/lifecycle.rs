//! The life of one probe, from its place in a queue to its end, as an explicit state
//! machine in the manner of smoltcp's `tcp::State`: [`ProbeState`] names every state a
//! (host, port) pair's probe can be in (queued, in flight on a try, in a follow-up stage
//! on an open port's socket, final), and its four transition functions ([`launch`],
//! [`answer`], [`expire`], [`abandon`]) are every move between them. The event loop keeps
//! each probe in one of these states (queued ones in its queues, those on a socket in its
//! slab), calls the transition that what happened asks for, and then does what the new
//! state needs of the world: arming a socket and setting its deadline, queueing the probe
//! again, or reporting its result. What the host's timing learns from a move is told to it
//! here, with the move, so the loop cannot forget it on one path.
//!
//! [`launch`]: ProbeState::launch
//! [`answer`]: ProbeState::answer
//! [`expire`]: ProbeState::expire
//! [`abandon`]: ProbeState::abandon

use std::time::{Duration, Instant};

use common::contract::record::{PortState, Reason};

use crate::probe::Verdict;
use crate::timing::HostTiming;

/// Where a probe is in its life, with what each state holds. `S` is the prober's socket.
///
/// ```text
/// Queued { tries }
///   launch, no answer yet                  -> InFlight { tries }  (the timing counts it sent)
///   launch, answered at once (loopback)    -> as InFlight's answer, at once
///   launch, a local failure at once        -> Queued { tries }    (nothing went out)
///   launch, no route at once               -> Final(Unroutable)
///   abandon                                -> Final(Abandoned)
/// InFlight { socket, tries, sent, deadline, rationed }
///   answer: a port state                   -> Final(Found)        (a round trip for the timing)
///   answer: a state, and a follow-up       -> FollowUp            (a round trip for the timing)
///   answer: a local failure                -> Queued { tries }    (the same try, later)
///   answer: no route                       -> Final(Unroutable)
///   expire, rationed and not vouched for   -> Queued { tries }    (the same try, later)
///   expire, the timing allows a retry      -> Queued { tries + 1 }
///   expire, tries used up                  -> Final(Found: the prober's silence)
///   abandon                                -> Final(Abandoned)
/// FollowUp { socket, state, reason, rtt, deadline }
///   answer: a port state                   -> Final(Found: that state, the try's rtt)
///   answer: a state, and a further stage   -> FollowUp            (a new deadline)
///   answer: a local failure, or no route   -> Final(Found: the state it had)
///   expire                                 -> Final(Found: the state it had)
///   abandon                                -> Final(Abandoned)
/// Final(outcome)                           (no way out)
/// ```
///
/// A rationed try is one whose port may answer with ICMP errors (one per datagram, UDP's),
/// which the host rations; its silence counts as a try only where the host's
/// [`IcmpLimit`](crate::timing::IcmpLimit) vouched for an answer, and the ration learns
/// from its answer or silence.
///
/// A follow-up stage is the prober's: the timing learned what it could from the answer
/// that opened it, and what a service says, or how long it takes, is not the path's.
///
/// The loop's `launch` makes the launch moves, `complete` the answers, `expire` the
/// deadlines, and `send`, `complete` and `expire` abandon a probe whose host is gone. A move
/// that leaves a socket state hands its socket back ([`Transition::released`]); a move the
/// table does not list is a bug in the loop, and panics.
#[derive(Debug)]
pub enum ProbeState<S> {
    /// Waiting to go out on try `tries` (0 = the first): not yet drawn from the
    /// permutation, parked while its host's window is full, or queued again after a local
    /// failure or an unanswered try. It stays here while no socket can be had.
    Queued { tries: u8 },
    /// Try `tries` went out at `sent` on `socket`, which is armed for the try's answer; the
    /// probe gives up on it at `deadline`. `rationed`: how many ICMP errors, which the host
    /// rations, a closed port answers it with (0: none).
    InFlight {
        socket: S,
        tries: u8,
        sent: Instant,
        deadline: Instant,
        rationed: u8,
    },
    /// The port is in `state` for `reason`, decided by an answer that took `rtt`, and the
    /// prober asked to keep `socket` for a follow-up stage ([`Verdict::FollowUp`]): it is
    /// armed for reading until `deadline`.
    FollowUp {
        socket: S,
        state: PortState,
        reason: Reason,
        rtt: Duration,
        deadline: Instant,
    },
    /// The probe is over.
    Final(Outcome),
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The port's state and why, and the round trip of the answer to its try: none when
    /// silence decided, and a follow-up stage's answers are not round trips of the path.
    Found {
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    },
    /// This machine has no route to the host: the host fails, and its other probes with it.
    Unroutable,
    /// Its host was gone (excluded, failed, or past its timeout): no result.
    Abandoned,
}

/// A probe's new state, and the socket the move let go of, for the prober to keep for
/// another try or to close.
#[derive(Debug)]
#[must_use = "the new state is the probe's only state"]
pub struct Transition<S> {
    pub next: ProbeState<S>,
    pub released: Option<S>,
}

impl<S> Transition<S> {
    fn to(next: ProbeState<S>) -> Self {
        Self {
            next,
            released: None,
        }
    }

    fn releasing(socket: S, next: ProbeState<S>) -> Self {
        Self {
            next,
            released: Some(socket),
        }
    }
}

impl<S> ProbeState<S> {
    /// A queued probe's try went out on `socket` at `sent`; `at_once` is the prober's
    /// verdict and its time when the answer came within the call; `rationed`, how many
    /// ICMP errors a closed port answers it with.
    pub fn launch(
        self,
        socket: S,
        sent: Instant,
        at_once: Option<(Verdict, Instant)>,
        rationed: u8,
        timing: &mut HostTiming,
    ) -> Transition<S> {
        let Self::Queued { tries } = self else {
            panic!("launched a probe that is not queued: {}", self.name());
        };
        match at_once {
            // Nothing left this machine: the timing has nothing to count.
            Some((Verdict::Local, _)) => Transition::releasing(socket, Self::Queued { tries }),
            Some((Verdict::NoRoute, _)) => {
                Transition::releasing(socket, Self::Final(Outcome::Unroutable))
            }
            at_once => {
                timing.on_send(sent);
                if rationed > 0 {
                    timing.icmp_mut().on_send(rationed);
                }
                let deadline = sent + timing.timeout_for(tries);
                let in_flight = Self::InFlight {
                    socket,
                    tries,
                    sent,
                    deadline,
                    rationed,
                };
                match at_once {
                    Some((verdict, at)) => in_flight.answer(verdict, at, timing),
                    None => Transition::to(in_flight),
                }
            }
        }
    }

    /// The socket of a probe in flight or in a follow-up stage had something to say at
    /// `at`, which the prober judged `verdict`.
    pub fn answer(self, verdict: Verdict, at: Instant, timing: &mut HostTiming) -> Transition<S> {
        match self {
            Self::InFlight {
                socket,
                tries,
                sent,
                rationed,
                ..
            } => {
                if rationed > 0 {
                    let icmp = timing.icmp_mut();
                    match verdict {
                        Verdict::Final(state, _) | Verdict::FollowUp { state, .. } => {
                            // Whatever is not a datagram from the port is an ICMP error.
                            let error = state != PortState::Open;
                            icmp.on_answer(at, sent, tries, rationed, error);
                        }
                        Verdict::Local | Verdict::NoRoute => icmp.on_abandon(rationed),
                    }
                }
                Self::answer_try(socket, tries, sent, verdict, at, timing)
            }
            Self::FollowUp {
                socket,
                state,
                reason,
                rtt,
                ..
            } => match verdict {
                Verdict::Final(state, reason) => {
                    let found = Outcome::Found {
                        state,
                        reason,
                        rtt: Some(rtt),
                    };
                    Transition::releasing(socket, Self::Final(found))
                }
                Verdict::FollowUp {
                    state,
                    reason,
                    wait,
                } => Transition::to(Self::FollowUp {
                    socket,
                    state,
                    reason,
                    rtt,
                    deadline: at + wait,
                }),
                // The port answered already: a stage that fails takes nothing from that.
                Verdict::Local | Verdict::NoRoute => {
                    Transition::releasing(socket, Self::found(state, reason, rtt))
                }
            },
            Self::Queued { .. } | Self::Final(_) => {
                panic!("an answer to a probe not on a socket: {}", self.name())
            }
        }
    }

    /// The answer to try `tries`, sent at `sent`.
    fn answer_try(
        socket: S,
        tries: u8,
        sent: Instant,
        verdict: Verdict,
        at: Instant,
        timing: &mut HostTiming,
    ) -> Transition<S> {
        let rtt = at.saturating_duration_since(sent);
        match verdict {
            Verdict::Final(state, reason) => {
                timing.on_answer(at, sent, tries);
                Transition::releasing(socket, Self::found(state, reason, rtt))
            }
            Verdict::FollowUp {
                state,
                reason,
                wait,
            } => {
                timing.on_answer(at, sent, tries);
                Transition::to(Self::FollowUp {
                    socket,
                    state,
                    reason,
                    rtt,
                    deadline: at + wait,
                })
            }
            Verdict::Local => {
                timing.on_abandon();
                Transition::releasing(socket, Self::Queued { tries })
            }
            Verdict::NoRoute => {
                timing.on_abandon();
                Transition::releasing(socket, Self::Final(Outcome::Unroutable))
            }
        }
    }

    /// The end of a probe whose port is in `state` for `reason`, after a round trip of `rtt`.
    fn found(state: PortState, reason: Reason, rtt: Duration) -> Self {
        Self::Final(Outcome::Found {
            state,
            reason,
            rtt: Some(rtt),
        })
    }

    /// A probe's deadline passed without an answer at `now`; `silence` is what the port is
    /// if no try is left (the prober's word for its protocol).
    pub fn expire(
        self,
        silence: (PortState, Reason),
        now: Instant,
        timing: &mut HostTiming,
    ) -> Transition<S> {
        let (socket, tries, sent, rationed) = match self {
            Self::InFlight {
                socket,
                tries,
                sent,
                rationed,
                ..
            } => (socket, tries, sent, rationed),
            Self::FollowUp {
                socket,
                state,
                reason,
                rtt,
                ..
            } => return Transition::releasing(socket, Self::found(state, reason, rtt)),
            Self::Queued { .. } | Self::Final(_) => {
                panic!("a deadline for a probe not on a socket: {}", self.name())
            }
        };
        timing.on_timeout();
        let counts = rationed == 0 || timing.icmp_mut().on_silence(now, sent, rationed);
        let next = if !counts {
            // The host may have had no error left to send: the same try goes again.
            Self::Queued { tries }
        } else if timing.should_retry(tries) {
            Self::Queued { tries: tries + 1 }
        } else {
            let (state, reason) = silence;
            Self::Final(Outcome::Found {
                state,
                reason,
                rtt: None,
            })
        };
        Transition::releasing(socket, next)
    }

    /// The probe's host is gone: whatever the probe was doing, it ends without a result.
    /// The host's timing is left alone; nothing will be sent to the host again.
    pub fn abandon(self) -> Transition<S> {
        let abandoned = Self::Final(Outcome::Abandoned);
        match self {
            Self::Queued { .. } => Transition::to(abandoned),
            Self::InFlight { socket, .. } | Self::FollowUp { socket, .. } => {
                Transition::releasing(socket, abandoned)
            }
            Self::Final(_) => panic!("abandoned a probe that is over"),
        }
    }

    /// The socket a probe holds and when the loop stops waiting on it; `None` for a probe
    /// without a socket.
    pub fn watched(&self) -> Option<(&S, Instant)> {
        match self {
            Self::InFlight {
                socket, deadline, ..
            }
            | Self::FollowUp {
                socket, deadline, ..
            } => Some((socket, *deadline)),
            Self::Queued { .. } | Self::Final(_) => None,
        }
    }

    /// The state's name, for the message of a move the table does not list.
    fn name(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::InFlight { .. } => "in flight",
            Self::FollowUp { .. } => "in a follow-up",
            Self::Final(_) => "final",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::Profile;

    const MS: Duration = Duration::from_millis(1);
    const CLOSED: Verdict = Verdict::Final(PortState::Closed, Reason::ConnRefused);
    const SILENCE: (PortState, Reason) = (PortState::OpenFiltered, Reason::NoResponse);

    /// A socket is a number, so that a test sees which one a move let go of.
    type Socket = u32;

    const FIRST: ProbeState<Socket> = ProbeState::Queued { tries: 0 };

    fn timing() -> HostTiming {
        HostTiming::new(Profile::preset(3))
    }

    /// A probe in flight on socket 7, try `tries`, sent at `start`.
    fn in_flight(start: Instant, tries: u8, timing: &mut HostTiming) -> ProbeState<Socket> {
        let moved = ProbeState::Queued { tries }.launch(7, start, None, 0, timing);
        assert_eq!(moved.released, None);
        moved.next
    }

    fn found(state: PortState, reason: Reason, rtt: Option<Duration>) -> Outcome {
        Outcome::Found { state, reason, rtt }
    }

    fn outcome(moved: &Transition<Socket>) -> Option<Outcome> {
        match moved.next {
            ProbeState::Final(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn tries(moved: &Transition<Socket>) -> Option<u8> {
        match moved.next {
            ProbeState::Queued { tries } => Some(tries),
            _ => None,
        }
    }

    #[test]
    fn a_launch_without_an_answer_is_in_flight_until_the_timeout() {
        let start = Instant::now();
        let mut timing = timing();
        let ProbeState::InFlight {
            socket,
            tries,
            sent,
            deadline,
            rationed,
        } = in_flight(start, 0, &mut timing)
        else {
            panic!("in flight");
        };
        assert_eq!((socket, tries, sent, rationed), (7, 0, start, 0));
        assert_eq!(deadline, start + Profile::preset(3).initial_timeout);
        // The window of ten fills with launches.
        for _ in 1..10 {
            assert!(timing.can_send(start));
            in_flight(start, 0, &mut timing);
        }
        assert!(!timing.can_send(start));
    }

    #[test]
    fn an_answer_at_once_is_the_answer_of_a_try_in_flight() {
        let start = Instant::now();
        for (verdict, expected) in [
            (
                CLOSED,
                Some(found(PortState::Closed, Reason::ConnRefused, Some(2 * MS))),
            ),
            (Verdict::NoRoute, Some(Outcome::Unroutable)),
            (Verdict::Local, None),
        ] {
            let at_once = FIRST.launch(7, start, Some((verdict, start + 2 * MS)), 0, &mut timing());
            let mut clock = timing();
            let answered =
                in_flight(start, 0, &mut clock).answer(verdict, start + 2 * MS, &mut clock);
            assert_eq!(outcome(&at_once), expected, "{verdict:?}");
            assert_eq!(outcome(&answered), expected, "{verdict:?}");
            assert_eq!(at_once.released, Some(7), "{verdict:?}");
            assert_eq!(answered.released, Some(7), "{verdict:?}");
        }
    }

    #[test]
    fn a_local_failure_queues_the_same_try_again() {
        let start = Instant::now();
        let mut untouched = timing();
        for _ in 0..10 {
            let at_once = Some((Verdict::Local, start));
            let moved =
                ProbeState::Queued { tries: 2 }.launch(7, start, at_once, 0, &mut untouched);
            assert_eq!((tries(&moved), moved.released), (Some(2), Some(7)));
        }
        assert!(
            untouched.can_send(start),
            "nothing went out to fill the window"
        );
        let mut timing = timing();
        let moved = in_flight(start, 2, &mut timing).answer(Verdict::Local, start, &mut timing);
        assert_eq!((tries(&moved), moved.released), (Some(2), Some(7)));
    }

    #[test]
    fn an_answer_teaches_the_timing_a_round_trip() {
        let start = Instant::now();
        let mut timing = timing();
        let moved = in_flight(start, 0, &mut timing).answer(CLOSED, start + 40 * MS, &mut timing);
        assert_eq!(
            outcome(&moved),
            Some(found(PortState::Closed, Reason::ConnRefused, Some(40 * MS)))
        );
        // srtt 40 ms, rttvar 20 ms: the next try waits 120 ms, not the initial second.
        assert_eq!(timing.timeout(), 120 * MS);
    }

    #[test]
    fn a_deadline_retries_while_the_timing_allows_then_is_the_probers_silence() {
        let start = Instant::now();
        let mut timing = timing();
        // A host that never answered: nmap's rule allows one retry.
        let moved = in_flight(start, 0, &mut timing).expire(SILENCE, start, &mut timing);
        assert_eq!((tries(&moved), moved.released), (Some(1), Some(7)));
        let moved = in_flight(start, 1, &mut timing).expire(SILENCE, start, &mut timing);
        assert_eq!(
            outcome(&moved),
            Some(found(PortState::OpenFiltered, Reason::NoResponse, None))
        );
        assert_eq!(moved.released, Some(7));
    }

    #[test]
    fn abandoning_ends_any_probe_that_is_not_over() {
        let start = Instant::now();
        let mut timing = timing();
        let moved = FIRST.abandon();
        assert_eq!(
            (outcome(&moved), moved.released),
            (Some(Outcome::Abandoned), None)
        );
        let moved = in_flight(start, 0, &mut timing).abandon();
        assert_eq!(
            (outcome(&moved), moved.released),
            (Some(Outcome::Abandoned), Some(7))
        );
    }

    /// A probe in a follow-up stage on socket 7: open, after a try answered in 40 ms at
    /// `start`, waiting up to five seconds.
    fn following_up(start: Instant, timing: &mut HostTiming) -> ProbeState<Socket> {
        let keep = Verdict::FollowUp {
            state: PortState::Open,
            reason: Reason::SynAck,
            wait: 5 * SECOND,
        };
        let moved = in_flight(start, 0, timing).answer(keep, start + 40 * MS, timing);
        assert_eq!(moved.released, None, "the socket is kept");
        moved.next
    }

    const SECOND: Duration = Duration::from_secs(1);
    const OPENED: Outcome = Outcome::Found {
        state: PortState::Open,
        reason: Reason::SynAck,
        rtt: Some(Duration::from_millis(40)),
    };

    #[test]
    fn an_answer_may_keep_the_socket_for_a_follow_up_stage_with_its_own_deadline() {
        let start = Instant::now();
        let mut timing = timing();
        let ProbeState::FollowUp {
            socket,
            state,
            reason,
            rtt,
            deadline,
        } = following_up(start, &mut timing)
        else {
            panic!("in a follow-up");
        };
        assert_eq!(
            (socket, state, reason),
            (7, PortState::Open, Reason::SynAck)
        );
        assert_eq!(rtt, 40 * MS);
        assert_eq!(deadline, start + 40 * MS + 5 * SECOND);
        assert_eq!(
            timing.timeout(),
            120 * MS,
            "the try's answer was a round trip"
        );
    }

    #[test]
    fn a_follow_up_stage_ends_with_its_verdict_and_the_round_trip_of_the_try() {
        let start = Instant::now();
        let mut timing = timing();
        let stage = following_up(start, &mut timing);
        let verdict = Verdict::Final(PortState::Closed, Reason::ConnRefused);
        let moved = stage.answer(verdict, start + 3 * SECOND, &mut timing);
        let rtt = Some(40 * MS);
        assert_eq!(
            outcome(&moved),
            Some(found(PortState::Closed, Reason::ConnRefused, rtt))
        );
        assert_eq!(moved.released, Some(7));
    }

    #[test]
    fn a_follow_up_stage_may_begin_a_further_one() {
        let start = Instant::now();
        let mut timing = timing();
        let further = Verdict::FollowUp {
            state: PortState::Open,
            reason: Reason::SynAck,
            wait: SECOND,
        };
        let moved = following_up(start, &mut timing).answer(further, start + SECOND, &mut timing);
        assert_eq!(moved.released, None);
        let Some((socket, deadline)) = moved.next.watched() else {
            panic!("still on its socket");
        };
        assert_eq!((*socket, deadline), (7, start + 2 * SECOND));
    }

    #[test]
    fn a_follow_up_that_fails_or_hears_nothing_ends_with_the_state_it_began_with() {
        let start = Instant::now();
        let mut timing = timing();
        for verdict in [Verdict::Local, Verdict::NoRoute] {
            let moved = following_up(start, &mut timing).answer(verdict, start, &mut timing);
            assert_eq!((outcome(&moved), moved.released), (Some(OPENED), Some(7)));
        }
        let moved = following_up(start, &mut timing).expire(SILENCE, start, &mut timing);
        assert_eq!((outcome(&moved), moved.released), (Some(OPENED), Some(7)));
        let moved = following_up(start, &mut timing).abandon();
        let abandoned = Some(Outcome::Abandoned);
        assert_eq!((outcome(&moved), moved.released), (abandoned, Some(7)));
    }

    #[test]
    fn a_follow_up_holds_no_place_in_the_hosts_window() {
        // A try's answer asks for a follow-up, freeing the try's place and growing the
        // window from ten to eleven, which eleven more tries fill. The follow-up's end
        // changes nothing: it holds no place to give back.
        let start = Instant::now();
        let mut timing = timing();
        let first = following_up(start, &mut timing);
        for _ in 0..9 {
            in_flight(start, 0, &mut timing);
        }
        assert!(timing.can_send(start));
        in_flight(start, 0, &mut timing);
        in_flight(start, 0, &mut timing);
        assert!(!timing.can_send(start));
        let _ = first.expire(SILENCE, start, &mut timing);
        assert!(!timing.can_send(start));
    }

    #[test]
    #[should_panic(expected = "an answer to a probe not on a socket: queued")]
    fn a_queued_probe_gets_no_answer() {
        let now = Instant::now();
        let _ = FIRST.answer(CLOSED, now, &mut timing());
    }

    #[test]
    #[should_panic(expected = "launched a probe that is not queued: final")]
    fn a_final_probe_is_never_launched() {
        let now = Instant::now();
        let over = ProbeState::<Socket>::Final(Outcome::Abandoned);
        let _ = over.launch(7, now, None, 0, &mut timing());
    }

    #[test]
    #[should_panic(expected = "a deadline for a probe not on a socket: queued")]
    fn a_queued_probe_has_no_deadline() {
        let _ = FIRST.expire(SILENCE, Instant::now(), &mut timing());
    }
}
