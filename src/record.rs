//! The lease record: the JSON body of `<prefix><election>/lease`.
//!
//! A record that does not parse, or names a format this code does not know, is a
//! [`ForeignRecord`]: the elector reports it and never overwrites it (it may belong to another
//! program or a newer version of this one).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Format tag of the records this version reads and writes.
pub const FORMAT: &str = "s3-election/lease/v1";

/// Largest lease object we are willing to parse.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Always [`FORMAT`].
    pub format: String,
    /// Node id of the holder (also after release, for the record).
    pub holder: String,
    /// Fencing token: +1 on every acquisition, unchanged on renewal and release.
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
    /// The holder's metadata.
    #[serde(default)]
    pub metadata: String,
    /// With quorum on: the members as the leader last judged them, so followers see them
    /// without listing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<crate::members::MemberInfo>,
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
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
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
        let record: LeaseRecord = serde_json::from_slice(bytes)
            .map_err(|e| ForeignRecord(format!("malformed {FORMAT} record: {e}")))?;
        if record.term == 0 || record.holder.is_empty() || record.nonce.is_empty() {
            return Err(ForeignRecord(
                "record has an empty holder, an empty nonce or term 0".into(),
            ));
        }
        Ok(record)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
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
            metadata: "addr=10.0.0.1".into(),
            members: vec![],
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
}
