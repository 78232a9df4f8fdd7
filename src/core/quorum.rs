//! The quorum of observers, as the elector uses it: member answers, quorum checks, and what a
//! leader does when the quorum cannot be confirmed (see [`crate::members`] for the members'
//! own side: heartbeats, listing, freshness).

use super::*;
use crate::members::CheckResult;

impl Elector {
    pub(super) fn on_member(&mut self, now: Instant, request: MemberRequest, outcome: Outcome) {
        let retry = self.config.timings.retry_period;
        if let Outcome::Fatal(e) = outcome {
            self.quorum_check_failed(now);
            if request == MemberRequest::Heartbeat {
                self.members.heartbeat_done(now, false, retry);
            }
            self.fail(now, e);
            return;
        }
        match (request, outcome) {
            (MemberRequest::Heartbeat, outcome) => {
                let ok = matches!(outcome, Outcome::Written { .. });
                self.note_transient(&outcome);
                self.members.heartbeat_done(now, ok, retry);
            }
            (MemberRequest::Leave, outcome) => {
                let ok = matches!(outcome, Outcome::Deleted | Outcome::NotFound);
                self.note_transient(&outcome);
                self.members.left_done(ok);
            }
            (
                MemberRequest::List { .. },
                Outcome::Listed {
                    entries,
                    continuation,
                    date,
                },
            ) => {
                if let Err(e) = self.members.listed(entries, continuation, date) {
                    self.last_error = Some(e);
                    self.quorum_check_failed(now);
                }
            }
            (MemberRequest::Get { node }, Outcome::Found { etag, body, .. }) => {
                self.members.got(&node, Some(etag), Some(&body))
            }
            (MemberRequest::Get { node }, Outcome::NotFound) => self.members.got(&node, None, None),
            (_, outcome) => {
                self.note_transient(&outcome);
                self.quorum_check_failed(now);
            }
        }
        let periodic = self.leadership.is_some();
        if let Some(result) = self.members.finish_check(now, periodic) {
            self.on_quorum_check(now, result);
        }
    }

    fn note_transient(&mut self, outcome: &Outcome) {
        if let Outcome::Transient(e) = outcome {
            self.last_error = Some(e.clone());
        }
    }

    /// A quorum check could not finish (5xx, timeout, an unusable list page). For a leader it
    /// confirms nothing: the quorum counts as unconfirmed from now, as if too few were fresh.
    fn quorum_check_failed(&mut self, now: Instant) {
        self.members
            .check_failed(now, self.config.timings.retry_period);
        if self.leadership.is_some() && !self.mutated(Mutation::IgnoreFailedQuorumChecks) {
            self.quorum_unconfirmed_since.get_or_insert(now);
        }
    }

    /// A quorum check finished: a leader below quorum starts (or keeps) counting the grace;
    /// a candidate with enough members reads again and acquires.
    fn on_quorum_check(&mut self, now: Instant, result: CheckResult) {
        let q = *self.members.config();
        let enough = result.fresh >= q.size;
        if enough && self.quorum_lost {
            self.quorum_lost = false;
            self.events.push_back(Event::QuorumRestored {
                fresh: result.fresh,
            });
        }
        if self.leadership.is_none() {
            if enough {
                self.read_now(now);
            } else if !self.quorum_lost {
                self.quorum_lost = true;
                self.events.push_back(Event::QuorumLost {
                    fresh: result.fresh,
                    needed: q.size,
                });
            }
            return;
        }
        if enough {
            self.quorum_unconfirmed_since = None;
        } else {
            self.quorum_unconfirmed_since.get_or_insert(now);
        }
        self.check_quorum_grace(now);
    }

    /// A leader whose quorum has been unconfirmed for the grace stops leading at once. It
    /// releases the lease only when the window its last answer promised is over, so that no
    /// candidate can take over while the caller may still act on that promise.
    pub(super) fn check_quorum_grace(&mut self, now: Instant) {
        let (Some(since), Some(l)) = (self.quorum_unconfirmed_since, &self.leadership) else {
            return;
        };
        let q = *self.members.config();
        if now.saturating_since(since) < q.grace {
            return;
        }
        if self.mutated(Mutation::IgnoreQuorum) {
            self.quorum_unconfirmed_since = None; // (and no wake-up at a time long past)
            return;
        }
        let promised_until = l.valid_until;
        let fresh = self.members.last_check().map_or(0, |c| c.fresh);
        self.quorum_lost = true;
        self.events.push_back(Event::QuorumLost {
            fresh: fresh.min(q.size.saturating_sub(1)),
            needed: q.size,
        });
        self.step_down(DemoteReason::QuorumLost);
        self.release_due = Some(if self.mutated(Mutation::ReleaseAtQuorumLoss) {
            now
        } else {
            promised_until
        });
    }

    /// The release a quorum loss scheduled, once its time has come.
    pub(super) fn delayed_release(&mut self, now: Instant) -> Option<Write> {
        if self.release_due.is_none_or(|at| now < at) || self.leadership.is_some() {
            return None;
        }
        self.release_due = None;
        self.release()
    }

    /// A candidate may acquire only on a check that found enough members and began at most a
    /// heartbeat interval (plus a retry period) ago: a listing is as old as its check's start,
    /// even if the check took long or the process was paused half-way.
    pub(super) fn quorum_confirmed(&self, now: Instant) -> bool {
        let q = self.members.config();
        let recent = q
            .heartbeat_interval
            .saturating_add(self.config.timings.retry_period);
        !q.enabled()
            || self
                .members
                .last_check()
                .is_some_and(|c| c.fresh >= q.size && now <= c.at + recent)
    }

    /// A follower that reported the quorum lost learns it is back from a new leader's record
    /// (a leader only leads with a quorum, and publishes the members it counted).
    pub(super) fn quorum_seen_in_record(&mut self) {
        if !self.quorum_lost {
            return;
        }
        if let View::Present(o) = &self.view {
            let fresh = o.record.members.iter().filter(|m| m.fresh).count() as u32;
            let some_unpublished = o.record.members_omitted > 0;
            if o.record.is_held() && (fresh >= self.members.config().size || some_unpublished) {
                self.quorum_lost = false;
                self.events.push_back(Event::QuorumRestored { fresh });
            }
        }
    }
}
