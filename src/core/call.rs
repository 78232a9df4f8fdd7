//! One call on an elector, from start to result: what the WIT functions `tick`, `resign`,
//! `leave` and `query-leader` do, as a sans-IO machine. Every driver (the component's glue,
//! the unit tests, the simulator, the model checker, the fuzzer) runs calls through here, so
//! they all judge the program users run: the request budget, which events a caller sees,
//! and when a call's answer is an error.
//!
//! A call: [`Elector::begin`], then while [`Elector::poll_request`] returns a request send it
//! and hand its answer to [`Elector::handle_response`], then [`Elector::finish`].

use super::*;

/// What the caller asked of the elector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// One bounded step: read, acquire, renew or step down as due.
    Tick,
    /// Stop leading and release the lease; afterwards only observe.
    Resign,
    /// Resign, and remove this node's member object.
    Leave,
    /// Read the lease and name its live holder, without ever writing.
    Query,
}

/// What a finished call returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `tick`, `resign`, `leave`: the status, with the events since the last call that
    /// returned them and the number of requests this call sent.
    Status(Status),
    /// `query-leader`: the live holder, if any.
    Leader(Option<LeaderInfo>),
}

/// The call in progress.
#[derive(Clone, Debug)]
pub(super) struct Call {
    kind: CallKind,
    /// Election requests sent (the probe's are not counted: it runs once, bounded by
    /// [`crate::probe::MAX_PROBE_REQUESTS`]).
    counted: usize,
    /// All requests sent.
    sent: u32,
}

impl Elector {
    /// Start a call at `now` (a call still in progress is abandoned, its requests unanswered).
    pub fn begin(&mut self, kind: CallKind, now: Instant) {
        match kind {
            CallKind::Tick => {}
            CallKind::Resign => self.resign(now),
            CallKind::Leave => self.leave(now),
            CallKind::Query => self.query(),
        }
        self.handle_timeout(now);
        self.call = Some(Call {
            kind,
            counted: 0,
            sent: 0,
        });
    }

    /// The next request of the call in progress, if it has one; `now` is taken as its send
    /// time. `None`: call [`Elector::finish`].
    #[must_use]
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        let call = self.call.as_ref()?;
        if call.kind == CallKind::Query && !self.query_pending {
            return None;
        }
        let probing = self.probe.is_some();
        if !probing && call.counted >= MAX_REQUESTS_PER_TICK {
            return None;
        }
        let request = self.next_request(now)?;
        if let Some(call) = self.call.as_mut() {
            call.sent = call.sent.saturating_add(1);
            if !probing {
                call.counted = call.counted.saturating_add(1);
            }
        }
        Some(request)
    }

    /// End the call in progress and say what it returns. Without a call in progress, the
    /// answer of a `tick` that sent nothing.
    pub fn finish(&mut self, now: Instant) -> Result<Reply, Error> {
        let (kind, sent) = self
            .call
            .take()
            .map_or((CallKind::Tick, 0), |c| (c.kind, c.sent));
        if kind == CallKind::Query {
            let pending = std::mem::take(&mut self.query_pending);
            if let Some(e) = self.take_error() {
                return Err(e);
            }
            if pending {
                return Err(Error::Transport(
                    "the query could not read the lease".into(),
                ));
            }
            return Ok(Reply::Leader(self.queried_leader(now)));
        }
        if matches!(kind, CallKind::Resign | CallKind::Leave) && self.release_pending() {
            let why = self.last_error.clone();
            return Err(why
                .unwrap_or_else(|| Error::Transport("the release could not be confirmed".into())));
        }
        // An error is the answer; the events stay queued for the next call that succeeds.
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        let mut status = self.status(now);
        if !self.knows_lease() {
            // Not even one read succeeded (a fresh instance cut off from the store): "nobody
            // leads" would be a guess, so the failure is the answer.
            if let Some(e) = status.last_error.take() {
                return Err(e);
            }
        }
        status.events = std::iter::from_fn(|| self.poll_event()).collect();
        status.requests = sent;
        if self.config.stateless && self.unsettled() {
            // A stateless instance ends with its call, and the next invocation starts afresh
            // (a new read, a new decision): whatever this one left unsettled, the next one
            // comes no sooner than a retry period, never in a loop.
            status.next_step_in = status.next_step_in.max(self.config.timings.retry_period);
        }
        Ok(Reply::Status(status))
    }

    /// Whether a call is in progress.
    pub fn in_call(&self) -> bool {
        self.call.is_some()
    }

    /// A write is still to be sent or settled.
    fn unsettled(&self) -> bool {
        self.planned.is_some() || self.unconfirmed.is_some()
    }
}

impl crate::protocol::Exchange for Elector {
    fn next_request(&mut self, now: Instant) -> Option<Request> {
        self.poll_request(now)
    }

    fn answer(&mut self, now: Instant, outcome: Outcome) {
        self.handle_response(now, outcome);
    }
}
