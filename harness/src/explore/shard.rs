//! Sharding: an exploration's cases split into N disjoint slices, so a CI matrix runs them on
//! N runners with no coordinator (case `i` depends only on the seed and `i`), and [`merge`]
//! puts the shards' results back together as the unsharded run would have reported them.

use std::fmt;
use std::str::FromStr;

use super::Exploration;

/// Shard `index` of `count` (1-based, as CI matrices number their jobs): the cases `i` with
/// `i % count == index - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard that names no slice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `K/N`.
    #[error("expected K/N (e.g. 2/4), got {0:?}")]
    Syntax(String),
    /// `K` outside `1..=N`, or `N` zero.
    #[error("shard {index}/{count}: K must be 1 to N and N at least 1")]
    Range {
        /// K.
        index: u32,
        /// N.
        count: u32,
    },
}

impl Shard {
    /// Every case: the unsharded run.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Self { index, count })
    }

    /// Whether case `case` is in this shard.
    pub fn contains(self, case: u32) -> bool {
        case % self.count == self.index - 1
    }

    /// This shard's cases among `0..cases`, in order.
    pub fn cases(self, cases: u32) -> Vec<u32> {
        (self.index - 1..cases)
            .step_by(self.count as usize)
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(syntax)?;
        let k = k.trim().parse().map_err(|_| syntax())?;
        let n = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(k, n)
    }
}

/// Shards of one exploration (same subject and seed) that disagree on what they explored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot merge explorations of {0} and {1}: subject and seed must be the same")]
pub struct MergeError(String, String);

/// The shards' results as the unsharded run reports them: for each checker the failure of
/// the earliest case (a shard shrinks the first case of its own that violates a checker; the
/// earliest over all shards is the one the unsharded run shrinks, and shrinking depends only
/// on the seed, the case and the checker), in case order; every broken case; cases and wall
/// time summed; every case that did not reproduce. (With `stop_at_first`, the unsharded run also stops at its first failing case;
/// merge reports what the shards ran.)
pub fn merge(shards: Vec<Exploration>) -> Result<Exploration, MergeError> {
    let mut shards = shards.into_iter();
    let Some(mut out) = shards.next() else {
        return Err(MergeError("nothing".into(), "nothing".into()));
    };
    for s in shards {
        if s.subject != out.subject || s.seed != out.seed {
            let name = |e: &Exploration| format!("{} seed {}", e.subject, e.seed);
            return Err(MergeError(name(&out), name(&s)));
        }
        out.cases_run += s.cases_run;
        out.cases_wall += s.cases_wall;
        out.failures.extend(s.failures);
        out.broken.extend(s.broken);
        out.unreproduced.extend(s.unreproduced);
    }
    out.failures.sort_by_key(|f| (f.case, f.checker));
    let mut seen = Vec::new();
    out.failures.retain(|f| {
        let first = !seen.contains(&f.checker);
        seen.push(f.checker);
        first
    });
    out.broken.sort_by_key(|b| b.case);
    out.unreproduced.sort_by_key(|u| u.case);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_cases() {
        let all: Vec<u32> = (1..=3)
            .flat_map(|k| Shard::new(k, 3).unwrap().cases(10))
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(Shard::new(2, 3).unwrap().cases(10), [1, 4, 7]);
        assert!(Shard::new(2, 3).unwrap().contains(4));
        assert_eq!(Shard::WHOLE.cases(3), [0, 1, 2]);
    }

    #[test]
    fn a_shard_is_written_k_of_n_and_bad_ones_say_why() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        assert_eq!(
            "0/4".parse::<Shard>().unwrap_err().to_string(),
            "shard 0/4: K must be 1 to N and N at least 1"
        );
        assert_eq!(
            "5/4".parse::<Shard>().unwrap_err(),
            ShardError::Range { index: 5, count: 4 }
        );
        assert!(matches!("two".parse::<Shard>(), Err(ShardError::Syntax(_))));
    }
}
