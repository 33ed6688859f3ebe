//! Pictures of a run: one self-contained HTML page per scenario with an SVG timeline — a lane
//! per subject instance (each watch connection as a bar coloured by how it ended, starts,
//! lists, deliveries, 410s and other errors), a lane per
//! reconciled key (each reconcile a span coloured by its outcome), the watch requests the
//! apiserver saw (each a bar from its arrival to its `timeoutSeconds`, coloured by replica),
//! the server's writes as ticks, fault windows shaded across every lane, and every violation
//! as a red marker linked to its line in the trace printed below the picture.
//!
//! - `timeline`: what goes where, as data ([`Timeline`]).
//! - `svg`: drawing it ([`svg::svg`]), with the layout constants tests measure against.
//!
//! The same run gives the same bytes: nothing here reads a clock or iterates a hash map.

pub mod svg;
mod timeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::run::Report;
use crate::scenario::Scenario;

pub use timeline::{
    Band, Flag, Lane, Mark, SpanEnd, Timeline, MAX_INSTANCE_LANES, MAX_WATCH_SPANS,
};

/// The page of `report`, a run of `scenario`: title, verdicts, the timeline, the trace.
pub fn page(scenario: &Scenario, report: &Report) -> String {
    let timeline = Timeline::new(scenario, report);
    let title = svg::escape(&format!("{} [{}]", report.scenario, report.subject));
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>body{{font-family:sans-serif;margin:16px}} pre{{font-size:12px;line-height:1.35}} pre span:target{{background:#ffe08a}} .v{{color:#d62728}}</style></head><body>\n<h1>{title}</h1>\n<p>{}</p>\n<p>seed {} · simulated {} · verdict <b>{}</b></p>\n<ul>\n",
        svg::escape(&scenario.description),
        report.seed,
        humantime::format_duration(report.simulated),
        if report.met() { "met" } else { "UNMET" },
    );
    for v in &report.verdicts {
        let state = match v.violations.len() {
            0 => "pass".to_string(),
            n => format!("<span class=\"v\">violated ({n})</span>"),
        };
        let _ = writeln!(out, "<li>{}: {state}</li>", v.checker);
    }
    out.push_str("</ul>\n");
    out.push_str(&svg::svg(&timeline));
    out.push_str(LEGEND);
    out.push_str("<h2>Violations</h2>\n<ul>\n");
    for f in &timeline.flags {
        let _ = writeln!(
            out,
            "<li class=\"v\"><a href=\"#L{}\">{}</a></li>",
            f.line,
            svg::escape(&f.text)
        );
    }
    out.push_str("</ul>\n<h2>Trace</h2>\n<pre>");
    for (i, line) in report.trace.lines().enumerate() {
        let _ = writeln!(out, "<span id=\"L{i}\">{}</span>", svg::escape(line));
    }
    out.push_str("</pre>\n</body></html>\n");
    out
}

/// What the colours mean, under the picture.
const LEGEND: &str = "<p style=\"font-size:12px\">\
<span style=\"color:#000\">&#9650;</span> start · \
<span style=\"color:#2ca02c\">&#9646;</span> list · \
<span style=\"color:#1f77b4\">|</span> event · \
<span style=\"color:#d62728\">&#9646;</span> 410 expired · \
<span style=\"color:#ff7f0e\">&#9646;</span> other error or tombstone · \
reconciles <span style=\"color:#2ca02c\">ok</span> / <span style=\"color:#ff7f0e\">retried</span> / \
<span style=\"color:#d62728\">dead-lettered</span> · \
watch connection <span style=\"color:#9467bd\">closed by the server</span> / \
<span style=\"color:#ff7f0e\">failed</span> / <span style=\"color:#555\">given up by the client</span> / \
<span style=\"color:#d62728\">refused</span> · apiserver watches: colour per replica, a dark end when cut short · \
<span style=\"color:#7f7f7f\">|</span> server write · \
<span style=\"background:#f9b46b\">&nbsp;&nbsp;</span> fault window · \
<span style=\"color:#d62728\">&#9679;</span> violation (links to its trace line)</p>\n";

/// The page's file name for a scenario: `{name}.html`.
pub fn file_name(scenario_name: &str) -> String {
    format!("{scenario_name}.html")
}

/// Writes the page into `dir` (created if missing) as `{name}.html`; returns its path.
pub fn write_page(
    dir: &Path,
    name: &str,
    scenario: &Scenario,
    report: &Report,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(name));
    std::fs::write(&path, page(scenario, report))?;
    Ok(path)
}
