//! Following: reading the lease record, judging it, and deciding to take it over. Steps as
//! in client-go's `tryAcquireOrRenew`, with what a bucket adds: vacancies where the object is
//! missing, releases, stateless instances, and other processes that share our node id.

use super::*;

impl Elector {
    pub(super) fn on_read(&mut self, now: Instant, outcome: Outcome) {
        // Answered, well or not: a query is over (its caller sees any error).
        let query = std::mem::take(&mut self.query_pending);
        match outcome {
            Outcome::Found {
                etag,
                body,
                last_modified,
                date,
            } => match LeaseRecord::decode(&body) {
                Ok(record) => {
                    self.observe(now, etag, record, last_modified, date);
                    self.after_read(now, query);
                }
                Err(foreign) => {
                    // Never written over; a human must look. Retried at the poll interval.
                    self.view = View::Unknown;
                    self.fail(
                        now,
                        Error::ForeignRecord {
                            key: self.config.lease_key(),
                            reason: foreign.0,
                        },
                    );
                }
            },
            Outcome::NotModified { date } => {
                if let View::Present(o) = &mut self.view {
                    o.date = date;
                    self.after_read(now, query);
                } else {
                    // 304 to a request without If-None-Match: read again in full.
                    self.retry_read_later(now, store_bug("304 to an unconditional GET"));
                }
            }
            Outcome::NotFound => {
                self.view = View::Missing;
                self.after_read(now, query);
            }
            Outcome::Fatal(e) => self.fail(now, e),
            Outcome::Transient(e) => {
                if query {
                    // Not "nobody leads": the query's caller gets the error.
                    self.fatal = Some(e.clone());
                }
                self.retry_read_later(now, e)
            }
            Outcome::Conflict => self.retry_read_later(now, store_bug("409 to a GET")),
            Outcome::Written { .. }
            | Outcome::PreconditionFailed
            | Outcome::Listed { .. }
            | Outcome::Deleted => {
                self.retry_read_later(now, store_bug("an answer to another request"))
            }
        }
    }

    fn observe(
        &mut self,
        now: Instant,
        etag: ETag,
        record: LeaseRecord,
        last_modified: Option<u64>,
        date: Option<u64>,
    ) {
        self.highest_term_seen = self.highest_term_seen.max(record.term);
        self.longest_lease_seen = self
            .longest_lease_seen
            .max(Duration::from_millis(record.lease_ms));
        let previous = match &self.view {
            View::Present(o) => Some(o.as_ref()),
            _ => None,
        };
        let (observed_at, release_seen) = match previous {
            // Same version as before: the observed-time clock keeps running.
            Some(o) if o.etag == etag => (o.observed_at, o.release_seen),
            // A new version. A release is trusted at once only when we saw it replace the
            // holder's own held record of the same term: an older record restored from a
            // backup or an earlier version looks released too, while its successor still leads.
            Some(o) => (
                now,
                record.released
                    && o.record.is_held()
                    && o.record.term == record.term
                    && o.record.holder == record.holder,
            ),
            None => (now, false),
        };
        // Another process writes with our node id: it changed the record while we watched,
        // or (we being stateless) a stateful instance uses our id.
        let ours_by_id = record.holder == self.config.node_id && !self.is_mine(&record);
        let changed = previous.is_some_and(|o| o.etag != etag);
        let stateful_writer = self.config.stateless && record.instance.is_some();
        self.duplicate_id = ours_by_id && record.is_held() && (changed || stateful_writer)
            || (self.duplicate_id && ours_by_id);
        // A stateful elector whose very first read finds a lease expired by the store's clock
        // (older than its lease, its grace and the clock's margins) was probably opened by a
        // caller that opens one per call: it says so until the record changes.
        let expired_by_store = !record.released
            && date.zip(last_modified).is_some_and(|(d, m)| {
                let wait = self.takeover_wait(&record);
                Duration::from_secs(d.saturating_sub(m)) >= self.store_clock_wait(wait)
            });
        self.opened_on_expired = !self.config.stateless
            && if previous.is_none() {
                expired_by_store
            } else {
                self.opened_on_expired && !changed
            };
        self.view = View::Present(Box::new(Observed {
            etag,
            record,
            observed_at,
            last_modified,
            date,
            release_seen,
            from_write: false,
        }));
    }

    fn after_read(&mut self, now: Instant, query: bool) {
        // A read that settles a failed write is no success yet: the error stays visible
        // until the write is confirmed or retried successfully.
        if self.unconfirmed.is_none() {
            self.last_error = None;
        }
        self.read_due = self.next_poll(now);
        if let Some(w) = self.unconfirmed.take() {
            if self.settle(now, w) {
                return;
            }
        }
        if self.leadership.is_some() {
            self.leader_read(now);
            return;
        }
        self.quorum_seen_in_record();
        if query {
            return; // it only looks
        }
        let next = if self.resigned {
            self.release()
        } else {
            match self.takeover(now) {
                Ok(next) => next,
                Err(e) => {
                    self.fail(now, e);
                    None
                }
            }
        };
        // After a write the store did not apply, the next one waits (see `settle`): the
        // decision is made again on a read at the end of the wait.
        let next = match (next, self.write_backoff_until) {
            (Some(_), Some(until)) if now < until => {
                self.read_due = self.read_due.max(until);
                None
            }
            (next, _) => next,
        };
        // With quorum on, a candidate acquires only right after a check found enough fresh
        // members; otherwise it checks first and reads again once the check succeeds.
        let next = match next {
            Some(w)
                if matches!(w.kind, WriteKind::Acquire | WriteKind::Resume)
                    && !self.quorum_confirmed(now) =>
            {
                self.members.want_check(now);
                None
            }
            other => other,
        };
        self.planned = next.map(|w| (now, w));
    }

    /// Settle a write that got no clear answer by the read that followed: our nonce in the
    /// record means it was applied (then true). Otherwise it was not, and the next lease
    /// write waits a retry period, so that a store answering every write with 412 (or 409,
    /// or 5xx) costs a few requests per retry period, never a busy loop. One exception: a 412
    /// on the very ETag the read shows again means the store compares ETags in another form
    /// (Ceph RGW matches only bare ones); the elector switches form and writes again at once.
    fn settle(&mut self, now: Instant, w: Write) -> bool {
        let View::Present(o) = &self.view else {
            self.back_off_writes(now);
            return false;
        };
        if o.record.nonce == w.record.nonce {
            let etag = o.etag.clone();
            self.write_confirmed(now, w, etag);
            return true;
        }
        // The object still has the ETag the write was conditioned on: nobody else wrote.
        let unchanged = matches!(&w.mode, PutMode::Update(sent) if *sent == o.etag);
        // A stateless instance that lost to a write naming its own id, which it did not
        // make, met an overlapping invocation of its node: that one won this round, and this
        // instance stands down for the rest of its life.
        if self.config.stateless
            && !unchanged
            && o.record.holder == self.config.node_id
            && !self.is_mine(&o.record)
        {
            self.lost_round_to_own_id = true;
        }
        if w.refused && unchanged && !self.mutated(Mutation::BusyRetry) {
            self.etag_refusals = self.etag_refusals.saturating_add(1);
            self.etag_form = self.etag_form.other();
            if self.etag_refusals == 1 {
                return false; // the other form, at once
            }
            self.last_error = Some(Error::ConditionalWritesUnsupported(
                "If-Match never matched the ETag the store itself returned, quoted or bare".into(),
            ));
        }
        self.back_off_writes(now);
        false
    }

    fn back_off_writes(&mut self, now: Instant) {
        if !self.mutated(Mutation::BusyRetry) {
            self.write_backoff_until = Some(now + self.config.timings.retry_period);
        }
    }

    /// May this follower write the lease now, and what? Numbered as in client-go.
    fn takeover(&mut self, now: Instant) -> Result<Option<Write>, Error> {
        let me = self.config.node_id.as_str();
        let (kind, mode, term) = match &self.view {
            View::Unknown => return Ok(None),
            // 1. No lease object: a new election, or someone deleted it, maybe while a leader
            //    still holds it. Write a vacancy, on which nobody leads; it is acquired once it
            //    has aged a lease, like any other record.
            View::Missing if self.mutated(Mutation::CreateLeaseOnMissing) => (
                WriteKind::Acquire,
                PutMode::Create,
                self.highest_term_seen.saturating_add(1),
            ),
            View::Missing => (
                WriteKind::Vacate,
                PutMode::Create,
                self.highest_term_seen.max(1),
            ),
            // Known only from our own write: read it first (a decision needs the store's clock).
            View::Present(o) if o.from_write => {
                self.read_now(now);
                return Ok(None);
            }
            View::Present(o) => {
                let r = &o.record;
                let update = self.if_match(&o.etag);
                let acquire = |term| -> Result<(WriteKind, PutMode, u64), Error> {
                    Ok((WriteKind::Acquire, update.clone(), term))
                };
                let decision = if r.vacant {
                    // 2. A vacancy. One that tells less than this node knows (a shorter lease
                    //    than the longest it saw or was told of, a lower term than it saw) is
                    //    raised first: its finder may not have known what the deleted object's
                    //    leader held. Otherwise taken once it has aged that lease.
                    if self.raises_vacancy(r) {
                        Ok((
                            WriteKind::Vacate,
                            update.clone(),
                            self.highest_term_seen.max(r.term),
                        ))
                    } else if self.expired(now, o)? {
                        acquire(self.next_term(o)?)
                    } else {
                        return Ok(None);
                    }
                } else if r.released {
                    // 3. Released. At once if we saw the release happen or it is our own; a
                    //    stateless instance cannot see anything happen and trusts the store.
                    //    A release first seen as such may be an older record restored: wait.
                    if o.release_seen
                        || self.is_mine(r)
                        || self.config.stateless
                        || self.expired(now, o)?
                    {
                        acquire(self.next_term(o)?)
                    } else {
                        return Ok(None);
                    }
                } else if self.is_mine(r) {
                    // 4. Our own record, on which we do not lead (we stepped down, or the
                    //    write was confirmed too late to act on): a new term, at once.
                    acquire(self.next_term(o)?)
                } else if self.config.stateless
                    && r.holder == me
                    && r.instance.is_none()
                    && !self.lost_round_to_own_id
                    && r.term >= self.highest_term_seen
                {
                    // 5. Stateless: an earlier invocation of this node. Resume its term while
                    //    the lease is live by the store's clock, allowing for the clock's
                    //    one-second resolution and skew (an older version restored with its
                    //    old Last-Modified is not live); take it anew once expired. A term
                    //    below one this instance has seen is an older version restored: it
                    //    is never resumed (case 6 takes it over once expired, a term above).
                    let age = o.store_age().ok_or_else(no_store_clock)?;
                    if age < self.store_clock_wait(Duration::from_millis(r.lease_ms)) {
                        Ok((WriteKind::Resume, update.clone(), r.term))
                    } else if self.expired(now, o)? {
                        acquire(self.next_term(o)?)
                    } else {
                        return Ok(None);
                    }
                } else if self.expired(now, o)? {
                    // 6. Someone else's (another process with our id included), expired by
                    //    our own observation or, stateless, by the store's clock.
                    acquire(self.next_term(o)?)
                } else {
                    return Ok(None);
                };
                decision?
            }
        };
        Ok(Some(self.write(kind, mode, term)))
    }

    /// The term of an acquisition of the observed record: above its term and every term we
    /// saw, and at least the store's clock (Unix seconds × `TERMS_PER_SECOND`), so that it is
    /// above the terms of a deleted or restored object too. Of a vacancy, at least the store's
    /// clock a skew past its `Last-Modified`: every leader of the deleted object was elected
    /// before the vacancy was written, so at most a skew later by the clock that stamped it.
    fn next_term(&self, o: &Observed) -> Result<u64, Error> {
        let above = o.record.term.max(self.highest_term_seen).saturating_add(1);
        if self.mutated(Mutation::CreateLeaseOnMissing) {
            return Ok(above); // the old rule: +1 on what this node has seen, nothing more
        }
        let vacancy_floor = match (o.record.vacant, o.last_modified) {
            (true, Some(modified)) => {
                let skew_s = self
                    .config
                    .timings
                    .store_clock_skew
                    .as_millis()
                    .div_ceil(1000);
                let skew_s = u64::try_from(skew_s).unwrap_or(u64::MAX);
                Some(modified.saturating_add(skew_s).saturating_add(1))
            }
            _ => None,
        };
        let store_clock = match (o.date, vacancy_floor) {
            (Some(date), floor) => date.max(floor.unwrap_or(0)),
            (None, Some(floor)) => floor,
            (None, None) => return Err(no_store_clock()),
        };
        let term = above.max(clock_term(store_clock));
        if term > crate::record::MAX_TERM {
            return Err(store_bug(&format!(
                "the store's clock reads Unix second {store_clock}: a term from it (× {TERMS_PER_SECOND}) \
                 would pass 2^53, the largest any reader takes exactly; the store's clock is wrong"
            )));
        }
        Ok(term)
    }

    /// Whether a vacancy tells less than this node knows and is to be raised (rewritten with
    /// the longest lease and the highest term it knows): a vacancy is waited out for its
    /// `lease_ms` by everyone, and its term is a floor for the next one.
    fn raises_vacancy(&self, r: &LeaseRecord) -> bool {
        let shorter = Duration::from_millis(r.lease_ms) < self.longest_lease_seen
            && !self.mutated(Mutation::VacancyOwnLease);
        let lower = r.term < self.highest_term_seen && !self.mutated(Mutation::VacancyKeepsItsTerm);
        shorter || lower
    }

    /// How long a record must be seen unchanged before it may be taken over.
    pub(super) fn takeover_wait(&self, record: &LeaseRecord) -> Duration {
        let t = &self.config.timings;
        let mut lease = Duration::from_millis(record.lease_ms);
        if record.vacant {
            // Whoever led the missing object may have had a longer lease than its finder:
            // the longest lease this node saw or was told of.
            lease = lease.max(if self.mutated(Mutation::VacancyOwnLease) {
                t.lease
            } else {
                self.longest_lease_seen
            });
        }
        if self.mutated(Mutation::NoDriftMargin) {
            return lease;
        }
        lease.saturating_add(t.grace.max(t.drift_allowance(lease)))
    }

    /// Expired for a takeover: seen unchanged for the wait on our own clock or, stateless,
    /// older than the wait by the store's clock.
    fn expired(&self, now: Instant, o: &Observed) -> Result<bool, Error> {
        let wait = self.takeover_wait(&o.record);
        if self.mutated(Mutation::TakeoverByRecordTimestamp) {
            // Someone else's timestamp against our clock: wrong whenever clocks disagree.
            let age_s =
                (self.wall_clock_ms / 1000).saturating_sub(o.last_modified.unwrap_or(u64::MAX));
            return Ok(Duration::from_secs(age_s) >= wait);
        }
        if now >= o.observed_at + wait {
            return Ok(true);
        }
        if !self.config.stateless {
            return Ok(false);
        }
        let age = o.store_age().ok_or_else(no_store_clock)?;
        Ok(age >= self.store_clock_wait(wait))
    }

    /// `wait` by the store's clock: + 1 s for the one-second resolution of `Date` and
    /// `Last-Modified`, + the skew allowed between the clocks that stamp them.
    pub(super) fn store_clock_wait(&self, wait: Duration) -> Duration {
        let skew = if self.mutated(Mutation::NoStoreClockSkewMargin) {
            Duration::ZERO
        } else {
            self.config.timings.store_clock_skew
        };
        wait.saturating_add(Duration::from_secs(1))
            .saturating_add(skew)
    }

    /// Live as far as this node can judge: not expired by its own observation, nor older
    /// than the wait by the store's clock (what a fresh instance has to go by).
    pub(super) fn looks_live(&self, now: Instant, o: &Observed) -> bool {
        let wait = self.takeover_wait(&o.record);
        let stale_by_store = o
            .store_age()
            .is_some_and(|age| age >= self.store_clock_wait(wait));
        now < o.observed_at + wait && !stale_by_store
    }

    /// Next follower poll: one retry period (less up to 20 % jitter so nodes spread out), or
    /// earlier, when the observed lease (or vacancy) expires.
    pub(super) fn next_poll(&mut self, now: Instant) -> Instant {
        let period = self.config.timings.retry_period;
        let jitter = period.mul_f64(self.rng.unit() * 0.2);
        let mut due = now + period.saturating_sub(jitter);
        if let View::Present(o) = &self.view {
            // Wake at the expiry of anything we would take over then (not our own lease).
            if !(o.record.is_held() && self.is_mine(&o.record)) {
                let expiry = o.observed_at + self.takeover_wait(&o.record);
                if expiry > now {
                    due = due.min(expiry);
                }
            }
        }
        due
    }

    pub(super) fn on_probe(&mut self, now: Instant, outcome: Outcome) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        probe.handle_response(outcome);
        match probe.result().cloned() {
            None => {}
            Some(Ok(profile)) => {
                self.profile = Some(profile);
                self.probe = None;
            }
            Some(Err(e @ Error::ConditionalWritesUnsupported(_))) => {
                self.probe = None;
                // The refusal stands until an operator changes the store: it is reported at
                // every call, and a caller that follows `next_step_in` (or a stateless one,
                // whose every instance probes again) calls no sooner than a lease later.
                let t = &self.config.timings;
                self.read_due = now + t.lease.max(t.retry_period);
                self.refused = Some(e.clone());
                self.fatal = Some(e);
                self.query_pending = false; // the query's answer is this error
            }
            Some(Err(e)) => {
                // Could not finish (credentials, network): try again from the start later.
                self.probe = Some(self.new_probe());
                self.fail(now, e);
                self.query_pending = false;
            }
        }
    }
}

fn no_store_clock() -> Error {
    store_bug(
        "the answer has no usable Date or Last-Modified header; terms and stateless expiry \
         are judged by the store's clock (check any proxy in front of the store)",
    )
}
