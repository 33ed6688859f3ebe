//! client-go's workqueue guarantees, with exact timing under paused tokio time.

mod delaying;
mod metrics;
mod queue;

use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets spawned tasks run without moving the paused clock.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Time since `t0`.
pub fn since(t0: Instant) -> Duration {
    Instant::now() - t0
}
