//! How long the runner's next step is: the scenario's `tick`, or — while no message is in
//! flight on any link and nothing of the runner's own is due — up to `idle_tick`.
//!
//! Within one step every host's paused tokio clock still fires each timer at its own
//! instant (a backoff, a watch timeout, a bookmark), and trace and server timestamps are
//! read from that clock, so a long step changes nothing that stays inside one host. What it
//! changes: a message sent during a long step (the first request after a quiet spell) is
//! delivered at the step's end instead of up to `idle_tick − tick` earlier — a latency
//! spike, never a message lost or reordered on its link. A step always ends on the `tick`
//! grid, so faults and writes land at exactly the instants the fine steps would reach.

use std::time::Duration;

/// The step policy of one run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    tick: Duration,
    idle: Duration,
}

impl Pace {
    /// `idle_tick` (a multiple of `tick`, validated) or `tick` when the scenario has none.
    pub(super) fn new(tick: Duration, idle: Option<Duration>) -> Self {
        Self {
            tick,
            idle: idle.unwrap_or(tick).max(tick),
        }
    }

    /// Sets the length of the step about to be taken at `now`, with the runner's next own
    /// event at `due` (a fault, a write, a restart, a sample, the end).
    pub(super) fn set(&self, sim: &mut turmoil::Sim<'_>, now: Duration, due: Duration) {
        let step = match self.idle > self.tick && !in_flight(sim) {
            true => self.step(now, due),
            false => self.tick,
        };
        if sim.tick() != step {
            sim.set_tick(step);
        }
    }

    /// The longest step from `now` that ends on the tick grid no later than the first grid
    /// instant at or after `due`, at most `idle` and at least `tick`.
    fn step(&self, now: Duration, due: Duration) -> Duration {
        let tick = self.tick.as_nanos();
        let until = due.saturating_sub(now).as_nanos();
        let ticks = until.div_ceil(tick).clamp(1, self.idle.as_nanos() / tick);
        self.tick * u32::try_from(ticks).unwrap_or(u32::MAX)
    }
}

/// Whether any link holds a message not yet delivered (in transit or held by a fault).
fn in_flight(sim: &turmoil::Sim<'_>) -> bool {
    let mut any = false;
    sim.links(|links| {
        for mut link in links {
            if link.next().is_some() {
                any = true;
                break;
            }
        }
    });
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_long_step_ends_on_the_tick_grid_at_the_first_instant_the_fine_steps_would_reach() {
        let pace = Pace::new(ms(20), Some(ms(1000)));
        // Due at 130 ms: fine steps from 100 ms act at 140 ms, so the long step ends there.
        assert_eq!(pace.step(ms(100), ms(130)), ms(40));
        // Due exactly on the grid.
        assert_eq!(pace.step(ms(100), ms(160)), ms(60));
        // Far away: capped at idle_tick.
        assert_eq!(pace.step(ms(0), ms(60_000)), ms(1000));
        // Already due (or due now): one fine step.
        assert_eq!(pace.step(ms(100), ms(100)), ms(20));
        assert_eq!(pace.step(ms(100), ms(50)), ms(20));
    }

    #[test]
    fn without_idle_tick_every_step_is_the_tick() {
        let pace = Pace::new(ms(20), None);
        assert_eq!(pace.idle, ms(20));
        assert_eq!(pace.step(ms(0), ms(60_000)), ms(20));
    }
}
