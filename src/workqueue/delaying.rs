//! Items waiting for their time (client-go's delaying queue heap), synchronous: ordered by
//! ready time then by insertion, one entry per item, and a second `add_after` of a waiting
//! item keeps the earlier time.

use std::collections::BTreeMap;

use tokio::time::Instant;

/// Waiting items by ready time.
#[derive(Debug)]
pub(crate) struct Delayed<T> {
    by_time: BTreeMap<(Instant, u64), T>,
    by_item: BTreeMap<T, (Instant, u64)>,
    seq: u64,
}

impl<T> Default for Delayed<T> {
    fn default() -> Self {
        Self {
            by_time: BTreeMap::new(),
            by_item: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T: Ord + Clone> Delayed<T> {
    /// Makes `item` ready at `at`, unless it already waits for an earlier (or equal) time.
    pub(crate) fn insert(&mut self, item: T, at: Instant) {
        if let Some(&(old_at, old_seq)) = self.by_item.get(&item) {
            if old_at <= at {
                return;
            }
            self.by_time.remove(&(old_at, old_seq));
        }
        self.seq += 1;
        let slot = (at, self.seq);
        self.by_time.insert(slot, item.clone());
        self.by_item.insert(item, slot);
    }

    /// Makes `item` ready at `at`, whatever time it waited for before (the bug zoo's
    /// `AddAfterLatestWins`: a later time replaces an earlier one).
    pub(crate) fn replace(&mut self, item: T, at: Instant) {
        self.remove(&item);
        self.insert(item, at);
    }

    /// Stops `item` from waiting (if it does).
    pub(crate) fn remove(&mut self, item: &T) {
        if let Some(slot) = self.by_item.remove(item) {
            self.by_time.remove(&slot);
        }
    }

    /// The earliest item ready at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (&slot, _) = self.by_time.first_key_value()?;
        if slot.0 > now {
            return None;
        }
        let item = self.by_time.remove(&slot).expect("first entry exists");
        self.by_item.remove(&item);
        Some(item)
    }

    /// When the earliest item becomes ready.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.by_time.first_key_value().map(|((at, _), _)| *at)
    }

    /// How many items wait.
    pub(crate) fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    /// Drops every waiting item.
    pub(crate) fn clear(&mut self) {
        self.by_time.clear();
        self.by_item.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn items_come_out_by_time_then_insertion_and_the_earliest_time_wins() {
        // `b` is re-added later (ignored) then earlier (moved up); ties keep insertion order.
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Delayed::default();
        d.insert("a", at(30));
        d.insert("b", at(20));
        d.insert("c", at(20));
        d.insert("b", at(50));
        assert_eq!(d.next_due(), Some(at(20)));
        d.insert("a", at(10));
        assert_eq!(d.len(), 3);
        assert_eq!(d.pop_due(at(5)), None);
        let order: Vec<_> = std::iter::from_fn(|| d.pop_due(at(100))).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(d.next_due(), None);
    }

    #[test]
    fn replace_moves_a_waiting_item_to_a_later_time() {
        // The zoo's latest-wins insert: `a` asked for at 10 ms, then at 50 ms, waits for 50.
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Delayed::default();
        d.insert("a", at(10));
        d.replace("a", at(50));
        assert_eq!((d.len(), d.next_due()), (1, Some(at(50))));
        assert_eq!(d.pop_due(at(20)), None);
        assert_eq!(d.pop_due(at(50)), Some("a"));
    }
}
