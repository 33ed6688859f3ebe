//! The operator as it should be, and one variant per bug class real operators have shipped.
//!
//! Each variant is a small branch on [`Variant`] inside the reconcile (`reconcile.rs`,
//! `registry.rs`); everything else is shared. The bug classes are those of the controller
//! bug studies: Sieve (OSDI '22: stale, unobserved and intermediate states), Acto (SOSP '23)
//! and Anvil (OSDI '24: eventually stable reconciliation).

/// Which reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Variant {
    /// The operator as written in the crate doc: children by server-side apply under fixed
    /// names, a conflict-checked registry with retries, cleanup before the finalizer goes.
    #[default]
    Correct,
    /// Finds its ConfigMap by a cached list (`resourceVersion=0`, served from the
    /// apiserver's watch cache, as informer-backed clients read) and, when the list is
    /// empty, creates one with `generateName`. A retry that runs before the cache has seen
    /// its own create makes a second child. Mirrors controller-runtime operators whose
    /// default client reads from the informer cache (Sieve's stale-state duplicate
    /// creations; kube-controller-manager's Job and ReplicaSet controllers keep
    /// "expectations" for exactly this).
    DuplicateChild,
    /// Remembers in memory which generation of each App it already applied and skips the
    /// children when it sees that generation again: a child deleted by someone else is never
    /// recreated (and a restart forgets everything). Mirrors operators that keep an
    /// "already created" map or a last-applied hash in process memory instead of reading
    /// the cluster (Sieve's unobserved-state bugs; Anvil's non-ESR controllers).
    InMemoryState,
    /// Reads the registry from a cached list (`resourceVersion=0`) and writes it back as a
    /// new object without a `resourceVersion`: an unconditional update that clobbers keys
    /// other reconciles wrote since the cache's copy. Mirrors the lost-update bugs of
    /// operators that read-modify-write from a stale informer cache (Sieve's stale-state
    /// class; kubernetes #59848).
    StaleCache,
    /// On deletion removes its finalizer first and then the App's registry key: a failure
    /// or crash between the two leaves the key behind forever, since the App is gone and
    /// never reconciled again. Mirrors operators that drop the finalizer before (or without
    /// waiting for) their external cleanup (Sieve's intermediate-state bugs; leaked cloud
    /// resources).
    FinalizerBeforeCleanup,
    /// Treats a 409 Conflict on the registry as "someone else did it" and reports success:
    /// the App's key is never written. Mirrors `if IsConflict(err) { return Result{}, nil }`
    /// in Go operators (correct only with `Requeue: true`), Acto's dropped-update bugs.
    NoConflictRetry,
}

impl Variant {
    /// Every variant, `Correct` first.
    pub const ALL: [Variant; 6] = [
        Variant::Correct,
        Variant::DuplicateChild,
        Variant::InMemoryState,
        Variant::StaleCache,
        Variant::FinalizerBeforeCleanup,
        Variant::NoConflictRetry,
    ];

    /// The bug variants (all but `Correct`).
    pub fn bugs() -> &'static [Variant] {
        &Self::ALL[1..]
    }

    /// The variant's name in kebab case (`duplicate-child`), for logs and replay files.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::DuplicateChild => "duplicate-child",
            Variant::InMemoryState => "in-memory-state",
            Variant::StaleCache => "stale-cache",
            Variant::FinalizerBeforeCleanup => "finalizer-before-cleanup",
            Variant::NoConflictRetry => "no-conflict-retry",
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVariant(s.to_string()))
    }
}

/// A name that is no [`Variant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variant {0:?} (expected one of: correct, duplicate-child, in-memory-state, stale-cache, finalizer-before-cleanup, no-conflict-retry)")]
pub struct UnknownVariant(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_name() {
        // Parsing each name gives the variant back; a bad name is a named error.
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
        }
        assert_eq!(Variant::bugs().len(), 5);
        let e = "nope".parse::<Variant>().unwrap_err();
        assert!(e.to_string().starts_with("unknown variant \"nope\""), "{e}");
    }
}
