//! Semantic checks of a parsed scenario: every error names the JSON path of its field.

use std::time::Duration;

use crate::apiserver::invalid_name;
use crate::scenario::{
    Dur, Fault, Scenario, Workload, CHECKERS, MAX_INSTANCES, MAX_SIMULATED, SCENARIO_VERSION,
};
use crate::subject;

/// A failed check: (JSON path, message).
pub(crate) type Invalid = (String, String);

fn bad(path: impl Into<String>, message: impl Into<String>) -> Result<(), Invalid> {
    Err((path.into(), message.into()))
}

/// Checks everything serde could not: versions, ranges, names, times, references.
pub(crate) fn scenario(s: &Scenario) -> Result<(), Invalid> {
    if s.version != SCENARIO_VERSION {
        return bad(
            "version",
            format!(
                "unsupported version {}, this build reads version {SCENARIO_VERSION}",
                s.version
            ),
        );
    }
    if s.name.trim().is_empty() {
        return bad("name", "must not be empty");
    }
    if s.duration.0.is_zero() {
        return bad("duration", "must be longer than zero");
    }
    if s.end() > MAX_SIMULATED {
        return bad(
            "duration",
            format!(
                "duration + settle is {}, the limit is {}",
                Dur(s.end()),
                Dur(MAX_SIMULATED)
            ),
        );
    }
    if s.tick.0 < Duration::from_millis(1) || s.tick.0 > Duration::from_secs(1) {
        return bad(
            "tick",
            format!("must be between 1ms and 1s, got {}", s.tick),
        );
    }
    cluster(s)?;
    subject_spec(s)?;
    for (i, o) in s.objects.iter().enumerate() {
        object_name(&format!("objects[{i}].name"), &o.name)?;
        if !["default", "kube-system", "kube-public"].contains(&o.namespace.as_str()) {
            return bad(
                format!("objects[{i}].namespace"),
                format!(
                    "namespace {:?} does not exist (default, kube-system, kube-public do)",
                    o.namespace
                ),
            );
        }
    }
    for (i, w) in s.workload.iter().enumerate() {
        workload(s, i, w)?;
    }
    for (i, f) in s.faults.iter().enumerate() {
        fault(s, i, f)?;
    }
    expect(s)
}

fn cluster(s: &Scenario) -> Result<(), Invalid> {
    let c = &s.cluster;
    if !(1..=16).contains(&c.replicas) {
        return bad(
            "cluster.replicas",
            format!("must be 1 to 16, got {}", c.replicas),
        );
    }
    if c.watch_cache_capacity == 0 {
        return bad("cluster.watch_cache_capacity", "must be at least 1");
    }
    if c.min_request_timeout.0 < Duration::from_secs(1) {
        return bad("cluster.min_request_timeout", "must be at least 1s");
    }
    if c.bookmark_interval.0 < Duration::from_secs(1) {
        return bad("cluster.bookmark_interval", "must be at least 1s");
    }
    if c.compaction_interval
        .is_some_and(|d| d.0 < Duration::from_secs(1))
    {
        return bad("cluster.compaction_interval", "must be at least 1s");
    }
    Ok(())
}

fn subject_spec(s: &Scenario) -> Result<(), Invalid> {
    let sub = &s.subject;
    if subject::find(&sub.name).is_none() {
        let known: Vec<&str> = subject::all().iter().map(|d| d.name).collect();
        return bad(
            "subject.name",
            format!(
                "unknown subject {:?}; known subjects: {}",
                sub.name,
                known.join(", ")
            ),
        );
    }
    if sub.clients == 0 || sub.hosts == 0 {
        return bad("subject", "clients and hosts must be at least 1");
    }
    if sub.clients.saturating_mul(sub.hosts) > MAX_INSTANCES {
        return bad(
            "subject.clients",
            format!(
                "clients × hosts is {}, the limit is {MAX_INSTANCES}",
                sub.clients * sub.hosts
            ),
        );
    }
    if !(1..=64).contains(&sub.config.workers) {
        return bad(
            "subject.config.workers",
            format!("must be 1 to 64, got {}", sub.config.workers),
        );
    }
    if sub.config.min_watch_timeout.0 < Duration::from_secs(1) {
        return bad("subject.config.min_watch_timeout", "must be at least 1s");
    }
    if let Some(sel) = &sub.config.label_selector {
        if let Err(e) = crate::apiserver::LabelSelector::parse(sel) {
            return bad(
                "subject.config.label_selector",
                format!("invalid label selector {sel:?}: {e}"),
            );
        }
    }
    if sub.config.watch_timeout.0 < Duration::from_secs(1) {
        return bad("subject.config.watch_timeout", "must be at least 1s");
    }
    Ok(())
}

fn object_name(path: &str, name: &str) -> Result<(), Invalid> {
    match invalid_name(name) {
        Some(why) => bad(path, format!("invalid name {name:?}: {why}")),
        None => Ok(()),
    }
}

fn within(s: &Scenario, path: &str, at: Dur, len: Dur) -> Result<(), Invalid> {
    if at.0 + len.0 > s.duration.0 {
        return bad(
            path,
            format!(
                "ends at {}, after the scenario's duration {}",
                Dur(at.0 + len.0),
                s.duration
            ),
        );
    }
    Ok(())
}

fn workload(s: &Scenario, i: usize, w: &Workload) -> Result<(), Invalid> {
    let p = format!("workload[{i}].{}", w.tag());
    within(s, &format!("{p}.at"), w.at(), Dur::default())?;
    match w {
        Workload::Create { name, .. }
        | Workload::Update { name, .. }
        | Workload::Delete { name, .. } => object_name(&format!("{p}.name"), name),
        Workload::Burst { count, prefix, .. } => {
            if !(1..=100_000).contains(count) {
                return bad(
                    format!("{p}.count"),
                    format!("must be 1 to 100000, got {count}"),
                );
            }
            object_name(&format!("{p}.prefix"), &format!("{prefix}-0"))
        }
        Workload::Churn {
            at,
            for_,
            every,
            objects,
            prefix,
            ..
        } => {
            within(s, &format!("{p}.for"), *at, *for_)?;
            if every.0 < Duration::from_millis(1) {
                return bad(format!("{p}.every"), "must be at least 1ms");
            }
            if !(1..=100_000).contains(objects) {
                return bad(
                    format!("{p}.objects"),
                    format!("must be 1 to 100000, got {objects}"),
                );
            }
            object_name(&format!("{p}.prefix"), &format!("{prefix}-0"))
        }
    }
}

fn fault(s: &Scenario, i: usize, f: &Fault) -> Result<(), Invalid> {
    let p = format!("faults[{i}].{}", f.tag());
    let (at, end) = f.window();
    within(s, &format!("{p}.at"), at, Dur::default())?;
    if let Some(end) = end {
        let field = if matches!(f, Fault::CrashReplica { .. } | Fault::CrashSubject { .. }) {
            "restart_after"
        } else {
            "for"
        };
        within(s, &format!("{p}.{field}"), end, Dur::default())?;
    }
    if let Some(r) = f.replica() {
        if r >= s.cluster.replicas {
            return bad(
                format!("{p}.replica"),
                format!(
                    "replica {r} does not exist (cluster.replicas is {})",
                    s.cluster.replicas
                ),
            );
        }
    }
    fault_values(s, &p, f)
}

fn fault_values(s: &Scenario, p: &str, f: &Fault) -> Result<(), Invalid> {
    match f {
        Fault::Loss { rate, .. } | Fault::HttpErrors { rate, .. }
            if !(0.0..=1.0).contains(rate) =>
        {
            bad(
                format!("{p}.rate"),
                format!("must be between 0 and 1, got {rate}"),
            )
        }
        Fault::HttpErrors { code, .. } if ![429, 500, 503, 504].contains(code) => bad(
            format!("{p}.code"),
            format!("must be 429, 500, 503 or 504, got {code}"),
        ),
        Fault::SlowReconcile { .. } | Fault::ReconcileErrors { .. } if !is_controller(s) => bad(
            p,
            format!(
                "applies to controller subjects only, not {:?}",
                s.subject.name
            ),
        ),
        Fault::ReconcileErrors { times: 0, .. } => bad(format!("{p}.times"), "must be at least 1"),
        _ => Ok(()),
    }
}

fn is_controller(s: &Scenario) -> bool {
    subject::find(&s.subject.name).is_some_and(|d| d.kind == subject::Kind::Controller)
}

fn expect(s: &Scenario) -> Result<(), Invalid> {
    for (i, v) in s.expect.violations.iter().enumerate() {
        if !CHECKERS.contains(&v.as_str()) {
            return bad(
                format!("expect.violations[{i}]"),
                format!("unknown checker {v:?}; checkers: {}", CHECKERS.join(", ")),
            );
        }
    }
    if let Some(r) = &s.expect.watch_rate {
        if !(r.min.is_finite() && r.max.is_finite() && 0.0 <= r.min && r.min <= r.max) {
            return bad("expect.watch_rate", "needs 0 <= min <= max");
        }
        if r.from.0 >= s.duration.0 {
            return bad(
                "expect.watch_rate.from",
                "must be before the end of `duration`",
            );
        }
    }
    Ok(())
}
