//! Singleton jobs on a schedule ("exactly one worker runs the job in each slot"), for cron
//! triggers where every invocation is a fresh instance. Each job has one object,
//! `<prefix><name>/slot`, naming the last slot claimed. A worker claims slot N with a
//! conditional write (create with `If-None-Match: *`, or `If-Match` the ETag it read when the
//! object names an earlier slot): of all workers firing for slot N, exactly one write succeeds.
//! No lease has to expire, so a crashed worker never costs a slot. A claim is won only by the
//! write that carries its own nonce, never by the node id in the record, so workers that share
//! an id still run each slot once. Sans-IO, like the core.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::config::ElectionConfig;
use crate::error::Error;
use crate::protocol::{ETag, EtagForm, Outcome, PutMode, Request};
use serde::{Deserialize, Serialize};

pub const SLOT_FORMAT: &str = "s3-election/slot/v1";
/// Enough for a read, a write and a read-back, twice.
pub const MAX_SLOT_REQUESTS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub format: String,
    pub slot: u64,
    pub holder: String,
    pub nonce: String,
    #[serde(default)]
    pub metadata: String,
}

impl SlotRecord {
    pub fn decode(bytes: &[u8]) -> Result<SlotRecord, String> {
        let r: SlotRecord =
            serde_json::from_slice(bytes).map_err(|_| "not a JSON slot record".to_string())?;
        if r.format != SLOT_FORMAT {
            return Err(format!(
                "unknown slot format {:?}",
                r.format.chars().take(64).collect::<String>()
            ));
        }
        Ok(r)
    }
}

/// How a claim ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds the slot: run the job.
    Won,
    /// Another worker claimed this slot (or a later one): do not run.
    Lost { holder: String, slot: u64 },
}

#[derive(Clone, Debug)]
enum Step {
    Read,
    Write {
        mode: PutMode,
        record: SlotRecord,
    },
    /// A write without a clear answer: read back and look for our nonce.
    ReadBack {
        record: SlotRecord,
        /// The write was refused (412) with `If-Match` this ETag.
        refused_on: Option<ETag>,
    },
    Done(Result<Claim, Error>),
}

/// One claim of one slot by one worker.
#[derive(Clone, Debug)]
pub struct SlotClaim {
    slot: u64,
    node_id: String,
    metadata: String,
    key: String,
    nonce: String,
    step: Step,
    conflicts: u8,
    /// How `If-Match` carries the ETag (see `crate::protocol::EtagForm`).
    etag_form: EtagForm,
    /// The form was switched once already (a store that refused an ETag it had just shown).
    form_switched: bool,
    /// Requests handed out so far (at most [`MAX_SLOT_REQUESTS`]).
    sent: usize,
    /// The old rule (a record naming our node id is our win), for the simulator only.
    won_by_node_id: bool,
}

impl SlotClaim {
    /// `nonce` must be fresh and random (it recognises our own write after an ambiguous answer).
    pub fn new(config: &ElectionConfig, slot: u64, nonce: String) -> SlotClaim {
        SlotClaim {
            slot,
            node_id: config.node_id.clone(),
            metadata: config.metadata.clone(),
            key: config.keys().slot,
            nonce,
            step: Step::Read,
            conflicts: 0,
            etag_form: config.etag_form,
            form_switched: false,
            sent: 0,
            won_by_node_id: false,
        }
    }

    /// Break the nonce rule (simulator mutation tests only).
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<crate::mutation::Mutation>) {
        self.won_by_node_id = mutation == Some(crate::mutation::Mutation::SlotWonByNodeId);
    }

    /// The next request, or `None` once [`SlotClaim::result`] is ready (a claim that could
    /// not settle within [`MAX_SLOT_REQUESTS`] ends with a transport error).
    pub fn poll_request(&mut self) -> Option<Request> {
        if self.result().is_none() && self.sent >= MAX_SLOT_REQUESTS {
            self.abandon(Error::Transport(format!(
                "the slot claim did not settle within {MAX_SLOT_REQUESTS} requests"
            )));
        }
        let request = match &self.step {
            Step::Read | Step::ReadBack { .. } => Some(Request::GetSlot),
            Step::Write { mode, record } => Some(Request::PutSlot {
                mode: mode.clone(),
                body: serde_json::to_vec(record).unwrap_or_default(),
            }),
            Step::Done(_) => None,
        };
        if request.is_some() {
            self.sent = self.sent.saturating_add(1);
        }
        request
    }

    /// Whether [`SlotClaim::poll_request`] would give a request.
    pub fn wants_to_send(&self) -> bool {
        self.result().is_none() && self.sent < MAX_SLOT_REQUESTS
    }

    pub fn handle_response(&mut self, outcome: Outcome) {
        let step = std::mem::replace(&mut self.step, Step::Read);
        self.step = match (step, outcome) {
            (_, Outcome::Fatal(e)) => Step::Done(Err(e)),
            (Step::Read | Step::ReadBack { .. }, Outcome::Transient(e)) => Step::Done(Err(e)),
            (Step::ReadBack { record, refused_on }, outcome) => match self.read(outcome) {
                Ok(Some((_, found))) if found.nonce == record.nonce => Step::Done(Ok(Claim::Won)),
                // Refused although the object still has the ETag we sent: the store compares
                // ETags in the other form (Ceph RGW: bare only). Once.
                Ok(Some((etag, _)))
                    if refused_on.as_ref() == Some(&etag) && !self.form_switched =>
                {
                    self.form_switched = true;
                    self.etag_form = self.etag_form.other();
                    Step::Write {
                        mode: PutMode::Update(etag.in_form(self.etag_form)),
                        record,
                    }
                }
                Ok(seen) => self.decide(seen),
                Err(e) => Step::Done(Err(e)),
            },
            (Step::Read, outcome) => match self.read(outcome) {
                Ok(seen) => self.decide(seen),
                Err(e) => Step::Done(Err(e)),
            },
            (Step::Write { .. }, Outcome::Written { .. }) => Step::Done(Ok(Claim::Won)),
            (Step::Write { mode, record }, Outcome::Conflict) if self.conflicts < 3 => {
                self.conflicts = self.conflicts.saturating_add(1);
                Step::Write { mode, record }
            }
            // 412: someone wrote first (or the store compares ETags in another form);
            // anything else: maybe applied. Read back either way.
            (Step::Write { record, mode }, outcome) => Step::ReadBack {
                record,
                refused_on: match (mode, outcome) {
                    (PutMode::Update(etag), Outcome::PreconditionFailed) => Some(etag),
                    _ => None,
                },
            },
            (Step::Done(done), _) => Step::Done(done),
        };
    }

    /// The outcome, once no request is left.
    pub fn result(&self) -> Option<&Result<Claim, Error>> {
        match &self.step {
            Step::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Give up (request budget spent).
    pub fn abandon(&mut self, why: Error) {
        if !matches!(self.step, Step::Done(_)) {
            self.step = Step::Done(Err(why));
        }
    }

    fn read(&self, outcome: Outcome) -> Result<Option<(ETag, SlotRecord)>, Error> {
        match outcome {
            Outcome::NotFound => Ok(None),
            Outcome::Found { etag, body, .. } => SlotRecord::decode(&body)
                .map(|r| Some((etag, r)))
                .map_err(|reason| Error::ForeignRecord {
                    key: self.key.clone(),
                    reason,
                }),
            Outcome::Transient(e) | Outcome::Fatal(e) => Err(e),
            other => Err(Error::BadAnswer(format!(
                "{} to a read of the slot",
                other.kind()
            ))),
        }
    }

    /// After a read: claim the slot if the object names an earlier one.
    fn decide(&self, seen: Option<(ETag, SlotRecord)>) -> Step {
        let record = SlotRecord {
            format: SLOT_FORMAT.into(),
            slot: self.slot,
            holder: self.node_id.clone(),
            nonce: self.nonce.clone(),
            metadata: self.metadata.clone(),
        };
        match seen {
            None => Step::Write {
                mode: PutMode::Create,
                record,
            },
            // Ours already: this very claim's write (same nonce) landed.
            Some((_, r))
                if r.slot == self.slot
                    && (r.nonce == self.nonce
                        || self.won_by_node_id && r.holder == self.node_id) =>
            {
                Step::Done(Ok(Claim::Won))
            }
            // Claimed by another claim, even one naming our node id: workers that share an id
            // (replicas of one deployment) must not all run the job.
            Some((_, r)) if r.slot >= self.slot => Step::Done(Ok(Claim::Lost {
                holder: r.holder,
                slot: r.slot,
            })),
            Some((etag, _)) => Step::Write {
                mode: PutMode::Update(etag.in_form(self.etag_form)),
                record,
            },
        }
    }
}

impl crate::protocol::Exchange for SlotClaim {
    fn next_request(&mut self, _now: crate::time::Instant) -> Option<Request> {
        self.poll_request()
    }

    fn answer(&mut self, _now: crate::time::Instant, outcome: Outcome) {
        self.handle_response(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuorumConfig;
    use crate::config::Timings;
    use crate::memstore::MemStore;
    use std::time::Duration;

    fn config(node: &str) -> ElectionConfig {
        ElectionConfig {
            name: "job".into(),
            node_id: node.into(),
            key_prefix: String::new(),
            timings: Timings::default(),
            metadata: String::new(),
            stateless: true,
            probe_store: false,
            quorum: QuorumConfig::disabled_for_lease(Duration::from_secs(15)),
            etag_form: Default::default(),
        }
    }

    fn claim(
        store: &mut MemStore,
        node: &str,
        slot: u64,
        lose_first_answer: bool,
    ) -> Result<Claim, Error> {
        let c = config(node);
        static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CLAIMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut claim = SlotClaim::new(&c, slot, format!("{node}-{slot}-{n}"));
        let mut lose = lose_first_answer;
        for _ in 0..MAX_SLOT_REQUESTS {
            let Some(req) = claim.poll_request() else {
                break;
            };
            let mut outcome = store.apply(&c.keys(), &req, 0);
            if lose && matches!(req, Request::PutSlot { .. }) {
                lose = false;
                outcome = Outcome::Transient(Error::Transport("answer lost".into()));
            }
            claim.handle_response(outcome);
        }
        claim.result().cloned().expect("finished")
    }

    #[test]
    fn exactly_one_worker_wins_each_slot() {
        let mut store = MemStore::new();
        for slot in 1..=5 {
            let results: Vec<_> = ["a", "b", "c"]
                .iter()
                .map(|n| claim(&mut store, n, slot, false))
                .collect();
            let wins = results.iter().filter(|r| **r == Ok(Claim::Won)).count();
            assert_eq!(wins, 1, "slot {slot}: {results:?}");
        }
    }

    /// Replicas of one deployment that share a node id: still exactly one runs each slot.
    #[test]
    fn workers_sharing_a_node_id_still_win_each_slot_once() {
        let mut store = MemStore::new();
        for slot in 1..=5 {
            let wins = (0..3)
                .filter(|i| {
                    let c = config("replica");
                    let mut claim = SlotClaim::new(&c, slot, format!("nonce-{slot}-{i}"));
                    while let Some(req) = claim.poll_request() {
                        let outcome = store.apply(&c.keys(), &req, 0);
                        claim.handle_response(outcome);
                    }
                    claim.result() == Some(&Ok(Claim::Won))
                })
                .count();
            assert_eq!(wins, 1, "slot {slot}");
        }
    }

    #[test]
    fn an_old_slot_is_never_claimed_again_and_a_lost_answer_is_read_back() {
        let mut store = MemStore::new();
        assert_eq!(
            claim(&mut store, "a", 7, true),
            Ok(Claim::Won),
            "our nonce was found"
        );
        assert_eq!(
            claim(&mut store, "b", 6, false),
            Ok(Claim::Lost {
                holder: "a".into(),
                slot: 7
            })
        );
        assert_eq!(
            claim(&mut store, "a", 7, false),
            Ok(Claim::Lost {
                holder: "a".into(),
                slot: 7
            }),
            "a second claim of the same slot loses, even by the same worker id"
        );
    }

    #[test]
    fn a_foreign_object_is_refused_and_kept() {
        let mut store = MemStore::new();
        store.put_raw("job/slot", b"nope".to_vec(), 0);
        assert!(matches!(
            claim(&mut store, "a", 1, false),
            Err(Error::ForeignRecord { .. })
        ));
        assert_eq!(store.get_object("job/slot").unwrap().body, b"nope");
    }
}
