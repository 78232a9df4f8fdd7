//! The vocabulary every part of the protocol shares: what the sans-IO machines (the election
//! core, the quorum members, the probe, slot claims) ask the IO layer to send, and what the
//! store answered, already normalised. It depends on nothing else in the crate, so imports
//! run one way: guest glue → s3 → core → protocol.
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

/// An ETag exactly as the store returned it (quotes included).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

/// The condition of a PUT. There is deliberately no unconditional mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// `If-None-Match: *`: fails with 412 if the object exists.
    Create,
    /// `If-Match: <etag>`: fails with 412 (or 404) unless the object still has this ETag.
    Update(ETag),
    /// No condition at all. Exists only in mutation builds, for
    /// `mutation::Mutation::UnconditionalRenewal`; the election never uses it.
    #[cfg(feature = "mutations")]
    Overwrite,
}

/// A request for the lease object, to be signed and sent by the IO layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// GET; with `if_none_match`, an unchanged object is answered `304` without a body.
    Get { if_none_match: Option<ETag> },
    /// Conditional PUT of a JSON lease record.
    Put { mode: PutMode, body: Vec<u8> },
    /// PUT of this node's own member object (quorum heartbeats). Only this node writes it.
    PutMember { body: Vec<u8> },
    /// GET of one member object, to check its body.
    GetMember { node: String },
    /// ListObjectsV2 of the member objects.
    ListMembers { continuation: Option<String> },
    /// DELETE of this node's own member object (leaving).
    DeleteMember,
    /// GET of a singleton job's slot object (see `crate::slot`).
    GetSlot,
    /// Conditional PUT of a singleton job's slot object.
    PutSlot { mode: PutMode, body: Vec<u8> },
    /// Conditional PUT of the store probe's scratch object (or of a key that never exists).
    PutProbe {
        missing_key: bool,
        mode: PutMode,
        body: Vec<u8>,
    },
    /// DELETE of the probe's scratch object.
    DeleteProbe,
}

/// What the store answered, already normalised across stores by the S3 layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// GET 200. Times are the store's own clock, in Unix seconds.
    Found {
        etag: ETag,
        body: Vec<u8>,
        last_modified: Option<u64>,
        date: Option<u64>,
    },
    /// GET 304: unchanged since the ETag we sent.
    NotModified { date: Option<u64> },
    /// GET 404 `NoSuchKey`.
    NotFound,
    /// PUT 200.
    Written { etag: ETag },
    /// ListObjectsV2 200: one page, and the token of the next one.
    Listed {
        entries: Vec<ListEntry>,
        continuation: Option<String>,
        date: Option<u64>,
    },
    /// DELETE 204.
    Deleted,
    /// PUT 412, or 404 to `If-Match` on a missing key: the condition did not hold.
    PreconditionFailed,
    /// 409 `ConditionalRequestConflict`: a concurrent write; retry.
    Conflict,
    /// No usable answer (timeout, connection error, 5xx, throttling). A write may or may not
    /// have been applied.
    Transient(Error),
    /// An answer that retrying will not change (credentials, missing bucket, …).
    Fatal(Error),
}

impl Outcome {
    /// What kind of answer this is, for messages about answers that make no sense where they
    /// came (without printing bodies, and without the size of a `Debug` implementation).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Found { .. } => "an object",
            Outcome::NotModified { .. } => "304 Not Modified",
            Outcome::NotFound => "404 Not Found",
            Outcome::Written { .. } => "a successful write",
            Outcome::Listed { .. } => "a listing",
            Outcome::Deleted => "a successful delete",
            Outcome::PreconditionFailed => "412 Precondition Failed",
            Outcome::Conflict => "409 Conflict",
            Outcome::Transient(_) => "a transient failure",
            Outcome::Fatal(_) => "an error",
        }
    }
}

/// One object from a LIST answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub etag: ETag,
    /// Store clock, Unix milliseconds.
    pub last_modified_ms: u64,
}
