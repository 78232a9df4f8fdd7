//! An in-memory model of the S3 semantics the election relies on: strongly consistent reads
//! and lists, ETags that change whenever the content does, `If-None-Match: *` and `If-Match`
//! answered with 412 (and 404 normalised to 412, as the S3 layer does), conditional GET
//! answered 304, paginated ListObjectsV2, and a store clock for `Date` and `Last-Modified`.
//! For unit tests and the deterministic simulator only; every claim is also tested against
//! real S3 servers.

use crate::config::Keys;
use crate::protocol::{ETag, EtagForm, ListEntry, Outcome, PutMode, Request};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct StoredObject {
    pub body: Vec<u8>,
    pub etag: ETag,
    /// Store clock at the write, Unix milliseconds.
    pub last_modified_ms: u64,
}

/// Which forms of an ETag a store matches in `If-Match` and `If-None-Match` (the value must
/// match in any case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EtagMatching {
    /// Quoted or bare (AWS, ministack).
    #[default]
    Both,
    /// Only as RFC 9110 writes it, quoted.
    QuotedOnly,
    /// Only without quotes (Ceph RGW, DigitalOcean Spaces).
    BareOnly,
}

impl EtagMatching {
    fn accepts(self, form: EtagForm) -> bool {
        match self {
            EtagMatching::Both => true,
            EtagMatching::QuotedOnly => form == EtagForm::Quoted,
            EtagMatching::BareOnly => form == EtagForm::Bare,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MemStore {
    objects: BTreeMap<String, StoredObject>,
    writes: u64,
    /// Keys per ListObjectsV2 page (S3: 1000).
    pub page_size: usize,
    /// How conditional headers' ETags are matched.
    pub etag_matching: EtagMatching,
    /// Each LIST page after the first repeats the last key of the page before (pages that
    /// overlap while objects change, or a buggy store).
    pub repeat_listed_keys: bool,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore {
            objects: BTreeMap::new(),
            writes: 0,
            page_size: 1000,
            etag_matching: EtagMatching::Both,
            repeat_listed_keys: false,
        }
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_page_size(page_size: usize) -> Self {
        MemStore {
            page_size: page_size.max(1),
            ..Self::default()
        }
    }

    /// The same store, matching ETags in conditional headers as `matching` says.
    pub fn matching(self, matching: EtagMatching) -> Self {
        MemStore {
            etag_matching: matching,
            ..self
        }
    }

    /// Apply `request` at store time `now_ms`, as S3 would.
    pub fn apply(&mut self, keys: &Keys, request: &Request, now_ms: u64) -> Outcome {
        let date = Some(now_ms / 1000);
        match request {
            Request::Get { if_none_match } => self.get(&keys.lease, if_none_match.as_ref(), date),
            Request::GetMember { node } => self.get(&format!("{}{node}", keys.members), None, date),
            Request::GetSlot => self.get(&keys.slot, None, date),
            Request::GetJobMarker => self.get(&keys.job, None, date),
            Request::PutJobMarker { body } => {
                self.put_if(&keys.job, &PutMode::Create, body, now_ms)
            }
            Request::PutProbe {
                scratch,
                missing_key,
                mode,
                body,
            } => {
                let key = keys.probe_scratch(scratch, *missing_key);
                self.put_if(&key, mode, body, now_ms)
            }
            Request::DeleteProbe { scratch } => {
                self.objects.remove(&keys.probe_scratch(scratch, false));
                Outcome::Deleted
            }
            Request::PutSlot { mode, body } => self.put_if(&keys.slot, mode, body, now_ms),
            Request::Put { mode, body } => self.put_if(&keys.lease, mode, body, now_ms),
            Request::PutMember { body } => {
                let etag = self.put_raw(&keys.own_member, body.clone(), now_ms);
                Outcome::Written { etag }
            }
            Request::DeleteMember => {
                self.objects.remove(&keys.own_member);
                Outcome::Deleted
            }
            Request::ListMembers { continuation } => {
                let after = continuation.clone().unwrap_or_default();
                let mut page: Vec<ListEntry> = self
                    .objects
                    .range(keys.members.clone()..)
                    .take_while(|(k, _)| k.starts_with(&keys.members))
                    .filter(|(k, _)| {
                        continuation.is_none()
                            || **k > after
                            || (self.repeat_listed_keys && **k == after)
                    })
                    .take(self.page_size + 1)
                    .map(|(k, o)| ListEntry {
                        key: k.clone(),
                        etag: o.etag.clone(),
                        last_modified_ms: o.last_modified_ms,
                    })
                    .collect();
                let more = page.len() > self.page_size;
                page.truncate(self.page_size);
                Outcome::Listed {
                    continuation: more.then(|| page.last().map(|e| e.key.clone())).flatten(),
                    entries: page,
                    date,
                }
            }
        }
    }

    fn put_if(&mut self, key: &str, mode: &PutMode, body: &[u8], now_ms: u64) -> Outcome {
        let current = self.objects.get(key);
        let holds = match (mode, current) {
            (PutMode::Create, existing) => existing.is_none(),
            (PutMode::Update(want), Some(o)) => self.matches(want, &o.etag),
            (PutMode::Update(_), None) => false,
            #[cfg(feature = "mutations")]
            (PutMode::Overwrite, _) => true,
        };
        if !holds {
            return Outcome::PreconditionFailed;
        }
        let etag = self.put_raw(key, body.to_vec(), now_ms);
        Outcome::Written { etag }
    }

    fn get(&self, key: &str, if_none_match: Option<&ETag>, date: Option<u64>) -> Outcome {
        match self.objects.get(key) {
            None => Outcome::NotFound,
            Some(o) if if_none_match.is_some_and(|e| self.matches(e, &o.etag)) => {
                Outcome::NotModified { date }
            }
            Some(o) => Outcome::Found {
                etag: o.etag.clone(),
                body: o.body.clone(),
                last_modified: Some(o.last_modified_ms / 1000),
                date,
            },
        }
    }

    /// Does the ETag a request sent match the stored one, as this store compares them?
    fn matches(&self, sent: &ETag, stored: &ETag) -> bool {
        sent == stored && self.etag_matching.accepts(sent.form())
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Write without any condition. ETags follow the content, as S3's MD5 ETags do; tests
    /// also use this to plant foreign objects.
    pub fn put_raw(&mut self, key: &str, body: Vec<u8>, now_ms: u64) -> ETag {
        self.writes += 1;
        let etag = ETag(format!("\"{:016x}\"", content_hash(&body)));
        self.objects.insert(
            key.to_string(),
            StoredObject {
                body,
                etag: etag.clone(),
                last_modified_ms: now_ms,
            },
        );
        etag
    }

    pub fn get_object(&self, key: &str) -> Option<&StoredObject> {
        self.objects.get(key)
    }

    pub fn delete(&mut self, key: &str) {
        self.objects.remove(key);
    }

    /// Put back an earlier version as it was, `Last-Modified` and ETag included: what S3 does
    /// when the newest version of an object is deleted from a versioned bucket.
    pub fn restore(&mut self, key: &str, version: StoredObject) {
        self.writes += 1;
        self.objects.insert(key.to_string(), version);
    }

    /// Number of writes so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

/// FNV-1a: stands in for S3's MD5 ETag (same content, same ETag).
fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
