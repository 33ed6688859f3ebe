//! The informer subject: our informer with a recording handler (added at once, or late —
//! the bug-zoo variant that must still get synthetic adds), its store as the final view.

use k8s_openapi::api::core::v1::ConfigMap;
use kube_chaos::informer::{
    DeletedObject, HandlerFns, Informer, InformerConfig, InformerStats, InitialList,
};

use super::slow_consumer::SlowConsumer;
use super::{held, key_of, rv_of, Ctx};
use crate::scenario::FirstList;
use crate::trace::{Delivery, Record, Recorder};

fn informer_config(ctx: &Ctx) -> InformerConfig {
    InformerConfig {
        min_watch_timeout: ctx.config.min_watch_timeout.0,
        initial_list: match ctx.config.first_list {
            FirstList::Any => InitialList::Any,
            FirstList::Consistent => InitialList::Consistent,
        },
        label_selector: ctx.config.label_selector.clone(),
        seed: Some(ctx.seed),
        zoo: ctx.zoo,
        ..InformerConfig::default()
    }
}

pub(super) fn recording_handler(ctx: &Ctx) -> HandlerFns<ConfigMap> {
    let consumer = SlowConsumer::new(ctx);
    let (a, u, d) = (consumer.clone(), consumer.clone(), consumer);
    HandlerFns::new()
        .on_add(move |o, initial| {
            a.deliver(Record::Delivered {
                how: Delivery::Add { initial },
                key: key_of(&**o),
                rv: rv_of(&**o),
            });
        })
        .on_update(move |old, new| {
            let how = Delivery::Update {
                old_rv: rv_of(&**old),
            };
            u.deliver(Record::Delivered {
                how,
                key: key_of(&**new),
                rv: rv_of(&**new),
            });
        })
        .on_delete(move |o| {
            let tombstone = matches!(o, DeletedObject::Unknown(_));
            let obj = o.object();
            d.deliver(Record::Delivered {
                how: Delivery::Delete { tombstone },
                key: key_of(&**obj),
                rv: rv_of(&**obj),
            });
        })
}

/// Adds the informer's counters to the run's when the instance ends (crash or end of run).
struct StatsOnDrop(Informer<ConfigMap>, Recorder);

impl Drop for StatsOnDrop {
    fn drop(&mut self) {
        let InformerStats { relists, .. } = self.0.stats();
        self.1.count("relists", relists);
    }
}

/// `late_handler`: the recording handler is added once the informer has synced (it must
/// then get a synthetic add for every cached object).
pub(super) async fn informer(ctx: Ctx, late_handler: bool) {
    let informer = Informer::new(ctx.api(), informer_config(&ctx));
    if late_handler {
        let (i, ctx) = (informer.clone(), ctx.clone());
        tokio::spawn(async move {
            if i.wait_for_sync().await {
                i.add_handler(recording_handler(&ctx));
            }
        });
    } else {
        informer.add_handler(recording_handler(&ctx));
    }
    let store = informer.store();
    ctx.recorder.set_final_view(ctx.instance, move || {
        held(store.list().iter().map(|o| &**o))
    });
    let _stats = StatsOnDrop(informer.clone(), ctx.recorder.clone());
    informer.run().await;
    std::future::pending::<()>().await;
}
