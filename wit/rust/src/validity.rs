//! The promise of one answer, kept against the monotonic clock. Pure: time is an argument, so
//! this is tested natively.

use crate::{Role, Status};
use std::time::Duration;

/// What the last answer promised, stamped with the monotonic time (ns) it arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    /// Monotonic nanoseconds when the answer was received.
    answered_at: u64,
    /// The leadership window it promised, from then (zero: not leader).
    valid_ns: u64,
    token: Option<u64>,
    next_tick_ns: u64,
}

impl Validity {
    /// Remember an answer received at monotonic time `now`. The window counts from `now`
    /// (after the call returned), exactly as the interface promises.
    pub fn record(&mut self, now: u64, status: &Status) {
        let leading = status.role == Role::Leader;
        *self = Validity {
            answered_at: now,
            valid_ns: if leading {
                status.valid_ms.saturating_mul(1_000_000)
            } else {
                0
            },
            token: if leading { status.fencing_token } else { None },
            next_tick_ns: status.next_tick_ms.saturating_mul(1_000_000),
        };
    }

    /// The call failed: not leader.
    pub fn lose(&mut self) {
        self.valid_ns = 0;
        self.token = None;
        self.next_tick_ns = 0;
    }

    pub fn is_leader_at(&self, now: u64) -> bool {
        self.left_ns(now) > 0
    }

    pub fn token_at(&self, now: u64) -> Option<u64> {
        self.token.filter(|_| self.is_leader_at(now))
    }

    pub fn left_at(&self, now: u64) -> Duration {
        Duration::from_nanos(self.left_ns(now))
    }

    pub fn next_tick_at(&self, now: u64) -> Duration {
        let due = self.answered_at.saturating_add(self.next_tick_ns);
        Duration::from_nanos(due.saturating_sub(now))
    }

    fn left_ns(&self, now: u64) -> u64 {
        let until = self.answered_at.saturating_add(self.valid_ns);
        // A clock that went backwards (it cannot: monotonic) would not extend the window.
        if now < self.answered_at {
            return 0;
        }
        until.saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(role: Role, valid_ms: u64, token: Option<u64>) -> Status {
        Status {
            role,
            leader: None,
            fencing_token: token,
            valid_ms,
            next_tick_ms: 500,
            events: Vec::new(),
            last_error: None,
            requests: 1,
            members: Vec::new(),
            problems: Vec::new(),
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_leader_answer_is_good_for_its_window_from_when_it_arrived() {
        let mut v = Validity::default();
        assert!(!v.is_leader_at(0));
        v.record(10 * MS, &status(Role::Leader, 1500, Some(7)));
        assert!(v.is_leader_at(10 * MS));
        assert_eq!(v.token_at(1_509 * MS), Some(7));
        assert!(!v.is_leader_at(1_510 * MS), "the window ends exactly");
        assert_eq!(v.token_at(1_510 * MS), None);
        assert_eq!(v.left_at(510 * MS), Duration::from_millis(1000));
        assert_eq!(v.next_tick_at(10 * MS), Duration::from_millis(500));
        assert_eq!(v.next_tick_at(2_000 * MS), Duration::ZERO);
    }

    #[test]
    fn a_follower_answer_or_an_error_ends_leadership_at_once() {
        let mut v = Validity::default();
        v.record(0, &status(Role::Leader, 1500, Some(7)));
        v.record(100 * MS, &status(Role::Follower, 0, None));
        assert!(!v.is_leader_at(100 * MS));
        v.record(200 * MS, &status(Role::Leader, 1500, Some(8)));
        v.lose();
        assert!(!v.is_leader_at(200 * MS));
        assert_eq!(v.token_at(200 * MS), None);
    }

    #[test]
    fn a_clock_read_before_the_answer_never_extends_the_window() {
        let mut v = Validity::default();
        v.record(1_000 * MS, &status(Role::Leader, 1500, Some(1)));
        assert!(!v.is_leader_at(0));
    }
}
