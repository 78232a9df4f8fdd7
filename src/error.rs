//! Errors a caller must tell apart. They mirror the WIT `error` variant one to one.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A setting cannot work; found before any request was sent.
    InvalidConfig(ConfigError),
    /// The store refused our credentials or signature (403: wrong key, wrong secret, clock
    /// skew too large, missing permission).
    AccessDenied { code: String, message: String },
    /// The bucket does not exist.
    BucketMissing { bucket: String },
    /// The object at the lease key is not a lease record this version understands. It is
    /// never overwritten; remove it or use another key prefix.
    ForeignRecord { key: String, reason: String },
    /// The store answered a conditional write as if the condition were not there (or said it
    /// does not implement it). Electing on such a store could produce two leaders.
    ConditionalWritesUnsupported(String),
    /// No answer: connection refused or reset, DNS failure, timeout. Retried by the elector.
    Transport(String),
    /// An answer the protocol cannot use: malformed XML or JSON, a header it needs is missing
    /// or unreadable, a value out of any sane range, a body larger than the limit. Nothing is
    /// concluded from it; the elector retries, and the store (or a proxy in front of it)
    /// needs a look if it persists.
    BadAnswer(String),
    /// An answer we did not expect, with S3's error code when it sent one. 5xx and
    /// throttling are retried by the elector; other statuses need a human.
    Store {
        status: u16,
        code: String,
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(e) => write!(f, "invalid config: {e}"),
            Error::AccessDenied { code, message } => {
                write!(f, "access denied ({code}): {message}")
            }
            Error::BucketMissing { bucket } => write!(f, "bucket {bucket:?} does not exist"),
            Error::ForeignRecord { key, reason } => write!(
                f,
                "object at {key:?} is not a lease record of this version ({reason}); it will not be overwritten"
            ),
            Error::ConditionalWritesUnsupported(why) => {
                write!(f, "store does not honour conditional writes: {why}")
            }
            Error::Transport(why) => write!(f, "transport error: {why}"),
            Error::BadAnswer(why) => write!(f, "unusable answer from the store: {why}"),
            Error::Store {
                status,
                code,
                message,
            } => write!(f, "store answered {status} {code}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::InvalidConfig(e)
    }
}

/// A setting that cannot work, found before any I/O.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field, as named in the WIT config records.
    pub field: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}
