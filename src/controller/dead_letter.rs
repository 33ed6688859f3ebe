//! Dead letters: keys the controller gave up on, kept (bounded) for inspection until a later
//! reconcile of the same key succeeds.

use std::collections::BTreeMap;

use super::error::ErrorClass;

/// A key the controller gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The object key (`namespace/name`).
    pub key: String,
    /// The last error's text.
    pub error: String,
    /// Its class (terminal, or retryable with retries exhausted).
    pub class: ErrorClass,
    /// Reconcile attempts in the failure streak that ended here.
    pub attempts: u32,
}

/// Dead letters by key, at most `capacity` (the oldest is dropped first).
#[derive(Debug)]
pub(crate) struct DeadLetters {
    by_key: BTreeMap<String, (u64, DeadLetter)>,
    capacity: usize,
    seq: u64,
}

impl DeadLetters {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            by_key: BTreeMap::new(),
            capacity,
            seq: 0,
        }
    }

    /// Records `letter`, replacing an older one for the same key.
    pub(crate) fn insert(&mut self, letter: DeadLetter) {
        self.seq += 1;
        self.by_key.insert(letter.key.clone(), (self.seq, letter));
        while self.by_key.len() > self.capacity {
            let oldest = self
                .by_key
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(k, _)| k.clone())
                .expect("over capacity means non-empty");
            self.by_key.remove(&oldest);
        }
    }

    /// Forgets `key`'s letter (it reconciled successfully).
    pub(crate) fn remove(&mut self, key: &str) {
        self.by_key.remove(key);
    }

    /// All letters, by key.
    pub(crate) fn list(&self) -> Vec<DeadLetter> {
        self.by_key.values().map(|(_, l)| l.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(key: &str, attempts: u32) -> DeadLetter {
        DeadLetter {
            key: key.into(),
            error: "boom".into(),
            class: ErrorClass::Terminal,
            attempts,
        }
    }

    #[test]
    fn letters_are_listed_by_key_replaced_per_key_and_bounded_oldest_first() {
        // Capacity 2: c, a, then a again (replaced, refreshed), then b evicts c.
        let mut d = DeadLetters::new(2);
        d.insert(letter("c", 1));
        d.insert(letter("a", 1));
        d.insert(letter("a", 2));
        assert_eq!(d.list(), [letter("a", 2), letter("c", 1)]);
        d.insert(letter("b", 1));
        assert_eq!(d.list(), [letter("a", 2), letter("b", 1)]);
        d.remove("a");
        assert_eq!(d.list(), [letter("b", 1)]);
    }
}
