//! Your controller under chaos, from `cargo test`: name its CRDs, how to start it given a
//! `kube::Client`, the objects a workload creates and changes, and the condition that must
//! hold once the system is quiet; then run one scenario or explore generated ones from a seed.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::{CustomResource, CustomResourceExt};
//! use kube_chaos_harness::Operator;
//! # use kube_chaos_harness::subject::Shutdown;
//! # #[derive(CustomResource, Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
//! # struct AppSpec { content: String }
//! # async fn run(_: kube::Client, _: Shutdown) {}
//! # fn converged(_: &[App], _: &[ConfigMap]) -> Result<(), String> { Ok(()) }
//! # fn app(name: &str) -> App { App::new(name, AppSpec { content: "v1".into() }) }
//!
//! // #[test]
//! fn my_operator_survives_chaos() {
//!     Operator::new("my-operator")
//!         .crd(App::crd())                                   // or .crd_yaml(..)
//!         .start(|client, shutdown| run(client, shutdown))   // your main, minus config loading
//!         .object(app("web"))                                // created, patched, deleted
//!         .condition(|c| converged(&c.list(), &c.list::<ConfigMap>()))
//!         .unique_child::<ConfigMap>()
//!         .explore(200, 1);                                  // 200 cases from seed 1
//! }
//! # my_operator_survives_chaos();
//! ```
//!
//! On a failure the test panics with the shrunk replay file's path (written to the
//! regression directory, `kube-chaos-regressions/` beside the test's `Cargo.toml` unless
//! [`Operator::regressions`] says otherwise), the violated checker, the trace around the
//! violation, and the command that replays it. Every replay file in that directory runs
//! first on every `cargo test`, like proptest's regression files: a bug once found stays
//! tested. `KUBE_CHAOS_REPLAY=FILE cargo test NAME` runs one file alone and prints its
//! report.
//!
//! The checkers (DESIGN.md §6, `check/cluster.rs`): `eventually_stable` (the condition),
//! `differential` (end state against the same run without faults), `deletions_complete`,
//! `no_duplicate_children` (for the kinds given to [`Operator::unique_child`]), `no_panic`,
//! `write_rate`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;

use crate::explore::{self, Exploration, Options};
use crate::run::{self, Report};
use crate::scenario::Scenario;
use crate::subject::{
    self, ClusterView, ConditionFn, Descriptor, Shutdown, StartFn, Templates, TypeRef, UserSubject,
};

mod failure;
mod regressions;

pub use failure::{Failed, Finding};

/// A user's controller and what the harness needs to judge it (see the module doc).
pub struct Operator {
    name: String,
    start: Option<StartFn>,
    condition: Option<ConditionFn>,
    unique_children: Vec<TypeRef>,
    volatile: Vec<String>,
    templates: Templates,
    crds: Vec<Value>,
    regressions: Option<PathBuf>,
    read_timeout: Option<std::time::Duration>,
    shrink_runs: u32,
    jobs: usize,
    registered: OnceLock<&'static Descriptor>,
}

impl Operator {
    /// A controller called `name` (unique in the test process; it names replay files).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            start: None,
            condition: None,
            unique_children: Vec::new(),
            volatile: Vec::new(),
            templates: Templates::default(),
            crds: Vec::new(),
            regressions: None,
            read_timeout: None,
            shrink_runs: 200,
            jobs: 1,
            registered: OnceLock::new(),
        }
    }

    /// A CRD the cluster serves: a `CustomResourceDefinition` (from
    /// `CustomResourceExt::crd()`) or its JSON.
    ///
    /// # Panics
    /// If it does not serialise to JSON.
    pub fn crd(mut self, crd: impl Serialize) -> Self {
        let mut v = serde_json::to_value(crd).expect("a CRD serialises to JSON");
        if v.get("apiVersion").is_none() {
            v["apiVersion"] = "apiextensions.k8s.io/v1".into();
            v["kind"] = "CustomResourceDefinition".into();
        }
        self.crds.push(v);
        self
    }

    /// A CRD from YAML (a `kubectl apply` manifest); `Err` names what does not parse.
    pub fn crd_yaml(self, yaml: &str) -> Result<Self, serde_norway::Error> {
        let v: Value = serde_norway::from_str(yaml)?;
        Ok(self.crd(v))
    }

    /// How to start the controller: its `main` minus the config loading, given a client of
    /// the simulated cluster and a [`Shutdown`] trigger to use instead of `tokio::signal`.
    /// Called again on every restart.
    pub fn start<F, Fut>(mut self, start: F) -> Self
    where
        F: Fn(kube::Client, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start = Some(Arc::new(move |client, shutdown| {
            start(client, shutdown).boxed()
        }));
        self
    }

    /// An object the generated workload creates, merge-patches and deletes (and that may
    /// exist from the start).
    ///
    /// # Panics
    /// If it does not serialise to JSON.
    pub fn object(mut self, object: impl Serialize) -> Self {
        let v = serde_json::to_value(object).expect("an object serialises to JSON");
        self.templates.objects.push(v);
        self
    }

    /// A merge patch the generated workload applies to the objects (none: a changing
    /// annotation).
    pub fn patch(mut self, patch: Value) -> Self {
        self.templates.patches.push(patch);
        self
    }

    /// The condition that must hold once faults healed and the workload stopped, and keep
    /// holding (`eventually_stable`); `Err` says what is wrong.
    pub fn condition<F>(mut self, condition: F) -> Self
    where
        F: Fn(&ClusterView<'_>) -> Result<(), String> + Send + Sync + 'static,
    {
        self.condition = Some(Arc::new(condition));
        self
    }

    /// Children of kind `K` are unique per owner (`no_duplicate_children`).
    pub fn unique_child<K: Resource<DynamicType = ()>>(mut self) -> Self {
        self.unique_children.push(TypeRef::of::<K>());
        self
    }

    /// A JSON pointer (`/status/lastSync`) that `differential` ignores.
    pub fn volatile(mut self, pointer: &str) -> Self {
        self.volatile.push(pointer.to_string());
        self
    }

    /// The read timeout your controller's `kube::Config` sets (kube's default: none, so a
    /// response lost on a connection that stays open is waited for forever — exploration
    /// finds that). The simulated client applies it as kube-client does.
    pub fn read_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Where replay files are kept and rerun first (default: `kube-chaos-regressions/` in the
    /// test crate's directory).
    pub fn regressions(mut self, dir: impl AsRef<Path>) -> Self {
        self.regressions = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Most simulated runs spent shrinking one failure (default 200).
    pub fn shrink_runs(mut self, runs: u32) -> Self {
        self.shrink_runs = runs.max(1);
        self
    }

    /// Cases run in parallel (default 1; results do not depend on it).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// The regression directory in use.
    pub fn regression_dir(&self) -> PathBuf {
        self.regressions.clone().unwrap_or_else(|| {
            let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
                || std::env::current_dir().unwrap_or_default(),
                PathBuf::from,
            );
            root.join("kube-chaos-regressions")
        })
    }

    /// The controller as a registered subject (registered on first use).
    ///
    /// # Panics
    /// Without [`Operator::start`], or if another controller of this process has the name.
    pub fn subject(&self) -> &'static Descriptor {
        self.registered.get_or_init(|| {
            let start = self.start.clone().unwrap_or_else(|| {
                panic!(
                    "Operator {:?}: call .start(..) with how to start the controller",
                    self.name
                )
            });
            let user = UserSubject {
                start,
                condition: self.condition.clone(),
                unique_children: self.unique_children.clone(),
                volatile: self.volatile.clone(),
                templates: self.templates.clone(),
                crds: self.crds.clone(),
                read_timeout: self.read_timeout,
            };
            subject::register(&self.name, user).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    /// A scenario for this controller: its CRDs and objects, the exploration profile's
    /// timing, and the fields of `extra` (a JSON object of scenario fields — `faults`,
    /// `workload`, `duration` ... — as in a scenario file). For hand-written cases.
    pub fn scenario(
        &self,
        seed: u64,
        extra: Value,
    ) -> Result<Scenario, crate::scenario::ScenarioError> {
        let mut doc = serde_json::json!({
            "version": 1,
            "name": self.name,
            "seed": seed,
            "duration": "30s",
            "settle": "150s",
            "tick": "50ms",
            "resources": self.crds,
            "manifests": self.templates.objects,
            "subject": {"name": self.subject().name},
        });
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            doc.extend(extra.clone());
        }
        Scenario::parse(&doc.to_string(), &self.name, subject::registry())
    }

    /// Runs one scenario (its subject is taken to be this controller).
    pub fn run(&self, scenario: &Scenario) -> Result<Report, run::RunError> {
        let mut s = scenario.clone();
        s.subject.name = self.subject().name.to_string();
        run::run(&s, None)
    }

    /// Reruns the regression files, then explores `cases` generated cases from `seed`;
    /// `Err` with every finding (shrunk and written to the regression directory).
    pub fn check(&self, cases: u32, seed: u64) -> Result<Exploration, Failed> {
        let dir = self.regression_dir();
        if let Some(file) = std::env::var_os("KUBE_CHAOS_REPLAY") {
            return regressions::replay_one(self, Path::new(&file)).map(|_| empty(self, seed));
        }
        regressions::rerun(self, &dir)?;
        let mut opts = Options::new(self.subject().name, cases, seed);
        opts.jobs = self.jobs;
        opts.shrink_runs = self.shrink_runs;
        let e = explore::explore(&opts, &|_| {}).map_err(|e| Failed::Setup(e.to_string()))?;
        failure::judge(self, &dir, e)
    }

    /// [`Operator::check`], panicking with the findings (for `#[test]`s).
    ///
    /// # Panics
    /// On any finding: a violated checker, a regression file that fails again, a case the
    /// harness could not run.
    pub fn explore(&self, cases: u32, seed: u64) -> Exploration {
        match self.check(cases, seed) {
            Ok(e) => e,
            Err(failed) => panic!("{failed}"),
        }
    }
}

/// An exploration of no cases (a replay ran instead).
fn empty(op: &Operator, seed: u64) -> Exploration {
    Exploration {
        subject: op.subject().name.to_string(),
        seed,
        cases_run: 0,
        failures: Vec::new(),
        broken: Vec::new(),
        unreproduced: Vec::new(),
        cases_wall: std::time::Duration::ZERO,
    }
}
