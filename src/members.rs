//! The quorum of observers. Every member heartbeats its OWN object,
//! `<prefix><name>/members/<node-id>`, so members never contend with the lease or with each
//! other. The leader (and a candidate about to acquire) lists these objects and counts the
//! fresh ones by the store's own clock: `Date` of the LIST answer against each object's
//! `LastModified`, both written by the store, so no node's clock is compared with another's.
//!
//! A member's body never changes between heartbeats (node id and metadata only), so its ETag
//! is stable and the lister reads a body only when an ETag is new: a quorum check costs one
//! LIST, whatever the number of members. A body that is not a member record of this version
//! is reported as such and not counted.
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

use crate::config::QuorumConfig;
use crate::protocol::{ETag, ListEntry};
use crate::record::MemberInfo;
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

pub const MEMBER_FORMAT: &str = "s3-election/member/v1";

/// Largest member body read as a member record (a node id and at most 4 KiB of metadata).
pub const MAX_MEMBER_BYTES: usize = 8 * 1024;
/// A quorum check gives up (and counts as failed) past this many LIST pages or listed
/// objects: a store that always says "truncated" must not grow memory or time without end.
pub const MAX_LIST_PAGES: usize = 64;
pub const MAX_LISTED_MEMBERS: usize = 4 * 1000;

/// The body of a member object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub format: String,
    pub node: String,
    #[serde(default)]
    pub metadata: String,
}

impl MemberRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The record, if `bytes` is a member record of this version for `node`.
    pub fn decode(bytes: &[u8], node: &str) -> Result<MemberRecord, String> {
        if bytes.len() > MAX_MEMBER_BYTES {
            return Err(format!(
                "{} bytes, larger than any member record",
                bytes.len()
            ));
        }
        let r: MemberRecord =
            serde_json::from_slice(bytes).map_err(|_| "not a JSON member record".to_string())?;
        if r.format != MEMBER_FORMAT {
            return Err(format!(
                "unknown member format {:?}",
                r.format.chars().take(64).collect::<String>()
            ));
        }
        if r.node != node {
            return Err(format!(
                "record names {:?}, key names {node:?}",
                crate::record::truncate(&r.node, 64)
            ));
        }
        if r.metadata.len() > crate::config::MAX_METADATA_LEN {
            return Err("metadata longer than any node may publish".into());
        }
        Ok(r)
    }
}

/// What a member wants to send next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberRequest {
    Heartbeat,
    List { continuation: Option<String> },
    Get { node: String },
    Leave,
}

/// A finished quorum check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub fresh: u32,
    /// When the check began (its first listing was sent): what it found is as old as that,
    /// however long reading the rest took (a process paused mid-check included).
    pub at: Instant,
}

#[derive(Clone, Debug, Default)]
struct Check {
    entries: Vec<ListEntry>,
    continuation: Option<String>,
    listed: bool,
    pages: usize,
    date_ms: Option<u64>,
    started: Instant,
}

/// The member side of one elector.
#[derive(Clone, Debug)]
pub struct Members {
    cfg: QuorumConfig,
    /// How far apart the clocks that stamp `Date` and `Last-Modified` may be.
    store_clock_skew: Duration,
    mutation: Option<crate::mutation::Mutation>,
    node_id: String,
    prefix: String,
    body: Vec<u8>,
    heartbeat_due: Instant,
    /// When the next check is wanted (`None`: not wanted).
    check_due: Option<Instant>,
    check: Option<Check>,
    /// Bodies already read, by key, with the ETag they had.
    verified: HashMap<String, (ETag, Result<MemberRecord, String>)>,
    view: Vec<MemberInfo>,
    last_check: Option<CheckResult>,
    leaving: bool,
    left: bool,
}

impl Members {
    pub fn new(
        cfg: QuorumConfig,
        store_clock_skew: Duration,
        node_id: &str,
        metadata: &str,
        prefix: String,
        now: Instant,
    ) -> Members {
        let body = MemberRecord {
            format: MEMBER_FORMAT.into(),
            node: node_id.into(),
            metadata: metadata.into(),
        }
        .encode();
        Members {
            cfg,
            store_clock_skew,
            mutation: None,
            node_id: node_id.into(),
            prefix,
            body,
            heartbeat_due: now,
            check_due: None,
            check: None,
            verified: HashMap::new(),
            view: Vec::new(),
            last_check: None,
            leaving: false,
            left: false,
        }
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }

    /// Break one rule (simulator and model-checker mutation tests only).
    #[cfg(feature = "mutations")]
    pub(crate) fn set_mutation(&mut self, mutation: Option<crate::mutation::Mutation>) {
        self.mutation = mutation;
    }

    fn mutated(&self, m: crate::mutation::Mutation) -> bool {
        self.mutation == Some(m)
    }

    /// The constant body of this node's member object.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// `<prefix><name>/members/`: what the LIST asks for.
    pub fn list_prefix(&self) -> &str {
        &self.prefix
    }

    /// Want a quorum check at `at` (a leader's periodic check, a candidate's check before it
    /// acquires). An earlier wish wins.
    pub fn want_check(&mut self, at: Instant) {
        if self.cfg.enabled() {
            self.check_due = Some(self.check_due.map_or(at, |d| d.min(at)));
        }
    }

    /// Stop wanting periodic checks (no longer leading).
    pub fn stop_checking(&mut self) {
        self.check_due = None;
        self.check = None;
    }

    /// Remove our member object at the next step and stop heartbeating.
    pub fn leave(&mut self) {
        if self.cfg.enabled() && !self.left {
            self.leaving = true;
        }
    }

    pub fn last_check(&self) -> Option<CheckResult> {
        self.last_check
    }

    pub fn view(&self) -> &[MemberInfo] {
        &self.view
    }

    /// The next member request due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<MemberRequest> {
        if !self.cfg.enabled() || self.left {
            return None;
        }
        if self.leaving {
            return Some(MemberRequest::Leave);
        }
        if now >= self.heartbeat_due {
            return Some(MemberRequest::Heartbeat);
        }
        if self.check.is_none() && self.check_due.is_some_and(|d| now >= d) {
            self.check = Some(Check {
                started: now,
                ..Check::default()
            });
        }
        let check = self.check.as_ref()?;
        if !check.listed {
            return Some(MemberRequest::List {
                continuation: check.continuation.clone(),
            });
        }
        // Read the bodies whose ETag we have not verified yet.
        check
            .entries
            .iter()
            .find(|e| {
                self.verified
                    .get(&e.key)
                    .is_none_or(|(etag, _)| *etag != e.etag)
            })
            .map(|e| MemberRequest::Get {
                node: e
                    .key
                    .get(self.prefix.len()..)
                    .unwrap_or_default()
                    .to_string(),
            })
    }

    /// When a member request is next due (a check in progress or leaving: at once).
    pub fn next_due(&self) -> Option<Instant> {
        if !self.cfg.enabled() || self.left {
            return None;
        }
        if self.leaving || self.check.is_some() {
            return Some(Instant::default());
        }
        Some(
            self.check_due
                .map_or(self.heartbeat_due, |c| c.min(self.heartbeat_due)),
        )
    }

    pub fn heartbeat_done(&mut self, now: Instant, ok: bool, retry: Duration) {
        self.heartbeat_due = now
            + if ok {
                self.cfg.heartbeat_interval
            } else {
                retry
            };
    }

    pub fn left_done(&mut self, ok: bool) {
        if ok {
            self.leaving = false;
            self.left = true;
        }
    }

    /// A LIST page arrived. Keys that are not `<prefix><node-id>` (deeper keys belong to
    /// nobody's membership) are ignored. Too many pages or objects is an error: the check
    /// fails, and a leader counts that as an unconfirmed quorum.
    pub fn listed(
        &mut self,
        entries: Vec<ListEntry>,
        continuation: Option<String>,
        date_s: Option<u64>,
    ) -> Result<(), crate::Error> {
        let Some(check) = self.check.as_mut() else {
            return Ok(());
        };
        check.pages = check.pages.saturating_add(1);
        let prefix = &self.prefix;
        let count_twice = self.mutation == Some(crate::mutation::Mutation::ListedTwiceCounts);
        for e in entries.into_iter().filter(|e| {
            e.key
                .strip_prefix(prefix.as_str())
                .is_some_and(|node| !node.is_empty() && !node.contains('/'))
        }) {
            // A key listed twice (pages that overlap under churn, a buggy store) is one
            // member: the newest listing of it counts.
            match check.entries.iter_mut().find(|x| x.key == e.key) {
                Some(x) if !count_twice => {
                    if e.last_modified_ms > x.last_modified_ms {
                        *x = e;
                    }
                }
                _ => check.entries.push(e),
            }
        }
        if check.pages > MAX_LIST_PAGES || check.entries.len() > MAX_LISTED_MEMBERS {
            self.check = None;
            return Err(crate::Error::BadAnswer(format!(
                "the member listing goes on past {MAX_LIST_PAGES} pages or {MAX_LISTED_MEMBERS} objects"
            )));
        }
        check.date_ms = date_s.map(|s| s.saturating_mul(1000)).or(check.date_ms);
        match continuation {
            Some(token) => check.continuation = Some(token),
            None => check.listed = true,
        }
        Ok(())
    }

    /// A member body arrived (or `None`: it vanished).
    pub fn got(&mut self, node: &str, etag: Option<ETag>, body: Option<&[u8]>) {
        let key = format!("{}{node}", self.prefix);
        match (etag, body) {
            (Some(etag), Some(body)) => {
                let verdict = MemberRecord::decode(body, node);
                self.verified.insert(key.clone(), (etag.clone(), verdict));
                // The LIST may have seen an older version: judge the one we read.
                if let Some(check) = self.check.as_mut() {
                    for e in check.entries.iter_mut().filter(|e| e.key == key) {
                        e.etag = etag.clone();
                    }
                }
            }
            _ => {
                if let Some(check) = self.check.as_mut() {
                    check.entries.retain(|e| e.key != key);
                }
            }
        }
    }

    /// A request of the check failed: drop the check, try again after `retry`.
    pub fn check_failed(&mut self, now: Instant, retry: Duration) {
        self.check = None;
        if self.check_due.is_some() {
            self.check_due = Some(now + retry);
        }
    }

    /// Finish the check if everything is listed and verified.
    pub fn finish_check(&mut self, now: Instant, periodic: bool) -> Option<CheckResult> {
        let check = self.check.as_ref()?;
        if !check.listed
            || check.entries.iter().any(|e| {
                self.verified
                    .get(&e.key)
                    .is_none_or(|(etag, _)| *etag != e.etag)
            })
        {
            return None;
        }
        let check = self.check.take()?;
        let ttl_ms = self.cfg.member_ttl.as_millis() as u64;
        let mut view = Vec::new();
        for e in &check.entries {
            let node = e.key.get(self.prefix.len()..).unwrap_or_default();
            let Some((_, verdict)) = self.verified.get(&e.key) else {
                continue; // every listed body was verified above
            };
            // `Date` is truncated to the second: the true age may be up to 999 ms more.
            let age_ms = check
                .date_ms
                .map(|d| d.saturating_add(999).saturating_sub(e.last_modified_ms));
            let (metadata, mut problem) = match verdict {
                Ok(r) => (r.metadata.clone(), None),
                Err(why) => (String::new(), Some(why.clone())),
            };
            // A heartbeat stamped further ahead of the listing's `Date` than the clocks that
            // stamp them may differ (a gateway whose clock runs ahead, a store clock that
            // stepped back) would count as fresh for that much longer than the TTL, however
            // long ago it was really written: it is not counted.
            let skew_ms = u64::try_from(self.store_clock_skew.as_millis()).unwrap_or(u64::MAX);
            if let Some(date) = check.date_ms {
                let ahead = e.last_modified_ms.saturating_sub(date.saturating_add(999));
                if ahead > skew_ms
                    && problem.is_none()
                    && !self.mutated(crate::mutation::Mutation::TrustMemberClock)
                {
                    problem = Some(format!(
                        "its Last-Modified is {ahead} ms ahead of the store's Date (more than the \
                         store clock skew): a store clock that stepped back, or a gateway ahead"
                    ));
                }
            }
            view.push(MemberInfo {
                node_id: node.to_string(),
                metadata,
                fresh: problem.is_none() && age_ms.is_some_and(|a| a <= ttl_ms),
                age_ms,
                problem,
            });
        }
        // Forget bodies of objects that are gone.
        self.verified
            .retain(|k, _| check.entries.iter().any(|e| &e.key == k));
        let mut fresh = view.iter().filter(|m| m.fresh).count() as u32;
        if !view.iter().any(|m| m.fresh && m.node_id == self.node_id) {
            fresh = fresh.saturating_add(1); // we count ourselves: alive and heartbeating
        }
        view.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        self.view = view;
        self.check_due = periodic.then_some(now + self.cfg.heartbeat_interval);
        let result = CheckResult {
            fresh,
            at: check.started,
        };
        self.last_check = Some(result);
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "e/members/";

    fn members() -> Members {
        let mut cfg = QuorumConfig::disabled_for_lease(Duration::from_secs(3));
        cfg.size = 3;
        Members::new(
            cfg,
            Duration::from_secs(1),
            "me",
            "",
            PREFIX.into(),
            Instant::from_nanos(0),
        )
    }

    fn entry(node: &str, last_modified_ms: u64) -> ListEntry {
        ListEntry {
            key: format!("{PREFIX}{node}"),
            etag: ETag(format!("\"{node}\"")),
            last_modified_ms,
        }
    }

    fn body(node: &str) -> Vec<u8> {
        MemberRecord {
            format: MEMBER_FORMAT.into(),
            node: node.into(),
            metadata: String::new(),
        }
        .encode()
    }

    /// One quorum check over `pages` (listed at store second `date_s`), every body read.
    fn check(m: &mut Members, pages: Vec<Vec<ListEntry>>, date_s: u64) -> CheckResult {
        let now = Instant::from_nanos(1);
        m.heartbeat_done(now, true, Duration::from_secs(1));
        m.want_check(now);
        let last = pages.len() - 1;
        for (i, page) in pages.into_iter().enumerate() {
            assert!(matches!(m.poll(now), Some(MemberRequest::List { .. })));
            let more = (i < last).then(|| format!("page-{i}"));
            m.listed(page, more, Some(date_s)).unwrap();
        }
        while let Some(MemberRequest::Get { node }) = m.poll(now) {
            let etag = ETag(format!("\"{node}\""));
            m.got(&node, Some(etag), Some(&body(&node)));
        }
        m.finish_check(now, true).expect("the check finished")
    }

    /// Issue 18, case 6: a key listed twice (pages that overlap under churn) is one member.
    /// With quorum 3 and two members alive, the check counts 2, never 3.
    #[test]
    fn a_key_listed_twice_counts_once() {
        let mut m = members();
        let now_ms = 1_000_000;
        let pages = vec![
            vec![entry("me", now_ms), entry("other", now_ms)],
            vec![entry("other", now_ms)],
        ];
        assert_eq!(check(&mut m, pages.clone(), now_ms / 1000).fresh, 2);
        let mut old_rule = members();
        old_rule.set_mutation(Some(crate::mutation::Mutation::ListedTwiceCounts));
        assert_eq!(check(&mut old_rule, pages, now_ms / 1000).fresh, 3);
    }

    /// Issue 18, case 7: a heartbeat stamped further ahead of the store's `Date` than the
    /// store clock skew (a store clock that stepped back an hour) does not count: otherwise a
    /// dead member would stay fresh for the TTL plus the step.
    #[test]
    fn a_heartbeat_from_the_future_is_not_counted() {
        let mut m = members();
        let date_s = 1_000_000;
        let hour_ahead = (date_s + 3600) * 1000;
        let within_skew = date_s * 1000 + 1500;
        let pages = vec![vec![entry("ahead", hour_ahead), entry("near", within_skew)]];
        let result = check(&mut m, pages.clone(), date_s);
        assert_eq!(result.fresh, 2, "me and `near`");
        let ahead = m.view().iter().find(|x| x.node_id == "ahead").unwrap();
        assert!(!ahead.fresh);
        assert!(ahead
            .problem
            .as_deref()
            .unwrap()
            .contains("ahead of the store's Date"));
        let mut old_rule = members();
        old_rule.set_mutation(Some(crate::mutation::Mutation::TrustMemberClock));
        assert_eq!(check(&mut old_rule, pages, date_s).fresh, 3);
    }
}
