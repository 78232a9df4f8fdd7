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
use crate::protocol::{ETag, EtagForm, Outcome, PutMode, Request};

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

/// One run of the probe. Its scratch object, `<prefix><name>/probe/<node-id>-<scratch>`, is
/// its own: probes that share a node id (overlapping stateless invocations, two processes
/// with one id) never touch each other's objects.
#[derive(Clone, Debug)]
pub struct Probe {
    step: Step,
    scratch: String,
    body: Vec<u8>,
    profile: StoreProfile,
}

/// Requests the probe needs at most: create, create again, wrong ETag, quoted, unquoted,
/// missing key, clean up.
pub const MAX_PROBE_REQUESTS: usize = 7;

impl Probe {
    /// A probe whose scratch object is named by `scratch`: fresh and random for every probe
    /// (a-z 0-9), so that no other probe uses the same key.
    pub fn new(scratch: String) -> Probe {
        Probe {
            step: Step::Create,
            scratch,
            body: br#"{"format":"s3-election/probe/v1"}"#.to_vec(),
            profile: StoreProfile {
                unquoted_etags: false,
                missing_key_not_found: false,
            },
        }
    }

    /// The next request, or `None` once finished.
    pub fn poll_request(&self) -> Option<Request> {
        let put = |missing_key: bool, mode: PutMode| Request::PutProbe {
            scratch: self.scratch.clone(),
            missing_key,
            mode,
            body: self.body.clone(),
        };
        let wrong = || PutMode::Update(ETag(format!("\"{}\"", "0".repeat(32))));
        Some(match &self.step {
            Step::Create | Step::CreateAgain { .. } => put(false, PutMode::Create),
            Step::WrongEtag { .. } => put(false, wrong()),
            Step::Quoted { etag } => put(false, PutMode::Update(etag.in_form(EtagForm::Quoted))),
            Step::Unquoted { etag } => put(false, PutMode::Update(etag.in_form(EtagForm::Bare))),
            Step::MissingKey => put(true, wrong()),
            Step::Cleanup => Request::DeleteProbe {
                scratch: self.scratch.clone(),
            },
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
            // The scratch key is new and nobody else's: a refused create means the store
            // refuses `If-None-Match: *` on a missing key.
            (Step::Create, Outcome::PreconditionFailed) => {
                unsupported("If-None-Match: * failed on a key that does not exist")
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
            // AWS answers 404 here, Ceph 412: both are safe.
            (Step::MissingKey, Outcome::NotFound) => {
                self.profile.missing_key_not_found = true;
                Step::Cleanup
            }
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

impl crate::protocol::Exchange for Probe {
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
    use crate::config::Keys;
    use crate::memstore::{EtagMatching, MemStore};

    fn keys() -> Keys {
        Keys {
            lease: "e/lease".into(),
            members: "e/members/".into(),
            own_member: "e/members/n".into(),
            slot: "e/slot".into(),
            job: "e/job".into(),
            probe: "e/probe/n".into(),
        }
    }

    /// Run the probe against `answer`.
    fn probe(mut answer: impl FnMut(&Request) -> Outcome) -> Result<StoreProfile, Error> {
        let mut p = Probe::new("s1".into());
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
        assert_eq!(store.keys(), Vec::<String>::new(), "nothing left behind");
    }

    /// Two probes with one node id at once (overlapping stateless invocations): each has its
    /// own scratch object, so both pass on an honest store.
    #[test]
    fn probes_that_share_a_node_id_do_not_disturb_each_other() {
        let mut store = MemStore::new();
        let mut a = Probe::new("a".into());
        let mut b = Probe::new("b".into());
        while a.result().is_none() || b.result().is_none() {
            for p in [&mut a, &mut b] {
                if let Some(r) = p.poll_request() {
                    let outcome = store.apply(&keys(), &r, 0);
                    p.handle_response(outcome);
                }
            }
        }
        assert!(matches!(a.result(), Some(Ok(_))), "{:?}", a.result());
        assert!(matches!(b.result(), Some(Ok(_))), "{:?}", b.result());
    }

    #[test]
    fn a_store_that_ignores_conditions_is_refused() {
        let mut store = MemStore::new();
        let result = probe(|r| match r {
            Request::PutProbe { body, .. } => Outcome::Written {
                etag: store.put_raw("e/probe/n-s1", body.clone(), 0),
            },
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
        store.etag_matching = EtagMatching::BareOnly;
        let profile = probe(|r| store.apply(&keys(), r, 0)).unwrap();
        assert!(profile.unquoted_etags);
        assert!(!profile.missing_key_not_found);
    }

    #[test]
    fn a_404_to_if_match_on_a_missing_key_is_recorded() {
        let mut store = MemStore::new();
        let profile = probe(|r| match r {
            Request::PutProbe {
                missing_key: true, ..
            } => Outcome::NotFound,
            other => store.apply(&keys(), other, 0),
        })
        .unwrap();
        assert!(profile.missing_key_not_found);
    }

    #[test]
    fn a_store_that_refuses_if_match_in_both_forms_is_refused() {
        let mut store = MemStore::new();
        let result = probe(|r| match r {
            Request::PutProbe {
                mode: PutMode::Update(_),
                ..
            } => Outcome::PreconditionFailed,
            other => store.apply(&keys(), other, 0),
        });
        assert!(
            matches!(&result, Err(Error::ConditionalWritesUnsupported(why)) if why.contains("never matched")),
            "{result:?}"
        );
    }
}
