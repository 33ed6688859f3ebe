//! kube-runtime's `watcher` + `reflector` as a subject (seeded backoff), its events told
//! in handler terms.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube_chaos::backoff::Backoff;

use super::{held, key_of, rv_of, Ctx};
use crate::scenario::FirstList;
use crate::trace::{Delivery, ErrorKind, Record};

/// kube-runtime's watcher events, told in handler terms: what a consumer of the stream sees.
/// Objects that vanish during a relist get no event (kube-runtime's `InitDone` only swaps the
/// reflector's store), so none is recorded.
struct RuntimeView {
    ctx: Ctx,
    known: BTreeMap<String, u64>,
    lists: u64,
}

impl RuntimeView {
    fn apply(&mut self, o: &ConfigMap, initial: bool) {
        let (key, rv) = (key_of(o), rv_of(o));
        let how = match self.known.insert(key.clone(), rv) {
            Some(old_rv) => Delivery::Update { old_rv },
            None => Delivery::Add { initial },
        };
        self.ctx.record(Record::Delivered { how, key, rv });
    }

    fn event(&mut self, ev: watcher::Event<ConfigMap>) {
        match ev {
            watcher::Event::Init => {
                self.lists += 1;
            }
            watcher::Event::InitApply(o) => self.apply(&o, self.lists == 1),
            // kube-runtime swaps the reflector's store here; objects missing from the new
            // list vanish from it without an event, so the consumer keeps believing in them.
            watcher::Event::InitDone => {}
            watcher::Event::Apply(o) => self.apply(&o, false),
            watcher::Event::Delete(o) => {
                self.known.remove(&key_of(&o));
                let how = Delivery::Delete { tombstone: false };
                self.ctx.record(Record::Delivered {
                    how,
                    key: key_of(&o),
                    rv: rv_of(&o),
                });
            }
        }
    }
}

impl Drop for RuntimeView {
    fn drop(&mut self) {
        self.ctx
            .recorder
            .count("relists", self.lists.saturating_sub(1));
    }
}

pub(super) async fn run(ctx: Ctx) {
    let (reader, writer) = reflector::store::<ConfigMap>();
    let timeout = u32::try_from(ctx.config.watch_timeout.0.as_secs()).unwrap_or(u32::MAX);
    let mut config = watcher::Config::default().timeout(timeout);
    if let Some(l) = &ctx.config.label_selector {
        config = config.labels(l);
    }
    if ctx.config.first_list == FirstList::Any {
        config = config.any_semantic();
    }
    let stream = watcher(ctx.api(), config).backoff(Backoff::reflector(Some(ctx.seed)));
    let mut stream = reflector(writer, stream).boxed();
    ctx.recorder.set_final_view(ctx.instance, move || {
        held(reader.state().iter().map(|o| &**o))
    });
    let mut view = RuntimeView {
        ctx: ctx.clone(),
        known: BTreeMap::new(),
        lists: 0,
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => view.event(ev),
            Err(e) => ctx.record(Record::Error {
                message: e.to_string(),
                kind: ErrorKind::Other,
            }),
        }
    }
}
