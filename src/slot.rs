//! Singleton jobs on a schedule ("exactly one worker runs the job in each slot"), for cron
//! triggers where every invocation is a fresh instance. Each job has one object,
//! `<prefix><name>/slot`, naming the last slot claimed. A worker claims slot N with a
//! conditional write (create with `If-None-Match: *`, or `If-Match` the ETag it read when the
//! object names an earlier slot): of all workers firing for slot N, exactly one write succeeds.
//! No lease has to expire, so a crashed worker never costs a slot. A claim is won only by the
//! write that carries its own nonce (or the caller's claim id), never by the node id in the
//! record, so workers that share an id still run each slot once, and a caller that retries an
//! ambiguous claim with the same claim id recognises its own earlier write.
//!
//! A slot record that disappears (an operator, a lifecycle rule, a restore) would let a
//! straggler win a slot that already ran. So every win also makes sure a marker exists,
//! `<prefix><name>/job` (created once, never removed by the election): a claim that finds no
//! slot record but the marker refuses (the record was lost) instead of guessing that the job
//! never ran. A claim that created the record from nothing wins only once the marker is its
//! own or newly written: a marker that appeared between its read and its write means the
//! record was lost under it. (A job whose every win failed to write the marker cannot tell;
//! the README says which keys to keep out of lifecycle rules.) Sans-IO, like the core.
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
use crate::error::{ConfigError, Error};
use crate::mutation::Mutation;
use crate::protocol::{ETag, EtagForm, Outcome, PutMode, Request};
use serde::{Deserialize, Serialize};

pub const SLOT_FORMAT: &str = "s3-election/slot/v1";
pub const JOB_FORMAT: &str = "s3-election/job/v1";
/// Enough for a read, the marker's read, a write and a read-back, twice.
pub const MAX_SLOT_REQUESTS: usize = 10;
/// Longest claim id (see [`check_claim_id`]).
pub const MAX_CLAIM_ID_LEN: usize = 128;

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

/// The job marker: written when the job's first slot is won, so that a slot record found
/// missing later is known to be lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMarker {
    pub format: String,
    /// The slot of the job's first win.
    pub first_slot: u64,
    pub holder: String,
    /// The nonce (or claim id) of the claim that wrote it.
    #[serde(default)]
    pub nonce: String,
}

/// A caller's claim id (`claim-slot-as`): what makes a retry recognise its earlier attempt.
/// 1 to [`MAX_CLAIM_ID_LEN`] characters of A-Z a-z 0-9 - _ . (it is stored in the record).
pub fn check_claim_id(id: &str) -> Result<(), ConfigError> {
    let bad = |problem: String| ConfigError {
        field: "claim-id",
        problem,
    };
    if id.is_empty() || id.len() > MAX_CLAIM_ID_LEN {
        return Err(bad(format!("must be 1 to {MAX_CLAIM_ID_LEN} characters")));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(bad(format!(
            "character {c:?} not allowed (use A-Z a-z 0-9 - _ .)"
        )));
    }
    Ok(())
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
    /// No slot record: has this job run before (is there a marker)?
    ReadMarker,
    Write {
        mode: PutMode,
        record: SlotRecord,
    },
    /// A write without a clear answer: read back and look for our nonce.
    ReadBack {
        record: SlotRecord,
        /// The write was refused (412) with `If-Match` this ETag.
        refused_on: Option<ETag>,
        /// The write created the record (`If-None-Match: *`).
        created: bool,
    },
    /// Our write is in the record: write the job marker (`If-None-Match: *`, so only the
    /// first ever lands). After an update it is best effort; after a create it decides.
    Mark {
        created: bool,
    },
    /// We created the record but the marker write did not land: whose is the marker? Ours
    /// (a retry): won; another claim's: it appeared after our read, so the record was lost.
    ConfirmMark,
    Done(Result<Claim, Error>),
}

/// One claim of one slot by one worker.
#[derive(Clone, Debug)]
pub struct SlotClaim {
    slot: u64,
    node_id: String,
    metadata: String,
    key: String,
    marker_key: String,
    nonce: String,
    step: Step,
    conflicts: u8,
    /// How `If-Match` carries the ETag (see `crate::protocol::EtagForm`).
    etag_form: EtagForm,
    /// The form was switched once already (a store that refused an ETag it had just shown).
    form_switched: bool,
    /// Requests handed out so far (at most [`MAX_SLOT_REQUESTS`]).
    sent: usize,
    mutation: Option<Mutation>,
}

impl SlotClaim {
    /// `nonce` identifies this claim's writes: fresh and random for a one-off claim, or the
    /// caller's claim id (see [`check_claim_id`]) kept across the retries of one attempt.
    pub fn new(config: &ElectionConfig, slot: u64, nonce: String) -> SlotClaim {
        let keys = config.keys();
        SlotClaim {
            slot,
            node_id: config.node_id.clone(),
            metadata: config.metadata.clone(),
            key: keys.slot,
            marker_key: keys.job,
            nonce,
            step: Step::Read,
            conflicts: 0,
            etag_form: config.etag_form,
            form_switched: false,
            sent: 0,
            mutation: None,
        }
    }

    /// Break one rule (simulator and model-checker mutation tests only).
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<Mutation>) {
        self.mutation = mutation;
    }

    fn mutated(&self, m: Mutation) -> bool {
        self.mutation == Some(m)
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
            Step::ReadMarker | Step::ConfirmMark => Some(Request::GetJobMarker),
            Step::Write { mode, record } => Some(Request::PutSlot {
                mode: mode.clone(),
                body: serde_json::to_vec(record).unwrap_or_default(),
            }),
            Step::Mark { .. } => Some(Request::PutJobMarker {
                body: serde_json::to_vec(&JobMarker {
                    format: JOB_FORMAT.into(),
                    first_slot: self.slot,
                    holder: self.node_id.clone(),
                    nonce: self.nonce.clone(),
                })
                .unwrap_or_default(),
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
            // After an update the marker is best effort: the record was there, so the slot is
            // won whatever the marker's write answered. After a create it must be ours.
            (Step::Mark { created: false }, _) | (Step::Mark { .. }, Outcome::Written { .. }) => {
                Step::Done(Ok(Claim::Won))
            }
            (Step::Mark { .. }, _) if self.mutated(Mutation::SlotTrustsAMissingRecord) => {
                Step::Done(Ok(Claim::Won))
            }
            // No marker can be written (access denied): nothing can tell a lost record, as
            // before the marker existed.
            (Step::Mark { .. }, Outcome::Fatal(_)) => Step::Done(Ok(Claim::Won)),
            (Step::Mark { .. }, _) => Step::ConfirmMark,
            (Step::ConfirmMark, Outcome::Found { body, .. }) => {
                match serde_json::from_slice::<JobMarker>(&body) {
                    Ok(m) if m.nonce == self.nonce => Step::Done(Ok(Claim::Won)),
                    _ => Step::Done(Err(self.record_lost())),
                }
            }
            // Our marker write did not land and none is there: a new job after all.
            (Step::ConfirmMark, Outcome::NotFound) => Step::Done(Ok(Claim::Won)),
            (_, Outcome::Fatal(e)) => Step::Done(Err(e)),
            (
                Step::Read | Step::ReadBack { .. } | Step::ReadMarker | Step::ConfirmMark,
                Outcome::Transient(e),
            ) => Step::Done(Err(e)),
            (Step::ConfirmMark, other) => Step::Done(Err(Error::BadAnswer(format!(
                "{} to a read of the job marker",
                other.kind()
            )))),
            (Step::ReadMarker, Outcome::NotFound) => self.decide(None),
            (Step::ReadMarker, Outcome::Found { .. }) => Step::Done(Err(self.record_lost())),
            (Step::ReadMarker, other) => Step::Done(Err(Error::BadAnswer(format!(
                "{} to a read of the job marker",
                other.kind()
            )))),
            (
                Step::ReadBack {
                    record,
                    refused_on,
                    created,
                },
                outcome,
            ) => match self.read(outcome) {
                Ok(Some((_, found))) if found.nonce == record.nonce => Step::Mark { created },
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
                Ok(seen) => self.after_read(seen),
                Err(e) => Step::Done(Err(e)),
            },
            (Step::Read, outcome) => match self.read(outcome) {
                Ok(seen) => self.after_read(seen),
                Err(e) => Step::Done(Err(e)),
            },
            (Step::Write { mode, .. }, Outcome::Written { .. }) => Step::Mark {
                created: matches!(mode, PutMode::Create),
            },
            (Step::Write { mode, record }, Outcome::Conflict) if self.conflicts < 3 => {
                self.conflicts = self.conflicts.saturating_add(1);
                Step::Write { mode, record }
            }
            // 412: someone wrote first (or the store compares ETags in another form);
            // anything else: maybe applied. Read back either way.
            (Step::Write { record, mode }, outcome) => Step::ReadBack {
                record,
                created: matches!(mode, PutMode::Create),
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
        match self.step {
            // Won already; only the best-effort marker is left.
            Step::Mark { created: false } => self.step = Step::Done(Ok(Claim::Won)),
            Step::Done(_) => {}
            _ => self.step = Step::Done(Err(why)),
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

    /// After reading the slot record: no record means a new job, or a lost record (the
    /// marker tells which); otherwise decide on it.
    fn after_read(&self, seen: Option<(ETag, SlotRecord)>) -> Step {
        match seen {
            None if !self.mutated(Mutation::SlotTrustsAMissingRecord) => Step::ReadMarker,
            seen => self.decide(seen),
        }
    }

    /// Our write is in the record (found by a later read: a retry with the claim id, whose
    /// earlier write may have been an update): won. Every win makes sure the job marker
    /// exists (one request, answered 412 once it does), so that a job's marker is there as
    /// soon as any claim could write it.
    fn won(&self) -> Step {
        Step::Mark { created: false }
    }

    fn record_lost(&self) -> Error {
        Error::Store {
            status: 404,
            code: "SlotRecordLost".into(),
            message: format!(
                "the slot record {} is gone, but the job has run before (its marker {} is \
                 there): the record was removed (an operator, a lifecycle rule, a restore) and \
                 which slots ran is unknown, so no slot is claimed. Put the record back, or \
                 delete the marker to start the job afresh (its next claim wins)",
                self.key, self.marker_key
            ),
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
            // Ours already: this very claim's write (same nonce, or claim id) landed.
            Some((_, r))
                if r.slot == self.slot
                    && (r.nonce == self.nonce
                        || self.mutated(Mutation::SlotWonByNodeId) && r.holder == self.node_id) =>
            {
                self.won()
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

    /// Run `claim` against `store`, answering its requests through `fault` first.
    fn run(
        store: &mut MemStore,
        c: &ElectionConfig,
        claim: &mut SlotClaim,
        mut fault: impl FnMut(&Request) -> Option<Outcome>,
    ) -> Result<Claim, Error> {
        while let Some(req) = claim.poll_request() {
            let outcome = fault(&req).unwrap_or_else(|| store.apply(&c.keys(), &req, 0));
            claim.handle_response(outcome);
        }
        claim.result().cloned().expect("finished")
    }

    #[test]
    fn the_first_win_writes_the_job_marker() {
        let mut store = MemStore::new();
        assert_eq!(claim(&mut store, "a", 1, false), Ok(Claim::Won));
        let marker: JobMarker =
            serde_json::from_slice(&store.get_object("job/job").unwrap().body).unwrap();
        assert_eq!((marker.first_slot, marker.holder.as_str()), (1, "a"));
    }

    /// Issue 18, case 3: a slot record that disappears after the job ran (an operator, a
    /// lifecycle rule) is never taken as "the job never ran": claims refuse, and write
    /// nothing, until a human restores the record or removes the marker.
    #[test]
    fn a_lost_slot_record_is_refused_not_guessed() {
        let mut store = MemStore::new();
        assert_eq!(claim(&mut store, "a", 7, false), Ok(Claim::Won));
        store.delete("job/slot");
        // A straggler for the slot that ran, and a later slot: both refuse.
        for slot in [7, 8] {
            let result = claim(&mut store, "b", slot, false);
            assert!(
                matches!(&result, Err(Error::Store { code, .. }) if code == "SlotRecordLost"),
                "slot {slot}: {result:?}"
            );
        }
        assert!(store.get_object("job/slot").is_none(), "nothing written");
        // The operator removes the marker to start afresh: the next claim wins.
        store.delete("job/job");
        assert_eq!(claim(&mut store, "b", 8, false), Ok(Claim::Won));
        // The old rule (mutation slot-trusts-a-missing-record) would have run slot 7 twice.
        store.delete("job/slot");
        let c = config("c");
        let mut straggler = SlotClaim::new(&c, 7, "straggler".into());
        straggler.set_mutation(Some(Mutation::SlotTrustsAMissingRecord));
        assert_eq!(
            run(&mut store, &c, &mut straggler, |_| None),
            Ok(Claim::Won)
        );
    }

    /// The record is lost in the window between a straggler's look at the marker (none yet)
    /// and its create: the first winner's marker lands in between. The straggler's create
    /// succeeds, but its marker write finds another claim's marker: refused, not won twice
    /// (the model checker's `lost-slot` world found this interleaving).
    #[test]
    fn a_marker_written_under_a_straggler_refuses_its_create() {
        let mut store = MemStore::new();
        let (a, b) = (config("a"), config("b"));
        let mut first = SlotClaim::new(&a, 1, "first".into());
        let mut straggler = SlotClaim::new(&b, 1, "straggler".into());
        let step = |claim: &mut SlotClaim, store: &mut MemStore, c: &ElectionConfig| {
            let req = claim.poll_request().expect("a request");
            let outcome = store.apply(&c.keys(), &req, 0);
            claim.handle_response(outcome);
        };
        // Both read no record and no marker.
        for _ in 0..2 {
            step(&mut first, &mut store, &a);
            step(&mut straggler, &mut store, &b);
        }
        // The first creates the record and its marker: won. Then the record is lost.
        assert_eq!(run(&mut store, &a, &mut first, |_| None), Ok(Claim::Won));
        store.delete("job/slot");
        let result = run(&mut store, &b, &mut straggler, |_| None);
        assert!(
            matches!(&result, Err(Error::Store { code, .. }) if code == "SlotRecordLost"),
            "{result:?}"
        );
    }

    /// Issue 18, case 4: the claim write lands but its answer is lost and the read-back
    /// fails, so the claim errs. The caller retries with the same claim id and learns that
    /// it won (with a fresh nonce it would lose to its own write, and the slot would run
    /// nowhere).
    #[test]
    fn a_retry_with_the_same_claim_id_recognises_its_earlier_write() {
        let mut store = MemStore::new();
        let c = config("a");
        let lost = |req: &Request, store: &mut MemStore| match req {
            Request::PutSlot { .. } => {
                store.apply(&c.keys(), req, 0);
                Some(Outcome::Transient(Error::Transport("answer lost".into())))
            }
            _ => None,
        };
        let mut first = SlotClaim::new(&c, 3, "host-a-3".into());
        let mut wrote = false;
        while let Some(req) = first.poll_request() {
            let outcome = if !wrote {
                wrote = matches!(req, Request::PutSlot { .. });
                lost(&req, &mut store).unwrap_or_else(|| store.apply(&c.keys(), &req, 0))
            } else {
                // The read-back fails too.
                Outcome::Transient(Error::Transport("read-back failed".into()))
            };
            first.handle_response(outcome);
        }
        assert!(matches!(first.result(), Some(Err(Error::Transport(_)))));
        assert_eq!(
            SlotRecord::decode(&store.get_object("job/slot").unwrap().body)
                .unwrap()
                .slot,
            3,
            "the first attempt's write landed"
        );
        let mut retry = SlotClaim::new(&c, 3, "host-a-3".into());
        assert_eq!(run(&mut store, &c, &mut retry, |_| None), Ok(Claim::Won));
        let mut fresh = SlotClaim::new(&c, 3, "another-nonce".into());
        assert!(matches!(
            run(&mut store, &c, &mut fresh, |_| None),
            Ok(Claim::Lost { .. })
        ));
    }

    #[test]
    fn claim_ids_are_checked() {
        assert!(check_claim_id("host-a.2026-12-03T10-00").is_ok());
        for bad in ["", "a b", "ä", "x/y", &"n".repeat(MAX_CLAIM_ID_LEN + 1)] {
            assert_eq!(
                check_claim_id(bad).unwrap_err().field,
                "claim-id",
                "{bad:?}"
            );
        }
    }

    /// A store that matches only bare ETags (Ceph RGW): a claim that starts with quoted ones
    /// learns from the refusal, and wins later slots too.
    #[test]
    fn a_store_matching_only_bare_etags_is_claimed_on() {
        let mut store = MemStore::new().matching(crate::memstore::EtagMatching::BareOnly);
        for slot in 1..=3 {
            assert_eq!(
                claim(&mut store, "a", slot, false),
                Ok(Claim::Won),
                "slot {slot}"
            );
        }
    }
}
