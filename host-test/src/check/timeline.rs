//! A picture of a run: one row per node, its leadership as bars coloured by term, and marks
//! where something was done to it (killed, resigned, faults). Plain SVG, no dependencies.

use crate::check::history::{leader_spans, Observation};
use std::fmt::Write;

/// Something done to a node at a moment of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub at_ms: u64,
    pub node: String,
    pub label: String,
}

const LEFT: f64 = 110.0;
const WIDTH: f64 = 1000.0;
const ROW: f64 = 34.0;
const TOP: f64 = 40.0;

fn term_colour(term: u64) -> String {
    format!("hsl({}, 62%, 52%)", (term * 67) % 360)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG of `history` with `marks`, titled `title`.
pub fn svg(history: &[Observation], marks: &[Mark], title: &str) -> String {
    let mut nodes: Vec<&str> = history.iter().map(|o| o.node.as_str()).collect();
    nodes.extend(marks.iter().map(|m| m.node.as_str()));
    nodes.sort();
    nodes.dedup();
    let end_ms = history
        .iter()
        .map(|o| o.at_ms)
        .chain(marks.iter().map(|m| m.at_ms))
        .max()
        .unwrap_or(0)
        .max(1000);
    let x = |ms: u64| LEFT + WIDTH * ms as f64 / end_ms as f64;
    let row = |node: &str| nodes.iter().position(|n| *n == node).unwrap_or(0) as f64;
    let height = TOP + ROW * nodes.len() as f64 + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>"#,
        w = LEFT + WIDTH + 20.0,
        title = escape(title)
    );
    // Time axis: a tick per second (per 5 s on long runs).
    let step = if end_ms > 30_000 { 5000 } else { 1000 };
    let axis_y = TOP + ROW * nodes.len() as f64 + 8.0;
    for t in (0..=end_ms).step_by(step) {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{axis_y}" stroke="#eee"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle" fill="#666">{2}s</text>"##,
            x(t),
            axis_y + 14.0,
            t / 1000
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = writeln!(
            out,
            r##"<text x="10" y="{:.1}">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ccc"/>"##,
            y + ROW / 2.0 + 4.0,
            escape(node),
            y + ROW / 2.0,
            LEFT + WIDTH,
            y + ROW / 2.0
        );
    }
    // Leadership: the spans the invariant checker judges, merged per node and term.
    let mut spans = leader_spans(history).unwrap_or_default();
    spans.sort_by(|a, b| (&a.node, a.term, a.from_ms).cmp(&(&b.node, b.term, b.from_ms)));
    let mut merged: Vec<(String, u64, u64, u64)> = Vec::new();
    for s in spans {
        match merged.last_mut() {
            Some((n, t, _, until)) if *n == s.node && *t == s.term && s.from_ms <= *until + 50 => {
                *until = (*until).max(s.until_ms)
            }
            _ => merged.push((s.node.clone(), s.term, s.from_ms, s.until_ms)),
        }
    }
    for (node, term, from, until) in merged {
        let y = TOP + ROW * row(&node) + 6.0;
        let (x0, x1) = (x(from), x(until.min(end_ms)));
        let _ = writeln!(
            out,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="3" fill="{}"><title>{} leads, term {term}, {from}..{until} ms</title></rect>"#,
            (x1 - x0).max(1.0),
            ROW - 12.0,
            term_colour(term),
            escape(&node)
        );
        if x1 - x0 > 40.0 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" fill="white">term {term}</text>"#,
                x0 + 4.0,
                y + ROW / 2.0
            );
        }
    }
    for m in marks {
        let y = TOP + ROW * row(&m.node);
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#c00" stroke-width="2"/><text x="{3:.1}" y="{4:.1}" fill="#c00">{5}</text>"##,
            x(m.at_ms),
            y + 2.0,
            y + ROW - 2.0,
            x(m.at_ms) + 3.0,
            y + 11.0,
            escape(&m.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(node: &str, at_ms: u64, leader: bool, term: u64) -> Observation {
        crate::check::history::test_observation(
            node,
            at_ms,
            leader,
            term,
            if leader { 900 } else { 0 },
        )
    }

    #[test]
    fn draws_a_row_per_node_a_bar_per_term_and_the_marks() {
        let h = vec![
            obs("a", 0, true, 1),
            obs("a", 500, true, 1),
            obs("b", 600, false, 1),
            obs("b", 2500, true, 2),
            obs("c<", 100, false, 1),
        ];
        let marks = vec![Mark {
            at_ms: 1000,
            node: "a".into(),
            label: "killed".into(),
        }];
        let svg = svg(&h, &marks, "run & test");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            2,
            "one bar per (node, term):\n{svg}"
        );
        assert!(svg.contains("term 1") && svg.contains("term 2"));
        assert!(svg.contains(">killed<"));
        assert!(svg.contains("c&lt;") && svg.contains("run &amp; test"));
    }
}
