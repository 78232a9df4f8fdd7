//! The store conformance probe: on a scratch key under the election's prefix, check that the
//! store honours `If-None-Match: *` and `If-Match` (quoted, or only unquoted as Ceph RGW),
//! and how it answers `If-Match` on a missing key. A store that ignores the conditions is
//! refused with [`Error::ConditionalWritesUnsupported`]: electing on it could make two
//! leaders. Sans-IO, like the core; every step is one request.
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

use crate::error::Error;
use crate::protocol::{ETag, Outcome, PutMode, Request};

/// What the probe learnt about the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreProfile {
    /// `If-Match` matches only the ETag without quotes (Ceph RGW, DigitalOcean Spaces).
    pub unquoted_etags: bool,
    /// `If-Match` on a missing key answered 404 (AWS) rather than 412 (Ceph); both are safe.
    pub missing_key_not_found: bool,
}

#[derive(Clone, Debug)]
enum Step {
    /// Create the scratch object: must succeed.
    Create,
    /// A scratch object left by an interrupted probe blocks the create: remove it, once.
    ClearLeftover,
    /// Create again: must fail (412).
    CreateAgain {
        etag: ETag,
    },
    /// `If-Match` a wrong ETag: must fail.
    WrongEtag {
        etag: ETag,
    },
    /// `If-Match` the right ETag, quoted: should succeed.
    Quoted {
        etag: ETag,
    },
    /// The same, unquoted (when quoted failed).
    Unquoted {
        etag: ETag,
    },
    /// `If-Match` on a key that does not exist: must fail.
    MissingKey,
    /// Remove the scratch object.
    Cleanup,
    Done(Result<StoreProfile, Error>),
}

#[derive(Clone, Debug)]
pub struct Probe {
    step: Step,
    body: Vec<u8>,
    profile: StoreProfile,
    /// A leftover scratch object was removed already.
    cleared_leftover: bool,
}

/// Requests the probe needs at most: create, clear a leftover, create, create again, wrong
/// ETag, quoted, unquoted, missing key, clean up.
pub const MAX_PROBE_REQUESTS: usize = 9;

impl Probe {
    pub fn new() -> Probe {
        Probe {
            step: Step::Create,
            body: br#"{"format":"s3-election/probe/v1"}"#.to_vec(),
            profile: StoreProfile {
                unquoted_etags: false,
                missing_key_not_found: false,
            },
            cleared_leftover: false,
        }
    }

    /// The next request, or `None` once finished.
    pub fn poll_request(&self) -> Option<Request> {
        let put = |missing_key: bool, mode: PutMode| Request::PutProbe {
            missing_key,
            mode,
            body: self.body.clone(),
        };
        let wrong = || PutMode::Update(ETag(format!("\"{}\"", "0".repeat(32))));
        Some(match &self.step {
            Step::Create | Step::CreateAgain { .. } => put(false, PutMode::Create),
            Step::WrongEtag { .. } => put(false, wrong()),
            Step::Quoted { etag } => {
                put(false, PutMode::Update(ETag(format!("\"{}\"", bare(etag)))))
            }
            Step::Unquoted { etag } => put(false, PutMode::Update(ETag(bare(etag).to_string()))),
            Step::MissingKey => put(true, wrong()),
            Step::ClearLeftover | Step::Cleanup => Request::DeleteProbe,
            Step::Done(_) => return None,
        })
    }

    pub fn handle_response(&mut self, outcome: Outcome) {
        let unsupported =
            |why: &str| Step::Done(Err(Error::ConditionalWritesUnsupported(why.into())));
        let step = std::mem::replace(&mut self.step, Step::Cleanup);
        self.step = match (step, outcome) {
            (Step::Cleanup, _) => Step::Done(Ok(self.profile.clone())),
            (Step::Done(d), _) => Step::Done(d),
            (_, Outcome::Fatal(e)) | (_, Outcome::Transient(e)) => Step::Done(Err(e)),
            (Step::Create, Outcome::Written { etag }) => Step::CreateAgain { etag },
            // The scratch object exists: left by an interrupted probe (remove it and start
            // again), or, when that happened already, another probe with this node id runs.
            (Step::Create, Outcome::PreconditionFailed) if !self.cleared_leftover => {
                Step::ClearLeftover
            }
            (Step::Create, Outcome::PreconditionFailed) => Step::Done(Err(Error::Store {
                status: 412,
                code: "ProbeBusy".into(),
                message: "the probe's scratch object came back after it was removed: \
                          another probe with this node id is running"
                    .into(),
            })),
            (Step::ClearLeftover, Outcome::Deleted | Outcome::NotFound) => {
                self.cleared_leftover = true;
                Step::Create
            }
            (Step::CreateAgain { .. }, Outcome::Written { .. }) => unsupported(
                "If-None-Match: * was ignored: a second create of the same key succeeded",
            ),
            (Step::CreateAgain { etag }, Outcome::PreconditionFailed | Outcome::Conflict) => {
                Step::WrongEtag { etag }
            }
            (Step::WrongEtag { .. }, Outcome::Written { .. }) => {
                unsupported("If-Match was ignored: a write with a wrong ETag succeeded")
            }
            (Step::WrongEtag { etag }, Outcome::PreconditionFailed) => Step::Quoted { etag },
            (Step::Quoted { .. }, Outcome::Written { .. }) => Step::MissingKey,
            (Step::Quoted { etag }, Outcome::PreconditionFailed) => Step::Unquoted { etag },
            (Step::Unquoted { .. }, Outcome::Written { .. }) => {
                self.profile.unquoted_etags = true;
                Step::MissingKey
            }
            (Step::Unquoted { .. }, Outcome::PreconditionFailed) => {
                unsupported("If-Match never matched the object's own ETag, quoted or not")
            }
            (Step::MissingKey, Outcome::PreconditionFailed) => Step::Cleanup,
            (Step::MissingKey, Outcome::Written { .. }) => {
                unsupported("If-Match on a missing key created it")
            }
            (step, other) => Step::Done(Err(Error::BadAnswer(format!(
                "{} to the probe's {}",
                other.kind(),
                step.name()
            )))),
        };
    }

    /// The S3 layer folds AWS's 404 for `If-Match` on a missing key into 412; the glue tells
    /// the probe which one the store sent.
    pub fn saw_missing_key_status(&mut self, status: u16) {
        self.profile.missing_key_not_found = status == 404;
    }

    pub fn result(&self) -> Option<&Result<StoreProfile, Error>> {
        match &self.step {
            Step::Done(r) => Some(r),
            _ => None,
        }
    }
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::ClearLeftover => "removal of a leftover",
            Step::CreateAgain { .. } => "second create",
            Step::WrongEtag { .. } => "write with a wrong ETag",
            Step::Quoted { .. } => "write with the quoted ETag",
            Step::Unquoted { .. } => "write with the bare ETag",
            Step::MissingKey => "write to a missing key",
            Step::Cleanup => "clean-up",
            Step::Done(_) => "end",
        }
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

fn bare(etag: &ETag) -> &str {
    etag.0.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Keys;
    use crate::memstore::MemStore;

    fn keys() -> Keys {
        Keys {
            lease: "e/lease".into(),
            members: "e/members/".into(),
            own_member: "e/members/n".into(),
            slot: "e/slot".into(),
            probe: "e/probe/n".into(),
        }
    }

    /// Run the probe against `answer`.
    fn probe(mut answer: impl FnMut(&Request) -> Outcome) -> Result<StoreProfile, Error> {
        let mut p = Probe::new();
        for _ in 0..MAX_PROBE_REQUESTS {
            let Some(r) = p.poll_request() else { break };
            let outcome = answer(&r);
            p.handle_response(outcome);
        }
        p.result().cloned().expect("finished")
    }

    #[test]
    fn an_honest_store_passes_and_the_scratch_object_is_removed() {
        let mut store = MemStore::new();
        let profile = probe(|r| store.apply(&keys(), r, 0)).unwrap();
        assert!(!profile.unquoted_etags);
        assert!(store.get_object("e/probe/n").is_none());
        assert!(store.get_object("e/probe/n-missing").is_none());
    }

    #[test]
    fn a_scratch_object_left_by_an_interrupted_probe_is_cleared_first() {
        let mut store = MemStore::new();
        store.put_raw("e/probe/n", b"left over".to_vec(), 0);
        let profile = probe(|r| store.apply(&keys(), r, 0)).unwrap();
        assert!(!profile.unquoted_etags);
        assert!(store.get_object("e/probe/n").is_none());
    }

    #[test]
    fn a_create_that_keeps_failing_is_an_error_not_a_loop() {
        // Another probe with this node id keeps recreating the scratch object.
        let result = probe(|r| match r {
            Request::PutProbe {
                mode: PutMode::Create,
                ..
            } => Outcome::PreconditionFailed,
            Request::DeleteProbe => Outcome::Deleted,
            other => panic!("{other:?}"),
        });
        assert!(
            matches!(&result, Err(Error::Store { code, .. }) if code == "ProbeBusy"),
            "{result:?}"
        );
    }

    #[test]
    fn a_store_that_ignores_conditions_is_refused() {
        let mut store = MemStore::new();
        let result = probe(|r| match r {
            Request::PutProbe {
                missing_key, body, ..
            } => {
                let key = if *missing_key {
                    "e/probe/n-missing"
                } else {
                    "e/probe/n"
                };
                Outcome::Written {
                    etag: store.put_raw(key, body.clone(), 0),
                }
            }
            other => store.apply(&keys(), other, 0),
        });
        assert!(
            matches!(result, Err(Error::ConditionalWritesUnsupported(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_store_that_matches_only_bare_etags_is_profiled_as_such() {
        let mut store = MemStore::new();
        // With a leftover scratch object too: the longest probe still fits its bound.
        store.put_raw("e/probe/n", b"left over".to_vec(), 0);
        let profile = probe(|r| match r {
            // Ceph RGW: a quoted If-Match never matches.
            Request::PutProbe {
                mode: PutMode::Update(e),
                ..
            } if e.0.starts_with('"') => Outcome::PreconditionFailed,
            Request::PutProbe {
                missing_key: false,
                mode: PutMode::Update(e),
                body,
            } => {
                let current = store
                    .get_object("e/probe/n")
                    .map(|o| o.etag.0.trim_matches('"').to_string());
                if current.as_deref() == Some(e.0.as_str()) {
                    Outcome::Written {
                        etag: store.put_raw("e/probe/n", body.clone(), 0),
                    }
                } else {
                    Outcome::PreconditionFailed
                }
            }
            other => store.apply(&keys(), other, 0),
        })
        .unwrap();
        assert!(profile.unquoted_etags);
    }
}
