//! What every node believed, tick by tick, and the invariant checker that judges it. The same
//! checker judges runs against real S3 servers and simulated runs.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// One answer of one node, stamped with the host's clocks when the call returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// Host wall clock, Unix milliseconds.
    pub unix_ms: u64,
    /// Host monotonic clock, milliseconds since the run started (used for all checks).
    #[serde(skip)]
    pub at_ms: u64,
    pub node: String,
    /// "leader" or "follower" (an error counts as follower).
    pub role: &'static str,
    /// The current leader's term as seen by this node (its fencing token when leading).
    pub term: Option<u64>,
    /// Node id of the leader as seen by this node.
    pub leader: Option<String>,
    /// How long this node's leadership stays valid; 0 when not leading.
    pub valid_ms: u64,
    pub events: Vec<String>,
    /// The error the call returned, if any.
    pub error: Option<String>,
    /// The transient error the elector is retrying, if any.
    pub last_error: Option<String>,
    /// Requests this call sent.
    pub requests: u32,
    /// With a quorum: the members as this node (leading) or its leader last judged them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Deployment problems the elector reports (`duplicate-node-id`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A quorum member in an observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    pub node: String,
    pub fresh: bool,
    pub age_ms: Option<u64>,
    pub metadata: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Observation {
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    /// One JSON line of `host-test node` or of `examples/jco-node/elector.mjs` (the same
    /// fields), timed by its wall-clock stamp from `epoch_unix_ms`: processes on one machine
    /// share that clock, so their histories can be judged together.
    pub fn from_json(line: &serde_json::Value, epoch_unix_ms: u64) -> Option<Observation> {
        let text = |k: &str| line.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let number = |k: &str| line.get(k).and_then(|x| x.as_u64());
        let unix_ms = number("unix_ms")?;
        Some(Observation {
            unix_ms,
            at_ms: unix_ms.saturating_sub(epoch_unix_ms),
            node: text("node")?,
            role: match line.get("role")?.as_str()? {
                "leader" => "leader",
                _ => "follower",
            },
            term: number("term"),
            leader: text("leader"),
            valid_ms: number("valid_ms").unwrap_or(0),
            events: line
                .get("events")
                .and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            error: text("error"),
            last_error: text("last_error"),
            requests: number("requests").unwrap_or(0) as u32,
            members: Vec::new(),
            problems: line
                .get("problems")
                .and_then(|p| p.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// A stretch of time during which one node believed it led.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderSpan {
    pub node: String,
    pub term: u64,
    pub from_ms: u64,
    pub until_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two nodes believed they led at the same instant.
    TwoLeaders {
        first: LeaderSpan,
        second: LeaderSpan,
    },
    /// Two holders with one term: the fencing token would not fence.
    TermShared {
        term: u64,
        first: String,
        second: String,
    },
    /// A leadership began with a term below one that began earlier.
    TermWentBack {
        span: LeaderSpan,
        highest_before: u64,
    },
    /// A leader reported no fencing token.
    LeaderWithoutTerm { node: String, at_ms: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::TwoLeaders { first, second } => write!(
                f,
                "two leaders: {} (term {}) led {}..{} ms and {} (term {}) led {}..{} ms",
                first.node,
                first.term,
                first.from_ms,
                first.until_ms,
                second.node,
                second.term,
                second.from_ms,
                second.until_ms
            ),
            Violation::TermShared {
                term,
                first,
                second,
            } => {
                write!(f, "term {term} held by both {first} and {second}")
            }
            Violation::TermWentBack {
                span,
                highest_before,
            } => write!(
                f,
                "{} began leading with term {} at {} ms after term {highest_before} had begun",
                span.node, span.term, span.from_ms
            ),
            Violation::LeaderWithoutTerm { node, at_ms } => {
                write!(f, "{node} reported leading without a term at {at_ms} ms")
            }
        }
    }
}

/// The leadership spans in a history. A leader answer at `t` with `valid_ms = v` means the
/// node may act until `t + v`, unless its own next answer (follower or error) came earlier.
pub fn leader_spans(history: &[Observation]) -> Result<Vec<LeaderSpan>, Violation> {
    let mut by_node: HashMap<&str, Vec<&Observation>> = HashMap::new();
    for o in history {
        by_node.entry(o.node.as_str()).or_default().push(o);
    }
    let mut spans = Vec::new();
    for (node, mut obs) in by_node {
        obs.sort_by_key(|o| o.at_ms);
        // Walk backwards so each leader answer knows the node's next non-leader answer.
        let mut next_non_leader: Option<u64> = None;
        for o in obs.iter().rev() {
            if !o.is_leader() {
                next_non_leader = Some(o.at_ms);
                continue;
            }
            let term = o.term.ok_or(Violation::LeaderWithoutTerm {
                node: node.to_string(),
                at_ms: o.at_ms,
            })?;
            let valid_until = o.at_ms + o.valid_ms;
            spans.push(LeaderSpan {
                node: node.to_string(),
                term,
                from_ms: o.at_ms,
                until_ms: next_non_leader.map_or(valid_until, |t| t.min(valid_until)),
            });
        }
    }
    // Node and term break ties, so that a violation reads the same on every run.
    spans.sort_by(|a, b| {
        (a.from_ms, a.until_ms, &a.node, a.term).cmp(&(b.from_ms, b.until_ms, &b.node, b.term))
    });
    Ok(spans)
}

/// Safety invariants: (a) never two leaders at one instant; (b) each term has one holder and
/// terms of successive leaderships strictly increase.
pub fn check(history: &[Observation]) -> Result<(), Violation> {
    check_allowing(history, &|_, _| false)
}

/// [`check`], where `allowed(span, term)` may excuse a leadership `span` that began with a
/// term not above `term`, which began earlier (or held it too): for the simulator's
/// schedules outside the fencing guarantee's stated assumption (a store clock that stepped
/// back while nobody who knew the higher term ran). (a) is never excused.
pub fn check_allowing(
    history: &[Observation],
    allowed: &dyn Fn(&LeaderSpan, u64) -> bool,
) -> Result<(), Violation> {
    let spans = leader_spans(history)?;
    // (a) Sweep in start order, remembering the span that reaches furthest.
    let mut furthest: Option<&LeaderSpan> = None;
    for s in &spans {
        if let Some(f) = furthest {
            if f.node != s.node && s.from_ms < f.until_ms {
                return Err(Violation::TwoLeaders {
                    first: f.clone(),
                    second: s.clone(),
                });
            }
        }
        if furthest.is_none_or(|f| s.until_ms > f.until_ms) {
            furthest = Some(s);
        }
    }
    // (b) One holder per term, and terms only grow.
    let mut holders: HashMap<u64, &str> = HashMap::new();
    let mut highest = 0;
    for s in &spans {
        match holders.get(&s.term) {
            Some(h) if *h != s.node => {
                if allowed(s, s.term) {
                    holders.insert(s.term, &s.node);
                    continue;
                }
                return Err(Violation::TermShared {
                    term: s.term,
                    first: h.to_string(),
                    second: s.node.clone(),
                });
            }
            Some(_) => {}
            None => {
                if s.term < highest && !allowed(s, highest) {
                    return Err(Violation::TermWentBack {
                        span: s.clone(),
                        highest_before: highest,
                    });
                }
                holders.insert(s.term, &s.node);
            }
        }
        highest = highest.max(s.term);
    }
    Ok(())
}

/// An observation for unit tests.
#[cfg(test)]
pub(crate) fn test_observation(
    node: &str,
    at_ms: u64,
    leader: bool,
    term: u64,
    valid_ms: u64,
) -> Observation {
    Observation {
        unix_ms: at_ms,
        at_ms,
        node: node.into(),
        role: if leader { "leader" } else { "follower" },
        term: Some(term),
        leader: None,
        valid_ms,
        events: vec![],
        error: None,
        last_error: None,
        requests: 0,
        members: vec![],
        problems: vec![],
    }
}

/// The most requests the calls of `node` reported within any `window_ms` of their answers
/// (each call counted at its answer): what the request-rate bound is judged on from outside
/// the elector (see `s3_election::core::RATE_WINDOW_RETRY_PERIODS`).
pub fn busiest_window(history: &[Observation], node: &str, window_ms: u64) -> u32 {
    let calls: Vec<&Observation> = history.iter().filter(|o| o.node == node).collect();
    calls
        .iter()
        .map(|c| {
            calls
                .iter()
                .filter(|o| o.at_ms >= c.at_ms && o.at_ms < c.at_ms + window_ms)
                .map(|o| o.requests)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_observation as obs;

    #[test]
    fn a_clean_handover_passes() {
        let h = vec![
            obs("a", 0, true, 1, 1000),
            obs("a", 500, true, 1, 1000),
            obs("b", 600, false, 1, 0),
            obs("b", 1600, true, 2, 1000),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn overlapping_validity_is_two_leaders() {
        let h = vec![obs("a", 0, true, 1, 1000), obs("b", 900, true, 2, 1000)];
        assert!(matches!(check(&h), Err(Violation::TwoLeaders { .. })));
    }

    #[test]
    fn a_follower_answer_ends_the_span_early() {
        // a resigned at 300 ms; b may lead from then on.
        let h = vec![
            obs("a", 0, true, 1, 1000),
            obs("a", 300, false, 2, 0),
            obs("b", 400, true, 2, 1000),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn a_later_follower_answer_ends_every_earlier_leader_span() {
        // a renewed at 200 ms, resigned at 300 ms; b leads from 400 ms.
        let h = vec![
            obs("a", 0, true, 1, 1000),
            obs("a", 200, true, 1, 1000),
            obs("a", 300, false, 2, 0),
            obs("b", 400, true, 2, 1000),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn shared_and_backward_terms_are_caught() {
        let shared = vec![obs("a", 0, true, 3, 100), obs("b", 200, true, 3, 100)];
        assert!(matches!(
            check(&shared),
            Err(Violation::TermShared { term: 3, .. })
        ));
        let back = vec![obs("a", 0, true, 3, 100), obs("b", 200, true, 2, 100)];
        assert!(matches!(check(&back), Err(Violation::TermWentBack { .. })));
    }

    #[test]
    fn a_leader_without_a_term_is_a_violation() {
        let mut o = obs("a", 0, true, 1, 100);
        o.term = None;
        assert!(matches!(
            check(&[o]),
            Err(Violation::LeaderWithoutTerm { .. })
        ));
    }
}
