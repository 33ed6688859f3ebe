//! The study's page: watch requests per second over time, one line per setting, with the
//! analytic steady rate of each as a dashed line, and the table below.

use std::fmt::Write as _;

use super::report::{table_without_wall, WatchLoadReport};
use crate::picture::svg::escape;

const W: f64 = 1000.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 20.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// The page: the chart and the table.
pub fn page(reports: &[WatchLoadReport]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>watch-load study</title></head><body style=\"font-family:sans-serif;margin:16px\">\n<h1>Watch requests per second at the apiserver</h1>\n",
    );
    out.push_str(&chart(reports));
    out.push_str("<p>");
    for (i, r) in reports.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"color:{}\">&#9644; min_watch_timeout {} ({} informers; dashed: N / (1.5 × min))</span> &nbsp; ",
            COLOURS[i % COLOURS.len()],
            humantime::format_duration(r.setting.min_watch_timeout),
            r.setting.informers
        );
    }
    let _ = write!(
        out,
        "</p>\n<pre>{}</pre>\n</body></html>\n",
        escape(&table_without_wall(reports))
    );
    out
}

/// Requests/s per minute, one polyline per setting, over the longest run.
fn chart(reports: &[WatchLoadReport]) -> String {
    let minutes = reports
        .iter()
        .map(|r| r.per_minute.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let rates = |r: &WatchLoadReport| -> Vec<f64> {
        r.per_minute.iter().map(|n| *n as f64 / 60.0).collect()
    };
    let peak = reports
        .iter()
        .flat_map(|r| rates(r).into_iter().chain([r.setting.expected_rate()]))
        .fold(1.0, f64::max);
    let x = |m: f64| LEFT + m / (minutes - 1) as f64 * (W - LEFT - 20.0);
    let y = |v: f64| H - BOTTOM - v / peak * (H - BOTTOM - TOP);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W:.0}\" height=\"{H:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"{W:.0}\" height=\"{H:.0}\" fill=\"#ffffff\"/>\n"
    );
    for i in 0..=4 {
        let v = peak * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT:.0}\" y1=\"{0:.1}\" x2=\"{1:.0}\" y2=\"{0:.1}\" stroke=\"#e1e4e8\"/><text x=\"4\" y=\"{0:.1}\">{v:.1}/s</text>",
            y(v),
            W - 20.0
        );
    }
    let step = (minutes / 12).max(1);
    for m in (0..minutes).step_by(step) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{m} min</text>",
            x(m as f64),
            H - BOTTOM + 16.0
        );
    }
    for (i, r) in reports.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = rates(r)
            .iter()
            .enumerate()
            .map(|(m, v)| format!("{:.1},{:.1}", x(m as f64), y(*v)))
            .collect();
        let e = y(r.setting.expected_rate());
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n<line x1=\"{LEFT:.0}\" y1=\"{e:.1}\" x2=\"{:.0}\" y2=\"{e:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6 4\"/>",
            points.join(" "),
            W - 20.0
        );
    }
    out.push_str("</svg>\n");
    out
}
