//! Leading: the writes (vacate, acquire, resume, renew, release), how their answers are
//! settled, and stepping down.

use super::*;

/// How often a write that got `409 ConditionalRequestConflict` is sent again at once before it
/// is settled by reading the record back.
const MAX_CONFLICT_RETRIES: u8 = 3;

impl Elector {
    /// The renewal, if this node leads and one is due.
    pub(super) fn renewal_due(&mut self, now: Instant) -> Option<Write> {
        let l = self.leadership.as_ref().filter(|l| now >= l.renew_due)?;
        #[allow(unused_mut)]
        let mut mode = self.if_match(&l.etag);
        #[cfg(feature = "mutations")]
        if self.mutated(Mutation::UnconditionalRenewal) {
            mode = PutMode::Overwrite;
        }
        let term = l.term;
        Some(self.write(WriteKind::Renew, mode, term))
    }

    /// Mark our record released (after resigning, or once a quorum loss's window is over).
    /// Only a record this elector wrote (stateless: this node's, as an invocation of it).
    pub(super) fn release(&mut self) -> Option<Write> {
        let View::Present(o) = &self.view else {
            return None;
        };
        let r = &o.record;
        let ours = self.is_mine(r)
            || (self.config.stateless
                && r.holder == self.config.node_id
                && r.instance.is_none()
                && !self.lost_round_to_own_id);
        if !r.is_held() || !ours {
            return None;
        }
        let (mode, term) = (self.if_match(&o.etag), r.term);
        Some(self.write(WriteKind::Release, mode, term))
    }

    pub(super) fn write(&mut self, kind: WriteKind, mode: PutMode, term: u64) -> Write {
        Write {
            kind,
            mode,
            record: self.next_record(term, kind),
            conflicts: 0,
            first_sent: None,
            refused: false,
        }
    }

    /// The record this node writes next.
    fn next_record(&mut self, term: u64, kind: WriteKind) -> LeaseRecord {
        let renewals = match (&self.view, kind) {
            (View::Present(o), WriteKind::Renew | WriteKind::Resume | WriteKind::Release)
                if o.record.term == term =>
            {
                o.record.renewals.saturating_add(1)
            }
            _ => 0,
        };
        let t = &self.config.timings;
        let lease = match kind {
            // A vacancy covers the longest lease its writer knows of: seen in any record, or
            // set as the longest lease in use (`longest_lease`).
            WriteKind::Vacate if !self.mutated(Mutation::VacancyOwnLease) => {
                self.longest_lease_seen
            }
            _ => t.lease,
        };
        let mut record = LeaseRecord {
            format: crate::record::FORMAT.to_string(),
            holder: self.config.node_id.clone(),
            term,
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
            renewals,
            nonce: self.rng.nonce(),
            released: kind == WriteKind::Release,
            vacant: kind == WriteKind::Vacate,
            instance: self.instance.clone(),
            metadata: self.config.metadata.clone(),
            members: Vec::new(),
            members_omitted: 0,
        };
        if matches!(
            kind,
            WriteKind::Acquire | WriteKind::Resume | WriteKind::Renew
        ) {
            if self.mutated(Mutation::UnboundedMembers) {
                record.members = self.members.view().to_vec();
            } else {
                record.publish_members(self.members.view());
                record.fit();
            }
        }
        record
    }

    pub(super) fn on_write(&mut self, now: Instant, mut w: Write, outcome: Outcome) {
        match outcome {
            Outcome::Written { etag } => {
                self.write_confirmed(now, w, etag);
            }
            Outcome::Conflict if self.mutated(Mutation::ConflictAsLost) => {
                self.step_down(DemoteReason::LeaseLost { holder: None });
                self.read_due = now + self.config.timings.retry_period;
            }
            Outcome::Conflict if w.conflicts < MAX_CONFLICT_RETRIES => {
                // 409: a concurrent write was in progress and ours was not applied; send the
                // same write again (same nonce, so a later read-back still recognises it).
                w.conflicts = w.conflicts.saturating_add(1);
                self.planned = Some((now, w));
            }
            Outcome::Fatal(e) => self.fail(now, e),
            other => {
                // 412, 404, 409 again, timeout, 5xx: whether it landed is read back, never
                // guessed. A 412 can even be our own earlier attempt.
                w.refused = other == Outcome::PreconditionFailed;
                if let Outcome::Transient(e) = other {
                    self.last_error = Some(e);
                }
                self.unconfirmed = Some(w);
                self.read_due = now;
            }
        }
    }

    pub(super) fn write_confirmed(&mut self, now: Instant, w: Write, etag: ETag) {
        self.last_error = None;
        self.write_backoff_until = None;
        if matches!(w.mode, PutMode::Update(_)) {
            self.etag_refusals = 0; // the form in use works
        }
        // The store applied the write at some moment since it was first sent: everything
        // (validity, the renew deadline) counts from then.
        let sent_at = match w.first_sent {
            Some(sent) if !self.mutated(Mutation::TimeFromAnswer) => sent,
            _ => now,
        };
        let term = w.record.term;
        self.highest_term_seen = self.highest_term_seen.max(term);
        self.view = View::Present(Box::new(Observed {
            etag: etag.clone(),
            record: w.record.clone(),
            observed_at: now,
            last_modified: None,
            date: None,
            release_seen: false,
            from_write: true,
        }));
        self.read_due = self.next_poll(now);
        let t = self.config.timings;
        let deadline = sent_at + t.renew_deadline;
        let may_lead = match w.kind {
            WriteKind::Release | WriteKind::Vacate => false,
            // A renewal confirmed after we stepped down does not make us leader again; the
            // record is ours, so the next takeover re-acquires with a new term.
            WriteKind::Renew => self.leadership.is_some(),
            WriteKind::Acquire | WriteKind::Resume => !self.resigned,
        };
        if !may_lead || now >= deadline {
            // Confirmed too late to act on (or not a leading write): we hold no leadership on
            // this term, and a new one starts with the next term.
            if self.leadership.is_some() {
                self.step_down(DemoteReason::RenewDeadlineExceeded);
            }
            return;
        }
        let newly_elected = self.leadership.is_none();
        self.release_due = None;
        self.leadership = Some(Leadership {
            term,
            etag,
            record: w.record,
            valid_until: sent_at
                + if self.mutated(Mutation::NoDriftMargin) {
                    t.lease
                } else {
                    t.shrink_by_drift(t.lease)
                },
            deadline,
            renew_due: sent_at + t.renew_interval,
        });
        if newly_elected {
            self.events.push_back(Event::Elected { term });
            self.quorum_unconfirmed_since = None;
            self.members
                .want_check(now + self.config.quorum.heartbeat_interval);
        }
    }

    /// A leader read the record (to settle a write): is the lease still ours?
    pub(super) fn leader_read(&mut self, now: Instant) {
        let verdict = match &self.view {
            View::Present(o) => {
                let r = &o.record;
                let term = self.leadership.as_ref().map_or(0, |l| l.term);
                if r.is_held() && r.term == term && self.is_mine(r) {
                    Ok((o.etag.clone(), r.clone()))
                } else {
                    Err((Some(r.holder.clone()), r.holder == self.config.node_id))
                }
            }
            _ => Err((None, false)),
        };
        match verdict {
            Ok((etag, record)) => {
                let Some(l) = self.leadership.as_mut() else {
                    return;
                };
                if etag != l.etag {
                    // An earlier write of ours landed late: renew on top of it.
                    l.etag = etag;
                    l.record = record;
                }
                // After a renewal the store refused, when the write back-off allows (at once
                // when only the ETag form was wrong).
                l.renew_due = self.write_backoff_until.unwrap_or(now).max(now);
            }
            Err((holder, our_id)) => {
                // Taken over, removed, or written by another process that shares our id.
                if our_id {
                    self.duplicate_id = true;
                }
                self.step_down(DemoteReason::LeaseLost { holder });
            }
        }
    }

    pub(super) fn step_down(&mut self, reason: DemoteReason) {
        if let Some(l) = self.leadership.take() {
            self.members.stop_checking();
            self.quorum_unconfirmed_since = None;
            self.events.push_back(Event::Demoted {
                term: l.term,
                reason,
            });
        }
    }
}
