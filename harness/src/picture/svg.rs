//! The timeline drawn as SVG: a row per lane, time left to right, fault windows shaded across
//! every lane, violations as red markers on the top row that link to their trace lines.
//! Coordinates are printed with one decimal, so the same timeline gives the same bytes.

use std::fmt::Write as _;
use std::time::Duration;

use super::timeline::{Band, Flag, Lane, Mark, SpanEnd, Timeline};
use crate::watch_log::WatchEnd;

/// Width of the picture.
pub const WIDTH: f64 = 1200.0;
/// Left margin (lane labels).
pub const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;
/// Top of the violation row.
pub const TOP: f64 = 24.0;
/// Height of the violation row.
pub const FLAG_ROW: f64 = 20.0;
/// Height of a lane.
pub const LANE: f64 = 24.0;
const BOTTOM: f64 = 28.0;

/// The fill of a fault band.
pub const BAND_FILL: &str = "#f9b46b";
/// The colour of a violation marker.
pub const FLAG_FILL: &str = "#d62728";
const WATCH_FILLS: [&str; 4] = ["#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// Maps simulated time to x.
#[derive(Clone, Copy)]
pub struct Scale {
    end: f64,
}

impl Scale {
    /// The scale of a run that ends at `end`.
    pub fn new(end: Duration) -> Self {
        Self {
            end: end.as_secs_f64().max(1e-9),
        }
    }

    /// x of time `t`.
    pub fn x(self, t: Duration) -> f64 {
        LEFT + (t.as_secs_f64() / self.end).min(1.0) * (WIDTH - LEFT - RIGHT)
    }
}

/// y of the top of lane `i`.
pub fn lane_top(i: usize) -> f64 {
    TOP + FLAG_ROW + i as f64 * LANE
}

/// The height of a picture with `lanes` lanes.
pub fn height(lanes: usize) -> f64 {
    lane_top(lanes) + BOTTOM
}

/// Text with XML's five special characters escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The whole picture.
pub fn svg(t: &Timeline) -> String {
    let scale = Scale::new(t.end);
    let h = height(t.lanes.len());
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {WIDTH:.0} {h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"{WIDTH:.0}\" height=\"{h:.0}\" fill=\"#ffffff\"/>\n"
    );
    for (i, lane) in t.lanes.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f3f5f8" } else { "#ffffff" };
        let y = lane_top(i);
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH:.0}\" height=\"{LANE:.0}\" fill=\"{fill}\"/>\n<text x=\"6\" y=\"{:.1}\">{}</text>",
            y + 16.0,
            escape(&lane.label)
        );
    }
    for b in &t.bands {
        band(&mut out, scale, b, t.lanes.len());
    }
    axis(&mut out, scale, t.end, t.lanes.len());
    for (i, lane) in t.lanes.iter().enumerate() {
        marks(&mut out, scale, lane, lane_top(i));
    }
    for f in &t.flags {
        flag(&mut out, scale, f, t.lanes.len());
    }
    out.push_str("</svg>\n");
    out
}

fn band(out: &mut String, scale: Scale, b: &Band, lanes: usize) {
    let x = scale.x(b.from);
    let w = (scale.x(b.to) - x).max(2.0);
    let (y, h) = (TOP, lane_top(lanes) - TOP);
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{BAND_FILL}\" fill-opacity=\"0.55\"><title>{}</title></rect>\n<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"#8a4b08\">{}</text>",
        escape(&b.label),
        TOP - 6.0,
        escape(&b.label)
    );
}

/// Ticks every round interval, about ten across.
fn axis(out: &mut String, scale: Scale, end: Duration, lanes: usize) {
    let steps = [
        1u64, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ];
    let secs = end.as_secs().max(1);
    let step = steps
        .iter()
        .copied()
        .find(|s| secs / s <= 12)
        .unwrap_or(secs / 10 + 1);
    let y = lane_top(lanes);
    let mut t = 0;
    while t <= secs {
        let x = scale.x(Duration::from_secs(t));
        let label = humantime::format_duration(Duration::from_secs(t));
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{y:.1}\" stroke=\"#d0d7de\" stroke-width=\"0.5\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            y + 16.0
        );
        t += step;
    }
}

fn marks(out: &mut String, scale: Scale, lane: &Lane, top: f64) {
    for m in &lane.marks {
        let _ = match m {
            Mark::Start(at) => {
                let x = scale.x(*at);
                writeln!(
                    out,
                    "<path d=\"M{x:.1} {:.1} l5 8 l-10 0 z\" fill=\"#000000\"><title>start</title></path>",
                    top + 8.0
                )
            }
            Mark::List(at) => tick(out, scale.x(*at), top, 3.0, 18.0, "#2ca02c", "list"),
            Mark::Event(at) => tick(out, scale.x(*at), top, 1.0, 8.0, "#1f77b4", "event"),
            Mark::Expired(at) => tick(out, scale.x(*at), top, 3.0, 20.0, FLAG_FILL, "410 expired"),
            Mark::Error(at) => tick(out, scale.x(*at), top, 2.0, 20.0, "#ff7f0e", "error"),
            Mark::Write(at) => tick(out, scale.x(*at), top, 1.0, 12.0, "#7f7f7f", "write"),
            Mark::Span { from, to, how } => span(out, scale, top, *from, *to, how),
        };
    }
}

fn tick(
    out: &mut String,
    x: f64,
    top: f64,
    w: f64,
    h: f64,
    fill: &str,
    what: &str,
) -> std::fmt::Result {
    writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{what}</title></rect>",
        x - w / 2.0,
        top + (LANE - h) / 2.0
    )
}

fn span(
    out: &mut String,
    scale: Scale,
    top: f64,
    from: Duration,
    to: Duration,
    how: &SpanEnd,
) -> std::fmt::Result {
    let (fill, opacity, what) = match how {
        SpanEnd::Ok => ("#2ca02c", 1.0, "reconcile ok".to_string()),
        SpanEnd::Retry => ("#ff7f0e", 1.0, "reconcile failed, retried".into()),
        SpanEnd::DeadLetter => (FLAG_FILL, 1.0, "reconcile dead-lettered".into()),
        SpanEnd::Running => ("#bbbbbb", 1.0, "reconcile running at the end".into()),
        SpanEnd::Connection(end, rv) => {
            let from = match rv.as_str() {
                "" => "\"\"".to_string(),
                rv => rv.to_string(),
            };
            let (fill, what) = match end {
                WatchEnd::Open => ("#c5b0d5", "watch, open at the end".to_string()),
                WatchEnd::Closed => ("#9467bd", "watch, closed by the server".into()),
                WatchEnd::Failed => ("#ff7f0e", "watch, connection failed".into()),
                WatchEnd::Dropped => ("#555555", "watch, given up by the client".into()),
                WatchEnd::Refused(code) => (FLAG_FILL, format!("watch refused with {code}")),
            };
            (fill, 0.35, format!("{what}, from resourceVersion {from}"))
        }
        SpanEnd::Watch { replica, early } => {
            let how = if *early { "ended early" } else { "timed out" };
            let what = format!("watch on apiserver-{replica}, {how}");
            (WATCH_FILLS[replica % WATCH_FILLS.len()], 0.45, what)
        }
    };
    let x = scale.x(from);
    let w = (scale.x(to) - x).max(1.0);
    writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"10\" fill=\"{fill}\" fill-opacity=\"{opacity}\"><title>{what}</title></rect>",
        top + 7.0
    )?;
    if let SpanEnd::Watch { early: true, .. } = how {
        // The end of a watch cut short: a dark edge.
        writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"1.5\" height=\"14\" fill=\"#3b1f5c\"/>",
            x + w - 1.5,
            top + 5.0
        )?;
    }
    Ok(())
}

fn flag(out: &mut String, scale: Scale, f: &Flag, lanes: usize) {
    let x = scale.x(f.at);
    let cy = TOP + FLAG_ROW / 2.0;
    let _ = writeln!(
        out,
        "<a href=\"#L{}\"><title>{}</title><line x1=\"{x:.1}\" y1=\"{cy:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{FLAG_FILL}\" stroke-width=\"1\" stroke-dasharray=\"3 2\"/><circle cx=\"{x:.1}\" cy=\"{cy:.1}\" r=\"6\" fill=\"{FLAG_FILL}\"/></a>",
        f.line,
        escape(&f.text),
        lane_top(lanes)
    );
}
