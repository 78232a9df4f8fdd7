//! An in-memory model of the S3 semantics the election relies on: strongly consistent reads,
//! ETags that change on every write, `If-None-Match: *` and `If-Match` answered with 412 (and
//! 404 normalised to 412, as the S3 layer does), conditional GET answered 304, and a store
//! clock for `Date` and `Last-Modified`. For unit tests and the deterministic simulator only;
//! every claim is also tested against real S3 servers.

use crate::core::{ETag, Outcome, PutMode, Request};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct StoredObject {
    pub body: Vec<u8>,
    pub etag: ETag,
    /// Store clock at the write, Unix seconds.
    pub last_modified: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MemStore {
    objects: HashMap<String, StoredObject>,
    writes: u64,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply `request` to `key` at store time `now_unix_s`, as S3 would.
    pub fn apply(&mut self, key: &str, request: &Request, now_unix_s: u64) -> Outcome {
        let current = self.objects.get(key);
        match request {
            Request::Get { if_none_match } => match current {
                None => Outcome::NotFound,
                Some(o) if if_none_match.as_ref() == Some(&o.etag) => Outcome::NotModified {
                    date: Some(now_unix_s),
                },
                Some(o) => Outcome::Found {
                    etag: o.etag.clone(),
                    body: o.body.clone(),
                    last_modified: Some(o.last_modified),
                    date: Some(now_unix_s),
                },
            },
            Request::Put { mode, body } => {
                let holds = match (mode, current) {
                    (PutMode::Create, existing) => existing.is_none(),
                    (PutMode::Update(want), Some(o)) => &o.etag == want,
                    (PutMode::Update(_), None) => false,
                    #[cfg(feature = "mutations")]
                    (PutMode::Overwrite, _) => true,
                };
                if !holds {
                    return Outcome::PreconditionFailed;
                }
                let etag = self.put_raw(key, body.clone(), now_unix_s);
                Outcome::Written { etag }
            }
        }
    }

    /// Write without any condition: for planting foreign objects in tests.
    pub fn put_raw(&mut self, key: &str, body: Vec<u8>, now_unix_s: u64) -> ETag {
        self.writes += 1;
        let etag = ETag(format!("\"{:032x}\"", self.writes));
        self.objects.insert(
            key.to_string(),
            StoredObject {
                body,
                etag: etag.clone(),
                last_modified: now_unix_s,
            },
        );
        etag
    }

    pub fn get(&self, key: &str) -> Option<&StoredObject> {
        self.objects.get(key)
    }

    pub fn delete(&mut self, key: &str) {
        self.objects.remove(key);
    }

    /// Number of successful writes so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}
