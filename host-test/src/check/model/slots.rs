//! The singleton-job world: workers (some sharing a node id, as replicas of one deployment
//! do) claim slot 1, then slot 2, ... of one job with the real `slot::SlotClaim`, against
//! `memstore`. Every interleaving of their requests and answers, with lost requests, lost
//! answers (the write applied or not), timeouts and 409s within a fault budget. A claim that
//! errs is retried with its claim id, as a caller does; the slot record may be lost (an
//! operator, a lifecycle rule) once the job's marker is written. Judged by the simulator's (k)
//! ([`sim::judge_slot`]): at most one claim wins each slot, the stored slot never goes back,
//! and a slot the store says was claimed was won by a claim (none left running nowhere).

use super::{Fingerprint, Model};
use crate::check::sim::{self, Profile, SimViolation, STORE_EPOCH_S};
use s3_election::config::{ElectionConfig, Keys};
use s3_election::memstore::MemStore;
use s3_election::mutation::Mutation;
use s3_election::protocol::{Outcome, Request};
use s3_election::slot::{Claim, SlotClaim, SlotRecord, MAX_SLOT_REQUESTS};
use s3_election::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Workers; the first `shared` of them share one node id.
    pub workers: usize,
    pub shared: usize,
    /// Slots claimed one after the other.
    pub slots: u64,
    /// Lost requests, lost answers and 409s allowed in all.
    pub faults: u8,
    /// Times the slot record may disappear (only once the job's marker exists: before it,
    /// nothing tells a lost record from a new job, the exception the README states).
    #[serde(default)]
    pub record_losses: u8,
}

pub struct SlotWorld {
    pub bounds: Bounds,
    pub mutation: Option<Mutation>,
    keys: Keys,
}

#[derive(Clone, Debug)]
struct Worker {
    claim: SlotClaim,
    /// The caller's claim id for this slot, kept for its retries.
    claim_id: String,
    /// Retries left after an error (one per fault suffices to reach a fault-free attempt).
    retries: u8,
    /// Requests left (a claim gives up after `MAX_SLOT_REQUESTS`).
    budget: usize,
    waiting: bool,
}

#[derive(Clone, Debug)]
enum Msg {
    Request {
        worker: usize,
        current: bool,
        request: Request,
    },
    Answer {
        worker: usize,
        outcome: Outcome,
    },
}

#[derive(Clone)]
pub struct Slots {
    slot: u64,
    workers: Vec<Worker>,
    net: Vec<Msg>,
    store: MemStore,
    faults_left: u8,
    losses_left: u8,
    highest: u64,
    pub log: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A worker sends its claim's next request.
    Send(usize),
    Apply(usize),
    Answer(usize),
    /// Fault: the request or answer is lost.
    Lose(usize),
    /// Fault: a write is answered 409 unapplied.
    Conflict(usize),
    /// A worker's timeout fires: at once when its request or answer was lost, or as a fault
    /// while its request is still on its way (it may still be applied).
    Timeout(usize),
    /// The slot record disappears (the number is ignored).
    LoseRecord(usize),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(w) => write!(f, "send {w}"),
            Action::Apply(m) => write!(f, "apply {m}"),
            Action::Answer(m) => write!(f, "answer {m}"),
            Action::Lose(m) => write!(f, "lose {m}"),
            Action::Conflict(m) => write!(f, "conflict {m}"),
            Action::Timeout(w) => write!(f, "timeout {w}"),
            Action::LoseRecord(_) => write!(f, "lose-record 0"),
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Action, String> {
        let mut words = s.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let n: usize = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("`{s}`: a number expected"))?;
        Ok(match verb {
            "send" => Action::Send(n),
            "apply" => Action::Apply(n),
            "answer" => Action::Answer(n),
            "lose" => Action::Lose(n),
            "conflict" => Action::Conflict(n),
            "timeout" => Action::Timeout(n),
            "lose-record" => Action::LoseRecord(n),
            _ => return Err(format!("`{s}` is not an action")),
        })
    }
}

/// The network in a canonical order, so that interleavings that reach the same messages
/// reach the same state.
fn order(m: &Msg) -> (usize, u8, bool) {
    match m {
        Msg::Request {
            worker, current, ..
        } => (*worker, 0, !*current),
        Msg::Answer { worker, .. } => (*worker, 1, false),
    }
}

fn push(net: &mut Vec<Msg>, m: Msg) {
    net.push(m);
    net.sort_by_key(order);
}

impl SlotWorld {
    pub fn new(bounds: Bounds, mutation: Option<Mutation>) -> SlotWorld {
        let keys = Self::config(0, 0).keys();
        SlotWorld {
            bounds,
            mutation,
            keys,
        }
    }

    fn config(worker: usize, shared: usize) -> ElectionConfig {
        let node_id = if worker < shared {
            "w0".into()
        } else {
            format!("w{worker}")
        };
        let p = Profile::from_seed(0, None);
        ElectionConfig {
            node_id,
            stateless: true,
            ..sim::sim_config(&p, 0)
        }
    }

    fn claims(&self, slot: u64) -> Vec<Worker> {
        (0..self.bounds.workers)
            .map(|i| {
                let claim_id = format!("w{i}-slot{slot}");
                Worker {
                    claim: self.claim(i, slot, &claim_id),
                    claim_id,
                    retries: self.bounds.faults,
                    budget: MAX_SLOT_REQUESTS,
                    waiting: false,
                }
            })
            .collect()
    }

    fn claim(&self, worker: usize, slot: u64, claim_id: &str) -> SlotClaim {
        let config = Self::config(worker, self.bounds.shared);
        let mut claim = SlotClaim::new(&config, slot, claim_id.to_string());
        claim.set_mutation(self.mutation);
        claim
    }

    /// A claim that erred is tried again, as a caller does: with the same claim id (the old
    /// way, mutation retry-without-claim-id, with a new one).
    fn retry_errors(&self, s: &mut Slots) {
        let slot = s.slot;
        for i in 0..s.workers.len() {
            let w = &s.workers[i];
            let erred = matches!(w.claim.result(), Some(Err(Error::Transport(_))));
            if !erred || w.retries == 0 {
                continue;
            }
            let mut claim_id = w.claim_id.clone();
            if self.mutation == Some(Mutation::RetryWithoutClaimId) {
                claim_id = format!("{claim_id}-retry{}", w.retries);
            }
            let claim = self.claim(i, slot, &claim_id);
            let w = &mut s.workers[i];
            w.claim = claim;
            w.claim_id = claim_id;
            w.retries -= 1;
            w.budget = MAX_SLOT_REQUESTS;
        }
    }

    /// Once every claim of the slot is over: judge it, and start the next slot.
    fn end_round(&self, s: &mut Slots) -> Option<SimViolation> {
        if s.workers.iter().any(|w| w.waiting) {
            return None;
        }
        for w in s.workers.iter_mut() {
            if w.budget == 0 {
                w.claim.abandon(Error::Transport("out of requests".into()));
            }
        }
        self.retry_errors(s);
        if s.workers.iter().any(|w| w.claim.result().is_none()) {
            return None;
        }
        let winners: Vec<String> = s
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.claim.result() == Some(&Ok(Claim::Won)))
            .map(|(i, _)| format!("worker {i}"))
            .collect();
        let stored = s
            .store
            .get_object(&self.keys.slot)
            .map(|o| SlotRecord::decode(&o.body).map_or(0, |r| r.slot));
        if let Some(log) = s.log.as_mut() {
            log.push(format!(
                "slot {} over: won by {:?}, stored slot {stored:?}",
                s.slot, winners
            ));
        }
        // A slot the store says was claimed, won by nobody: ran nowhere (unless a caller
        // gave up on an error, or the record was lost and claims are refused from then on).
        let gave_up = s
            .workers
            .iter()
            .any(|w| matches!(w.claim.result(), Some(Err(Error::Transport(_)))));
        if winners.is_empty() && stored == Some(s.slot) && !gave_up {
            return Some(SimViolation::SlotRanNowhere { slot: s.slot });
        }
        if let Some(v) = sim::judge_slot(s.slot, winners, stored, &mut s.highest) {
            return Some(v);
        }
        if s.slot < self.bounds.slots {
            s.slot += 1;
            s.workers = self.claims(s.slot);
            s.net.retain(|m| matches!(m, Msg::Request { .. }));
            for m in s.net.iter_mut() {
                if let Msg::Request { current, .. } = m {
                    *current = false;
                }
            }
        }
        None
    }

    fn answer(&self, s: &mut Slots, worker: usize, outcome: Outcome) -> Option<SimViolation> {
        let w = &mut s.workers[worker];
        w.waiting = false;
        w.claim.handle_response(outcome);
        self.end_round(s)
    }
}

impl Model for SlotWorld {
    type State = Slots;
    type Action = Action;

    fn init(&self) -> Vec<Slots> {
        vec![Slots {
            slot: 1,
            workers: self.claims(1),
            net: Vec::new(),
            store: MemStore::new(),
            faults_left: self.bounds.faults,
            losses_left: self.bounds.record_losses,
            highest: 0,
            log: None,
        }]
    }

    fn actions(&self, s: &Slots, out: &mut Vec<Action>) {
        if s.losses_left > 0
            && s.store.get_object(&self.keys.slot).is_some()
            && s.store.get_object(&self.keys.job).is_some()
        {
            out.push(Action::LoseRecord(0));
        }
        for (i, w) in s.workers.iter().enumerate() {
            let in_flight = s.net.iter().any(|m| match m {
                Msg::Request {
                    worker, current, ..
                } => *worker == i && *current,
                Msg::Answer { worker, .. } => *worker == i,
            });
            if w.waiting && (!in_flight || s.faults_left > 0) {
                out.push(Action::Timeout(i));
            } else if !w.waiting && w.budget > 0 && w.claim.wants_to_send() {
                out.push(Action::Send(i));
            }
        }
        for (m, msg) in s.net.iter().enumerate() {
            match msg {
                Msg::Request { request, .. } => {
                    out.push(Action::Apply(m));
                    if s.faults_left > 0 && matches!(request, Request::PutSlot { .. }) {
                        out.push(Action::Conflict(m));
                    }
                }
                Msg::Answer { .. } => out.push(Action::Answer(m)),
            }
            if s.faults_left > 0 {
                out.push(Action::Lose(m));
            }
        }
    }

    fn step(&self, s: &mut Slots, a: &Action) -> Option<SimViolation> {
        if let Some(log) = s.log.as_mut() {
            log.push(format!("[slot {}] {a}", s.slot));
        }
        match *a {
            Action::Send(i) => {
                let w = &mut s.workers[i];
                let request = w.claim.poll_request()?;
                w.budget -= 1;
                w.waiting = true;
                push(
                    &mut s.net,
                    Msg::Request {
                        worker: i,
                        current: true,
                        request,
                    },
                );
                None
            }
            Action::Apply(m) => {
                let Msg::Request {
                    worker,
                    current,
                    request,
                } = s.net.remove(m)
                else {
                    return None;
                };
                let outcome = s.store.apply(&self.keys, &request, STORE_EPOCH_S * 1000);
                if let Some(log) = s.log.as_mut() {
                    log.push(format!(
                        "  store: worker {worker}'s {request:?} -> {outcome:?}"
                    ));
                }
                if current {
                    push(&mut s.net, Msg::Answer { worker, outcome });
                }
                None
            }
            Action::Answer(m) => {
                let Msg::Answer { worker, outcome } = s.net.remove(m) else {
                    return None;
                };
                self.answer(s, worker, outcome)
            }
            Action::Lose(m) => {
                s.net.remove(m);
                s.faults_left -= 1;
                None
            }
            Action::Conflict(m) => {
                let Msg::Request {
                    worker, current, ..
                } = s.net.remove(m)
                else {
                    return None;
                };
                s.faults_left -= 1;
                if current {
                    push(
                        &mut s.net,
                        Msg::Answer {
                            worker,
                            outcome: Outcome::Conflict,
                        },
                    );
                }
                None
            }
            Action::Timeout(i) => {
                let in_flight = s.net.iter().any(|m| match m {
                    Msg::Request {
                        worker, current, ..
                    } => *worker == i && *current,
                    Msg::Answer { worker, .. } => *worker == i,
                });
                if in_flight {
                    s.faults_left -= 1;
                }
                s.net
                    .retain(|m| !matches!(m, Msg::Answer { worker, .. } if *worker == i));
                for m in s.net.iter_mut() {
                    if let Msg::Request {
                        worker, current, ..
                    } = m
                    {
                        if *worker == i {
                            *current = false;
                        }
                    }
                }
                s.net.sort_by_key(order);
                let timeout = Outcome::Transient(Error::Transport("timeout".into()));
                self.answer(s, i, timeout)
            }
            Action::LoseRecord(_) => {
                s.store.delete(&self.keys.slot);
                s.losses_left -= 1;
                None
            }
        }
    }

    fn fingerprint(&self, s: &Slots) -> u128 {
        let mut f = Fingerprint::default();
        f.u64(s.slot);
        f.u64(s.highest);
        f.bytes(&[s.faults_left, s.losses_left]);
        f.debug(&s.workers);
        f.debug(&s.net);
        for key in [&self.keys.slot, &self.keys.job] {
            match s.store.get_object(key) {
                Some(o) => f.bytes(&o.body),
                None => f.bytes(b"-"),
            }
        }
        f.finish()
    }
}
