//! A failure as a person looks at it: the violations and the histories of
//! the nodes they name, as text, and as a message diagram (SVG) — one lane
//! per node, time downwards, an arrow per message.

use std::fmt::Write as _;
use std::io::Write;

use crate::history::Direction;
use crate::report::{FailureContext, Report};

/// Most moments a context shows (the last ones before the failure).
const SHOWN: usize = 60;

/// Most lanes in a diagram; the other peers share the last one.
const LANES: usize = 8;

impl Report {
    /// Writes the violations and, for the first failures, what the nodes
    /// they name did just before (nothing if the run held).
    pub fn print_failure(&self, out: &mut impl Write) {
        if self.ok() {
            return;
        }
        let _ = writeln!(
            out,
            "{} violations; the first:",
            self.invariant_violations_total
        );
        for v in self.invariant_violations.iter().take(5) {
            let _ = writeln!(out, "  {v}");
        }
        for c in &self.failure_context {
            let _ = writeln!(
                out,
                "what {} did before `{}` at {:.6}s:",
                c.nodes.join(" and "),
                c.rule,
                c.time_s
            );
            let skip = c.moments.len().saturating_sub(SHOWN);
            for m in &c.moments[skip..] {
                let _ = writeln!(out, "  {m}");
            }
        }
    }

    /// The first failure's context as an SVG message diagram, if it has one.
    pub fn timeline_svg(&self) -> Option<String> {
        self.failure_context.first().map(svg)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn svg(c: &FailureContext) -> String {
    let skip = c.moments.len().saturating_sub(SHOWN);
    let moments = &c.moments[skip..];
    let mut lanes: Vec<String> = c.nodes.clone();
    for m in moments {
        if let Some(p) = &m.peer {
            if !lanes.contains(p) && lanes.len() < LANES {
                lanes.push(p.clone());
            }
        }
    }
    let others = lanes.len();
    let lane = |name: &str| lanes.iter().position(|l| l == name).unwrap_or(others);
    let (left, width, top, row) = (90.0, 130.0, 60.0, 18.0);
    let x = |k: usize| left + width * k as f64;
    let total_lanes = others + 1;
    let w = left + width * total_lanes as f64 + 60.0;
    let h = top + row * (moments.len() as f64 + 2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="monospace" font-size="10">"#
    );
    s += r##"<defs><marker id="a" markerWidth="8" markerHeight="6" refX="8" refY="3" orient="auto"><path d="M0,0 L8,3 L0,6 z"/></marker></defs>"##;
    let _ = write!(
        s,
        r#"<text x="8" y="16" font-size="12">`{}` at {:.6}s: what {} did before</text>"#,
        escape(&c.rule),
        c.time_s,
        escape(&c.nodes.join(" and "))
    );
    for (k, name) in lanes
        .iter()
        .chain(std::iter::once(&"others".to_string()))
        .enumerate()
    {
        let bold = if k < c.nodes.len() {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = write!(
            s,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="middle"{bold}>{}</text><line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#bbb"/>"##,
            x(k),
            top - 14.0,
            escape(name),
            x(k),
            top - 8.0,
            x(k),
            h - row
        );
    }
    for (r, m) in moments.iter().enumerate() {
        let y = top + row * r as f64;
        let _ = write!(
            s,
            r##"<text x="4" y="{:.0}" fill="#666">{:.3}s</text>"##,
            y + 3.0,
            m.time_s
        );
        let me = lane(&m.node);
        let peer = m.peer.as_deref().map(lane);
        let (from, to) = match (m.direction, peer) {
            (Direction::In, Some(p)) => (p, me),
            (Direction::Out, Some(p)) => (me, p),
            _ => (me, me),
        };
        if from == to {
            let _ = write!(
                s,
                r##"<circle cx="{:.0}" cy="{y:.0}" r="3" fill="#36c"/><text x="{:.0}" y="{:.0}">{}</text>"##,
                x(me),
                x(me) + 6.0,
                y + 3.0,
                escape(&m.what)
            );
        } else {
            let colour = if m.direction == Direction::In {
                "#393"
            } else {
                "#c63"
            };
            let _ = write!(
                s,
                r##"<line x1="{:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{colour}" marker-end="url(#a)"/><text x="{:.0}" y="{:.0}" text-anchor="middle" fill="{colour}">{}</text>"##,
                x(from),
                x(to),
                (x(from) + x(to)) / 2.0,
                y - 2.0,
                escape(&m.what)
            );
        }
    }
    let y = top + row * moments.len() as f64;
    let _ = write!(
        s,
        r##"<line x1="{left:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="red" stroke-dasharray="4"/><text x="{left:.0}" y="{:.0}" fill="red">{} fails at {:.6}s</text></svg>"##,
        w - 20.0,
        y + 12.0,
        escape(&c.rule),
        c.time_s
    );
    s
}
