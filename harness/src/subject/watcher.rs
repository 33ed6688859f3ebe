//! RetryWatcher subjects: a consistent list for the start RV, then every event (and error)
//! the watcher delivers, recorded.

use std::time::Duration;

use futures::StreamExt;
use kube::api::ListParams;
use kube_chaos::retry_watcher::{self, RetryWatcher, RetryWatcherConfig};

use super::{key_of, rv_of, Ctx};
use crate::testing::ignoring_options;
use crate::trace::{Delivery, ErrorKind, Record};

/// Lists until it works (the subject's start RV), retrying every second.
async fn start_rv(ctx: &Ctx) -> String {
    let lp = ListParams {
        label_selector: ctx.config.label_selector.clone(),
        ..ListParams::default()
    };
    loop {
        match ctx.api().list_metadata(&lp).await {
            Ok(list) => {
                let rv = list.metadata.resource_version.unwrap_or_default();
                let count = list.items.len();
                ctx.record(Record::Listed {
                    rv: rv.parse().unwrap_or(0),
                    count,
                });
                return rv;
            }
            Err(e) => ctx.record(Record::Error {
                message: e.to_string(),
                kind: ErrorKind::Other,
            }),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn error_kind(e: &retry_watcher::Error) -> ErrorKind {
    match e {
        retry_watcher::Error::Expired { .. } => ErrorKind::Expired,
        retry_watcher::Error::HistoricalReplay { .. } => ErrorKind::HistoricalReplay,
        _ => ErrorKind::Other,
    }
}

/// `ignore_options`: the bug-zoo variant whose watch function drops the options it is given.
pub(super) async fn retry_watcher(ctx: Ctx, ignore_options: bool) {
    let rv = start_rv(&ctx).await;
    let config = RetryWatcherConfig {
        timeout: ctx.config.watch_timeout.0,
        label_selector: ctx.config.label_selector.clone(),
        seed: Some(ctx.seed),
        zoo: ctx.zoo,
        ..RetryWatcherConfig::default()
    };
    let watcher = if ignore_options {
        RetryWatcher::new(&rv, ignoring_options(ctx.api()), config)
    } else {
        RetryWatcher::from_api(ctx.api(), &rv, config)
    };
    let mut watcher = watcher.expect("the start RV comes from a list");
    while let Some(item) = watcher.next().await {
        match item {
            Ok(ev) => {
                let o = ev.object();
                ctx.record(Record::Delivered {
                    how: Delivery::Event(ev.kind()),
                    key: key_of(o),
                    rv: rv_of(o),
                });
                // A slow consumer: the stream is not read while the event is handled.
                let delay = ctx.controls.handler_delay();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            Err(e) => {
                ctx.record(Record::Error {
                    message: e.to_string(),
                    kind: error_kind(&e),
                });
            }
        }
    }
    std::future::pending::<()>().await;
}
