//! The lease record: the JSON body of `<prefix><election>/lease`.
//!
//! A record is in one of three states:
//! - **held** by `holder`: the holder promised itself the lease for `lease_ms` after its write;
//! - **released** by `holder`: given up with a conditional write (followers that saw the
//!   release happen may take it at once);
//! - **vacant**: written where the store had no lease object at all (a new election, or an
//!   object someone deleted). Nobody leads on it; it may be acquired only after it has been
//!   seen unchanged for `lease_ms` + grace, because a leader of a deleted object may still be
//!   within the validity its last write promised, and only in a later second of the store's
//!   clock than it was written, so that the new term (from that clock) is above any term of
//!   the deleted object.
//!
//! A record that does not parse, names a format this code does not know, or carries values
//! outside the ranges this code could ever write is a [`ForeignRecord`]: the elector reports
//! it and never overwrites it (it may belong to another program or a newer version of this
//! one).
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

use serde::{Deserialize, Serialize};
use std::fmt;

/// Format tag of the records this version reads and writes.
pub const FORMAT: &str = "s3-election/lease/v1";

/// Largest lease object we are willing to parse (and so, to write).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Largest term any record may carry: 2^53 − 1, so that every term is exact in JavaScript
/// (jco) and JSON tools. Store-clock terms reach it in the year 4824.
pub const MAX_TERM: u64 = (1 << 53) - 1;

/// Terms derived from the store's clock: Unix seconds × this. New terms stay above every term
/// of earlier seconds as long as fewer than this many acquisitions happen per second (each
/// needs a conditional write to one key: far beyond any store).
pub const TERMS_PER_SECOND: u64 = 100_000;

/// Bounds of `lease_ms` (the same as the configuration's).
pub const MIN_LEASE_MS: u64 = 100;
pub const MAX_LEASE_MS: u64 = 3_600_000;

/// At most this many members are published in a record, each with its text cut short, so
/// that a large quorum (or members with odd bodies) cannot grow the record past what a reader
/// accepts.
pub const MAX_PUBLISHED_MEMBERS: usize = 64;
const MAX_PUBLISHED_TEXT: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Always [`FORMAT`].
    pub format: String,
    /// Node id of the holder (also after release, for the record; the creator of a vacancy).
    pub holder: String,
    /// Fencing token: above the previous record's term (and at least the store's clock in
    /// Unix seconds × [`TERMS_PER_SECOND`]) on every acquisition, unchanged on renewal and
    /// release.
    pub term: u64,
    /// The holder's lease duration: followers wait this long (plus grace) before taking over.
    pub lease_ms: u64,
    /// Writes within this term (renewals and release), for people reading the bucket.
    pub renewals: u64,
    /// Fresh random value per write: lets a writer recognise its own write after an ambiguous
    /// answer (timeout, 5xx, 412 on a retry).
    pub nonce: String,
    /// Set by a clean release: anyone may acquire at once (with the next term).
    pub released: bool,
    /// Written where no lease object existed: nobody leads on it (see the module docs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vacant: bool,
    /// The elector instance that wrote it, for stateful electors (random per elector); none
    /// for stateless ones. A node tells its own writes from another process that shares its
    /// node id by this, never by the node id alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The holder's metadata.
    #[serde(default)]
    pub metadata: String,
    /// With quorum on: the members as the leader last judged them (at most
    /// [`MAX_PUBLISHED_MEMBERS`]), so followers see them without listing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberInfo>,
    /// Members the leader counted but did not publish (beyond [`MAX_PUBLISHED_MEMBERS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub members_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A member as the leader last judged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub node_id: String,
    pub metadata: String,
    pub fresh: bool,
    /// Age of its last heartbeat by the store's clock, when known.
    #[serde(default)]
    pub age_ms: Option<u64>,
    /// Why the object is not counted (garbage, foreign format), if so.
    #[serde(default)]
    pub problem: Option<String>,
}

/// Why an object at the lease key is not ours to touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignRecord(pub String);

impl fmt::Display for ForeignRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl LeaseRecord {
    /// Held: not released and not a vacancy.
    pub fn is_held(&self) -> bool {
        !self.released && !self.vacant
    }

    /// Set the published members, bounded: at most [`MAX_PUBLISHED_MEMBERS`], each text cut
    /// short, the rest counted in `members_omitted`.
    pub fn publish_members(&mut self, members: &[MemberInfo]) {
        let shown = members.len().min(MAX_PUBLISHED_MEMBERS);
        self.members = members
            .iter()
            .take(shown)
            .map(|m| MemberInfo {
                node_id: truncate(&m.node_id, MAX_PUBLISHED_TEXT).to_string(),
                metadata: truncate(&m.metadata, MAX_PUBLISHED_TEXT).to_string(),
                fresh: m.fresh,
                age_ms: m.age_ms,
                problem: m
                    .problem
                    .as_deref()
                    .map(|p| truncate(p, MAX_PUBLISHED_TEXT).to_string()),
            })
            .collect();
        self.members_omitted =
            u32::try_from(members.len().saturating_sub(shown)).unwrap_or(u32::MAX);
    }

    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Make sure the record encodes to one a reader accepts: if it would not (it cannot with
    /// bounded members and metadata, but a reader must never be handed a record it refuses),
    /// the published members are dropped.
    pub fn fit(&mut self) {
        if self.encode().len() > MAX_RECORD_BYTES {
            let dropped = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
            self.members_omitted = self.members_omitted.saturating_add(dropped);
            self.members.clear();
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<LeaseRecord, ForeignRecord> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(ForeignRecord(format!(
                "object is {} bytes, larger than any lease record",
                bytes.len()
            )));
        }
        // Read the format tag first, so that a future version's record is named as such rather
        // than reported as a parse error on some field it added or changed.
        #[derive(Deserialize)]
        struct Tag {
            format: Option<String>,
        }
        let tag: Tag = serde_json::from_slice(bytes)
            .map_err(|_| ForeignRecord("object is not a JSON lease record".into()))?;
        match tag.format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(ForeignRecord(format!(
                    "unknown record format {:?} (this version reads {FORMAT:?})",
                    truncate(other, 64)
                )))
            }
            None => return Err(ForeignRecord("JSON object without a `format` field".into())),
        }
        let record: LeaseRecord = serde_json::from_slice(bytes).map_err(|e| {
            ForeignRecord(format!(
                "malformed {FORMAT} record: {}",
                truncate(&e.to_string(), 200)
            ))
        })?;
        record.check_bounds()?;
        Ok(record)
    }

    /// Values this code could have written; anything else was written by someone else.
    fn check_bounds(&self) -> Result<(), ForeignRecord> {
        let bad = |why: String| Err(ForeignRecord(why));
        if self.term == 0 || self.term > MAX_TERM {
            return bad(format!("term {} outside 1..={MAX_TERM}", self.term));
        }
        if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&self.lease_ms) {
            return bad(format!(
                "lease_ms {} outside {MIN_LEASE_MS}..={MAX_LEASE_MS}",
                self.lease_ms
            ));
        }
        if !is_id(&self.holder) {
            return bad("holder is not a node id".into());
        }
        if self.instance.as_deref().is_some_and(|i| !is_id(i)) {
            return bad("instance is not an instance id".into());
        }
        if self.nonce.is_empty() || self.nonce.len() > 64 {
            return bad("nonce empty or longer than 64 bytes".into());
        }
        if self.metadata.len() > crate::config::MAX_METADATA_LEN {
            return bad("metadata longer than any node may publish".into());
        }
        if self.members.len() > MAX_PUBLISHED_MEMBERS {
            return bad("more members than a leader publishes".into());
        }
        if self.released && self.vacant {
            return bad("both released and vacant".into());
        }
        Ok(())
    }
}

/// A node or instance id as configuration allows them (non-empty, short, `A-Z a-z 0-9 - _ .`).
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= crate::config::MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// At most `max` characters of `s`.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LeaseRecord {
        LeaseRecord {
            format: FORMAT.into(),
            holder: "a".into(),
            term: 3,
            lease_ms: 15_000,
            renewals: 7,
            nonce: "00ff".into(),
            released: false,
            vacant: false,
            instance: Some("i-0123".into()),
            metadata: "addr=10.0.0.1".into(),
            members: vec![],
            members_omitted: 0,
        }
    }

    #[test]
    fn round_trips() {
        let r = record();
        assert_eq!(LeaseRecord::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn unknown_fields_of_the_same_format_are_tolerated() {
        let mut v: serde_json::Value = serde_json::from_slice(&record().encode()).unwrap();
        v["added_later"] = serde_json::json!(1);
        assert_eq!(
            LeaseRecord::decode(&serde_json::to_vec(&v).unwrap()),
            Ok(record())
        );
    }

    #[test]
    fn garbage_and_foreign_objects_are_foreign_records() {
        let newer = br#"{"format":"s3-election/lease/v2","holder":"a"}"#;
        let cases: [&[u8]; 7] = [
            b"",
            b"hello world",
            b"\xff\xfe",
            b"[1,2,3]",
            br#"{"holder":"a","term":1}"#,
            newer,
            br#"{"format":"s3-election/lease/v1","holder":"a","term":"x"}"#,
        ];
        for bytes in cases {
            assert!(LeaseRecord::decode(bytes).is_err(), "{bytes:?}");
        }
        let err = LeaseRecord::decode(newer).unwrap_err();
        assert!(err.0.contains("unknown record format"), "{err}");
    }

    #[test]
    fn degenerate_records_are_refused() {
        let mut r = record();
        r.term = 0;
        assert!(LeaseRecord::decode(&r.encode()).is_err());
        let big = vec![b' '; MAX_RECORD_BYTES + 1];
        assert!(LeaseRecord::decode(&big).is_err());
    }

    /// A record with values this code never writes (a huge lease once trapped the component
    /// with a duration overflow) stays foreign: it is reported, never acted on.
    #[test]
    fn values_outside_what_any_node_writes_are_foreign() {
        type Breaker = fn(&mut LeaseRecord);
        let cases: [Breaker; 9] = [
            |r| r.lease_ms = u64::MAX,
            |r| r.lease_ms = 5,
            |r| r.term = u64::MAX,
            |r| r.term = MAX_TERM + 1,
            |r| r.holder = "a/b".into(),
            |r| r.holder = "h".repeat(200),
            |r| r.nonce = "n".repeat(65),
            |r| r.metadata = "m".repeat(crate::config::MAX_METADATA_LEN + 1),
            |r| {
                r.released = true;
                r.vacant = true;
            },
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut r = record();
            break_it(&mut r);
            let bytes = serde_json::to_vec(&r).unwrap();
            assert!(LeaseRecord::decode(&bytes).is_err(), "case {i}: {r:?}");
        }
        let mut r = record();
        r.instance = Some("not an id!".into());
        assert!(LeaseRecord::decode(&serde_json::to_vec(&r).unwrap()).is_err());
    }

    #[test]
    fn a_vacancy_round_trips_and_is_not_held() {
        let mut r = record();
        r.vacant = true;
        assert!(!r.is_held());
        assert_eq!(LeaseRecord::decode(&r.encode()), Ok(r));
    }

    /// A leader of a large quorum, or one whose members carry long metadata, never writes a
    /// record that a reader would refuse (that once jammed an election for good).
    #[test]
    fn published_members_are_bounded_and_the_record_always_decodes() {
        let member = |i: usize| MemberInfo {
            node_id: format!("member-{i}"),
            metadata: "x".repeat(4096),
            fresh: true,
            age_ms: Some(10),
            problem: Some("p".repeat(10_000)),
        };
        let all: Vec<MemberInfo> = (0..1000).map(member).collect();
        let mut r = record();
        r.publish_members(&all);
        r.fit();
        assert_eq!(r.members.len(), MAX_PUBLISHED_MEMBERS);
        assert_eq!(r.members_omitted as usize, 1000 - MAX_PUBLISHED_MEMBERS);
        assert!(r.members.iter().all(|m| m.metadata.len() <= 200));
        let bytes = r.encode();
        assert!(bytes.len() <= MAX_RECORD_BYTES);
        let back = LeaseRecord::decode(&bytes).expect("a reader accepts what a leader writes");
        assert_eq!(back.members.len(), MAX_PUBLISHED_MEMBERS);
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("ääää", 2), "ää");
        assert_eq!(truncate("ab", 5), "ab");
    }
}
