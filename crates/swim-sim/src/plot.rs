//! SVG plots of a [`Report`], written by hand: a line chart with axes,
//! ticks, labels, a title, a legend, and markers for the faults.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::Report;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (CDFs, counts).
    pub step: bool,
}

/// A vertical marker (a fault).
#[derive(Debug, Clone)]
pub struct Marker {
    /// Where on the x axis.
    pub x: f64,
    /// Its label.
    pub label: String,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title, on top.
    pub title: String,
    /// A smaller line under the title.
    pub subtitle: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// Vertical markers.
    pub markers: Vec<Marker>,
    /// Force the y range (otherwise from the data, starting at 0).
    pub y_range: Option<(f64, f64)>,
    /// Put the legend top left instead of bottom right.
    pub legend_top_left: bool,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;

/// Ticks at a "nice" step (1, 2 or 5 × 10^k) covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 7.0)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut v = Vec::new();
    let mut t = start;
    while t <= end + step * 1e-9 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (start, end, v)
}

fn fmt_tick(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 10.0 || (x - x.round()).abs() < 1e-9 {
        format!("{:.0}", x)
    } else if a >= 0.1 {
        format!("{:.2}", x)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .into()
    } else {
        format!("{x:.3}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    /// The chart as an SVG document.
    pub fn render(&self) -> String {
        let pts = self.lines.iter().flat_map(|l| l.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        for m in &self.markers {
            x0 = x0.min(m.x);
            x1 = x1.max(m.x);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let (ylo, yhi) = self
            .y_range
            .unwrap_or((0.0, if y1 > 0.0 { y1 * 1.05 } else { 1.0 }));
        let (xa, xb, xt) = ticks(x0.min(0.0).max(x0), x1);
        let (ya, yb, yt) = ticks(ylo, yhi);
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - xa) / (xb - xa) * pw;
        let sy = |y: f64| TOP + ph - (y - ya) / (yb - ya) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="28" font-size="18" font-weight="bold" text-anchor="middle">{}</text>"#,
            W / 2.0,
            esc(&self.title)
        );
        if !self.subtitle.is_empty() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="48" font-size="12" fill="#555" text-anchor="middle">{}</text>"##,
                W / 2.0,
                esc(&self.subtitle)
            );
        }
        // Grid and ticks.
        for &t in &yt {
            let y = sy(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for &t in &xt {
            let x = sx(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eeeeee"/><text x="{x:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 18.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 14.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="18" y="{:.1}" font-size="14" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        // Markers: a dashed line each, labelled along the line.
        for m in &self.markers {
            let x = sx(m.x);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/><text transform="translate({:.1} {:.1}) rotate(90)" font-size="11" fill="#666">{}</text>"##,
                TOP + ph,
                x + 3.0,
                TOP + 6.0,
                esc(&m.label)
            );
        }
        // Lines.
        let _ = writeln!(
            s,
            r#"<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/></clipPath>"#
        );
        for (k, l) in self.lines.iter().enumerate() {
            if l.points.is_empty() {
                continue;
            }
            let color = COLORS[k % COLORS.len()];
            let mut d = String::new();
            let mut prev: Option<(f64, f64)> = None;
            for &(x, y) in &l.points {
                match prev {
                    None => {
                        let _ = write!(d, "M{:.1},{:.1}", sx(x), sy(y));
                    }
                    Some((_, py)) if l.step => {
                        let _ =
                            write!(d, " L{:.1},{:.1} L{:.1},{:.1}", sx(x), sy(py), sx(x), sy(y));
                    }
                    Some(_) => {
                        let _ = write!(d, " L{:.1},{:.1}", sx(x), sy(y));
                    }
                }
                prev = Some((x, y));
            }
            let _ = writeln!(
                s,
                r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="2" clip-path="url(#plot)"/>"#
            );
            if l.points.len() == 1 {
                let (x, y) = l.points[0];
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    sx(x),
                    sy(y)
                );
            }
        }
        // Legend.
        let (lx, mut ly) = if self.legend_top_left {
            (LEFT + 16.0, TOP + 24.0)
        } else {
            (
                LEFT + pw - 285.0,
                TOP + ph - 12.0 - 18.0 * (self.lines.len() as f64 - 1.0),
            )
        };
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="275" height="{:.1}" fill="white" fill-opacity="0.85" stroke="black" stroke-width="0.5"/>"#,
            lx - 6.0,
            ly - 14.0,
            18.0 * self.lines.len() as f64 + 6.0
        );
        for (k, l) in self.lines.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
                ly - 4.0,
                lx + 22.0,
                ly - 4.0,
                lx + 28.0,
                ly,
                esc(&l.name)
            );
            ly += 18.0;
        }
        s.push_str("</svg>\n");
        s
    }
}

fn cdf(xs: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len() as f64;
    let mut out = vec![(0.0, 0.0)];
    out.extend(v.iter().enumerate().map(|(k, &x)| (x, (k + 1) as f64 / n)));
    out
}

fn markers(r: &Report) -> Vec<Marker> {
    let mut out: Vec<Marker> = r
        .faults_applied
        .iter()
        .take(12)
        .map(|(t, what, nodes)| Marker {
            x: *t,
            label: if nodes.is_empty() {
                what.clone()
            } else {
                format!(
                    "{} ({})",
                    what.split(" for ").next().unwrap_or(what),
                    nodes.len()
                )
            },
        })
        .collect();
    out.dedup_by(|a, b| (a.x - b.x).abs() < 1e-9 && a.label == b.label);
    out
}

fn subtitle(r: &Report) -> String {
    format!(
        "{} nodes, {} preset{}, seed {}",
        r.nodes,
        r.preset,
        if r.lifeguard { "" } else { ", lifeguard off" },
        r.seed
    )
}

/// The charts a report makes: convergence, detection-latency CDF,
/// dissemination, queue depths, traffic (those with data).
pub fn charts(r: &Report) -> Vec<(&'static str, Chart)> {
    let s = &r.series;
    let mut out = Vec::new();
    let zip =
        |ys: &[f64]| -> Vec<(f64, f64)> { s.t_s.iter().copied().zip(ys.iter().copied()).collect() };
    out.push((
        "convergence.svg",
        Chart {
            title: "Convergence: how much of the live cluster each node sees".into(),
            subtitle: subtitle(r),
            x_label: "simulated time (s)".into(),
            y_label: "fraction".into(),
            lines: vec![
                Line {
                    name: "mean fraction of live nodes seen alive".into(),
                    points: zip(&s.view_fraction),
                    step: false,
                },
                Line {
                    name: "nodes that see every live node".into(),
                    points: zip(&s.converged_fraction),
                    step: true,
                },
                Line {
                    name: "nodes whose view is exact".into(),
                    points: zip(&s.exact_fraction),
                    step: true,
                },
            ],
            markers: markers(r),
            y_range: Some((0.0, 1.0)),
            legend_top_left: false,
        },
    ));
    let firsts: Vec<f64> = r.detections.iter().filter_map(|d| d.first_dead_s).collect();
    let alls: Vec<f64> = r.detections.iter().filter_map(|d| d.all_dead_s).collect();
    let suspects: Vec<f64> = r
        .detections
        .iter()
        .filter_map(|d| d.first_suspect_s)
        .collect();
    if !firsts.is_empty() || !suspects.is_empty() {
        out.push((
            "detection_cdf.svg",
            Chart {
                title: format!("Failure detection latency ({} crashes)", r.detections.len()),
                subtitle: subtitle(r),
                x_label: "seconds after the crash".into(),
                y_label: "fraction of crashes (CDF)".into(),
                lines: vec![
                    Line {
                        name: "first node suspects".into(),
                        points: cdf(&suspects),
                        step: true,
                    },
                    Line {
                        name: "first node declares dead".into(),
                        points: cdf(&firsts),
                        step: true,
                    },
                    Line {
                        name: "every live node declares dead".into(),
                        points: cdf(&alls),
                        step: true,
                    },
                ],
                markers: Vec::new(),
                y_range: Some((0.0, 1.0)),
                legend_top_left: true,
            },
        ));
    }
    if let Some(d) = &r.dissemination {
        let mut pts = vec![(0.0, 0.0)];
        pts.extend(d.curve.iter().map(|&[t, f]| (t, f)));
        out.push((
            "dissemination.svg",
            Chart {
                title: format!("Dissemination of one update from {}", d.node),
                subtitle: format!(
                    "{}; 99% at {}, 99.99% at {}",
                    subtitle(r),
                    d.t99_s.map_or("-".into(), |t| format!("{t:.2}s")),
                    d.t9999_s.map_or("-".into(), |t| format!("{t:.2}s"))
                ),
                x_label: "seconds after the update".into(),
                y_label: "fraction of nodes that have it".into(),
                lines: vec![Line {
                    name: "nodes with the new incarnation".into(),
                    points: pts,
                    step: true,
                }],
                markers: Vec::new(),
                y_range: Some((0.0, 1.0)),
                legend_top_left: false,
            },
        ));
    }
    out.push((
        "queues.svg",
        Chart {
            title: "Membership broadcast queue depth".into(),
            subtitle: subtitle(r),
            x_label: "simulated time (s)".into(),
            y_label: "queued broadcasts".into(),
            lines: vec![
                Line {
                    name: "mean over nodes".into(),
                    points: zip(&s.queue_mean),
                    step: false,
                },
                Line {
                    name: "longest queue".into(),
                    points: s
                        .t_s
                        .iter()
                        .zip(&s.queue_max)
                        .map(|(&t, &q)| (t, q as f64))
                        .collect(),
                    step: false,
                },
            ],
            markers: markers(r),
            y_range: None,
            legend_top_left: false,
        },
    ));
    out.push((
        "traffic.svg",
        Chart {
            title: "Datagram traffic per node".into(),
            subtitle: subtitle(r),
            x_label: "simulated time (s)".into(),
            y_label: "bytes per node per second".into(),
            lines: vec![Line {
                name: "UDP bytes sent / node / s".into(),
                points: zip(&s.udp_bytes_per_node_per_s),
                step: false,
            }],
            markers: markers(r),
            y_range: None,
            legend_top_left: false,
        },
    ));
    out
}

/// Writes every chart of `r` into `dir` (created if needed); returns the
/// files written.
pub fn write_all(r: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, chart) in charts(r) {
        let path = dir.join(name);
        std::fs::write(&path, chart.render())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        let (a, b, t) = ticks(0.0, 300.0);
        assert_eq!((a, b), (0.0, 300.0));
        assert_eq!(t, [0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0]);
        let (_, _, t) = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6);
        assert_eq!(fmt_tick(0.2), "0.2");
        assert_eq!(fmt_tick(25_000.0), "25k");
    }

    #[test]
    fn renders_a_chart() {
        let c = Chart {
            title: "t <1>".into(),
            lines: vec![Line {
                name: "a".into(),
                points: vec![(0.0, 0.0), (1.0, 2.0)],
                step: true,
            }],
            markers: vec![Marker {
                x: 0.5,
                label: "crash".into(),
            }],
            ..Chart::default()
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("crash"));
    }
}
