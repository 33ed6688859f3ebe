//! Semantic checks of a parsed scenario: every error names the JSON path of its field.
//! What is valid for one fault kind is the fault's own ([`Fault::invalid_value`]); here are
//! the checks against the rest of the scenario (its duration, replicas and subject).

use std::time::Duration;

use crate::apiserver::{invalid_name, LabelSelector};

use super::{
    Catalog, Dur, Fault, RateBounds, Scenario, SubjectKind, Workload, EXTERNAL, MAX_INSTANCES,
    MAX_SIMULATED, SCENARIO_VERSION,
};

/// A failed check: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    /// JSON path of the offending field.
    pub path: String,
    /// What was expected.
    pub message: String,
}

pub(super) fn bad(path: impl Into<String>, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        path: path.into(),
        message: message.into(),
    })
}

/// Checks everything serde could not: versions, ranges, names, times, references.
pub(super) fn scenario(s: &Scenario, subjects: &dyn Catalog) -> Result<(), Invalid> {
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
    idle_tick(s)?;
    cluster(s)?;
    let kind = subject_spec(s, subjects)?;
    objects(s)?;
    super::kinds::objects(s)?;
    for (i, w) in s.workload.iter().enumerate() {
        workload(s, i, w)?;
    }
    for (i, f) in s.faults.iter().enumerate() {
        fault(s, kind, i, f)?;
    }
    expect(s)
}

/// Longest `idle_tick`: a message sent during a long step waits at most this long.
const MAX_IDLE_TICK: Duration = Duration::from_secs(10);

fn idle_tick(s: &Scenario) -> Result<(), Invalid> {
    let Some(idle) = s.idle_tick else {
        return Ok(());
    };
    if idle.0 < s.tick.0 || idle.0 > MAX_IDLE_TICK {
        return bad(
            "idle_tick",
            format!(
                "must be between tick ({}) and {}, got {idle}",
                s.tick,
                Dur(MAX_IDLE_TICK)
            ),
        );
    }
    if idle.0.as_nanos() % s.tick.0.as_nanos() != 0 {
        return bad(
            "idle_tick",
            format!("must be a multiple of tick ({}), got {idle}", s.tick),
        );
    }
    Ok(())
}

fn objects(s: &Scenario) -> Result<(), Invalid> {
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
    Ok(())
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

/// The subject's name, counts and knobs; returns its kind.
fn subject_spec(s: &Scenario, subjects: &dyn Catalog) -> Result<SubjectKind, Invalid> {
    let sub = &s.subject;
    if sub.is_external() {
        subject_counts(s)?;
        return Ok(SubjectKind::External);
    }
    if sub.external.is_some() {
        return Err(Invalid {
            path: "subject.external".into(),
            message: format!("is for the {EXTERNAL:?} subject only, not {:?}", sub.name),
        });
    }
    let Some(kind) = subjects.kind_of(&sub.name) else {
        return Err(Invalid {
            path: "subject.name".into(),
            message: format!(
                "unknown subject {:?}; known subjects: {} (a replay file of your own controller \
                 runs from its test: KUBE_CHAOS_REPLAY=FILE cargo test TEST)",
                sub.name,
                subjects.names().join(", ")
            ),
        });
    };
    subject_counts(s)?;
    subject_config(s)?;
    Ok(kind)
}

fn subject_counts(s: &Scenario) -> Result<(), Invalid> {
    let sub = &s.subject;
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
    Ok(())
}

fn subject_config(s: &Scenario) -> Result<(), Invalid> {
    let sub = &s.subject;
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
        if let Err(e) = LabelSelector::parse(sel) {
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

pub(super) fn object_name(path: &str, name: &str) -> Result<(), Invalid> {
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
        Workload::ChurnObjects {
            at,
            for_,
            every,
            objects,
            ..
        } => {
            within(s, &format!("{p}.for"), *at, *for_)?;
            if every.0 < Duration::from_millis(1) {
                return bad(format!("{p}.every"), "must be at least 1ms");
            }
            if !(1..=10_000).contains(objects) {
                return bad(
                    format!("{p}.objects"),
                    format!("must be 1 to 10000, got {objects}"),
                );
            }
            Ok(())
        }
        // Checked against the scenario's kinds in `kinds.rs`.
        Workload::CreateObject { .. }
        | Workload::UpdateObject { .. }
        | Workload::PatchObject { .. }
        | Workload::DeleteObject { .. }
        | Workload::DeleteOwned { .. } => Ok(()),
    }
}

fn fault(s: &Scenario, kind: SubjectKind, i: usize, f: &Fault) -> Result<(), Invalid> {
    let p = format!("faults[{i}].{}", f.tag());
    let (at, end) = f.window();
    within(s, &format!("{p}.at"), at, Dur::default())?;
    if let (Some(end), Some(field)) = (end, f.length_field()) {
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
    if f.for_controllers_only() && kind != SubjectKind::Controller {
        return bad(
            p,
            format!(
                "applies to controller subjects only, not {:?}",
                s.subject.name
            ),
        );
    }
    if kind == SubjectKind::External {
        external_fault(&p, f)?;
    }
    match f.invalid_value() {
        Some((field, message)) => bad(format!("{p}.{field}"), message),
        None => Ok(()),
    }
}

/// Faults that `kube-chaos serve` cannot apply to a real client.
fn external_fault(p: &str, f: &Fault) -> Result<(), Invalid> {
    match f {
        Fault::CrashSubject { .. } | Fault::CrashAfterWrite { .. } | Fault::StaleRestart { .. } => {
            bad(
                p,
                "the external client's process is not ours to crash (restart it from your test)",
            )
        }
        Fault::Loss { .. } => bad(
            p,
            "is not emulated at a real socket (use partition, latency or connection_reset)",
        ),
        _ => Ok(()),
    }
}

fn expect(s: &Scenario) -> Result<(), Invalid> {
    if let Some(r) = s.expect.write_rate {
        if !(r.is_finite() && r > 0.0) {
            return bad("expect.write_rate", format!("must be above 0, got {r}"));
        }
    }
    rate_bounds(s, "watch_rate", s.expect.watch_rate.as_ref())?;
    rate_bounds(s, "list_rate", s.expect.list_rate.as_ref())
}

fn rate_bounds(s: &Scenario, field: &str, r: Option<&RateBounds>) -> Result<(), Invalid> {
    let Some(r) = r else { return Ok(()) };
    if !(r.min.is_finite() && r.max.is_finite() && 0.0 <= r.min && r.min <= r.max) {
        return bad(format!("expect.{field}"), "needs 0 <= min <= max");
    }
    if r.from.0 >= s.duration.0 {
        return bad(
            format!("expect.{field}.from"),
            "must be before the end of `duration`",
        );
    }
    Ok(())
}
