//! The vocabulary every part of the protocol shares: what the sans-IO machines (the election
//! core, the quorum members, the probe, slot claims) ask the IO layer to send, and what the
//! store answered, already normalised, and the one way every IO layer drives them
//! ([`Exchange`], [`drive`]). It depends only on `error` and `time`, so imports run one way:
//! guest glue → s3 → core → protocol.
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
use crate::time::Instant;

/// An ETag as the store sent it, or in the form it is to be sent in (see [`EtagForm`]). Two
/// ETags are equal when their values are, quoted or not: stores differ in whether they quote
/// them, and a proxy may strip the quotes.
#[derive(Clone, Debug)]
pub struct ETag(pub String);

impl ETag {
    /// The value without its surrounding quotes.
    pub fn bare(&self) -> &str {
        let s = self.0.as_str();
        match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => inner,
            None => s,
        }
    }

    /// How this ETag is written.
    pub fn form(&self) -> EtagForm {
        if self.bare().len() == self.0.len() {
            EtagForm::Bare
        } else {
            EtagForm::Quoted
        }
    }

    /// The same ETag, written in `form`: what goes into `If-Match` / `If-None-Match`.
    pub fn in_form(&self, form: EtagForm) -> ETag {
        match form {
            EtagForm::Quoted => ETag(format!("\"{}\"", self.bare())),
            EtagForm::Bare => ETag(self.bare().to_string()),
        }
    }
}

impl PartialEq for ETag {
    fn eq(&self, other: &ETag) -> bool {
        self.bare() == other.bare()
    }
}

impl Eq for ETag {}

impl std::hash::Hash for ETag {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bare().hash(state);
    }
}

/// How a conditional header carries an ETag. RFC 9110 and AWS quote it (`"abc"`); Ceph RGW
/// and DigitalOcean Spaces match `If-Match` only against the bare value. An elector starts with
/// the form its settings name and switches when the store refuses it (see `crate::core`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EtagForm {
    #[default]
    Quoted,
    Bare,
}

impl EtagForm {
    /// The form a setting `unquoted-etags` names.
    pub fn from_unquoted(unquoted: bool) -> EtagForm {
        if unquoted {
            EtagForm::Bare
        } else {
            EtagForm::Quoted
        }
    }

    /// The other form.
    pub fn other(self) -> EtagForm {
        match self {
            EtagForm::Quoted => EtagForm::Bare,
            EtagForm::Bare => EtagForm::Quoted,
        }
    }
}

/// The condition of a PUT. There is deliberately no unconditional mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// `If-None-Match: *`: fails with 412 if the object exists.
    Create,
    /// `If-Match: <etag>`: fails with 412 (or 404) unless the object still has this ETag. The
    /// ETag is sent exactly as written here (see [`ETag::in_form`]).
    Update(ETag),
    /// No condition at all. Exists only in mutation builds, for
    /// `mutation::Mutation::UnconditionalRenewal`; the election never uses it.
    #[cfg(feature = "mutations")]
    Overwrite,
}

/// A request for the lease object, to be signed and sent by the IO layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// GET; with `if_none_match` (sent as written), an unchanged object is answered `304`
    /// without a body.
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
    /// GET of a singleton job's marker (it says the job has run, see `crate::slot`).
    GetJobMarker,
    /// PUT of the job marker, `If-None-Match: *` (it is written once).
    PutJobMarker { body: Vec<u8> },
    /// Conditional PUT of the store probe's scratch object `<probe key>-<scratch>` (or of a key
    /// that never exists, `<probe key>-<scratch>-missing`).
    PutProbe {
        scratch: String,
        missing_key: bool,
        mode: PutMode,
        body: Vec<u8>,
    },
    /// DELETE of the probe's scratch object.
    DeleteProbe { scratch: String },
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
    /// PUT 412, or 404 to `If-Match` on a missing key: the condition did not hold. (To the
    /// probe's write to a missing key, a 404 is [`Outcome::NotFound`]: it records which.)
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

/// A sans-IO machine that asks for one request at a time and is handed its answer: an
/// elector's call, a slot claim, the store probe. Every IO layer drives them the same way
/// ([`drive`]).
pub trait Exchange {
    /// The next request, sent at `now`; `None` when the machine is done.
    fn next_request(&mut self, now: Instant) -> Option<Request>;
    /// The answer to the request last returned, arrived at `now`.
    fn answer(&mut self, now: Instant, outcome: Outcome);
}

/// Run `machine` until it asks for nothing more: `send` sends a request and waits for its
/// answer, `now` reads the caller's monotonic clock.
pub fn drive(
    machine: &mut impl Exchange,
    mut now: impl FnMut() -> Instant,
    mut send: impl FnMut(&Request) -> Outcome,
) {
    while let Some(request) = machine.next_request(now()) {
        let outcome = send(&request);
        machine.answer(now(), outcome);
    }
}
