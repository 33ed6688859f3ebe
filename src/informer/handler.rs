//! Event handlers and their delivery: each handler has its own unbounded queue and task, so a
//! slow handler never holds up the reflector or the other handlers (client-go's
//! `processorListener`), and every handler sees notifications in store order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::store::{DeletedObject, Notification};

/// Receives an informer's notifications, in the order the store changed.
pub trait ResourceEventHandler<K>: Send + Sync + 'static {
    /// An object appeared. `is_in_initial_list` is true for the informer's first list (and
    /// for the synthetic adds a handler registered late receives).
    fn on_add(&self, obj: &Arc<K>, is_in_initial_list: bool) {
        let _ = (obj, is_in_initial_list);
    }
    /// An object changed (also on relists and resyncs, with possibly equal objects).
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        let _ = (old, new);
    }
    /// An object was deleted, or vanished between two lists (a tombstone).
    fn on_delete(&self, obj: &DeletedObject<K>) {
        let _ = obj;
    }
}

type AddFn<K> = Box<dyn Fn(&Arc<K>, bool) + Send + Sync>;
type UpdateFn<K> = Box<dyn Fn(&Arc<K>, &Arc<K>) + Send + Sync>;
type DeleteFn<K> = Box<dyn Fn(&DeletedObject<K>) + Send + Sync>;

/// A handler from closures: `HandlerFns::new().on_add(|o, initial| ...)`.
pub struct HandlerFns<K> {
    add: Option<AddFn<K>>,
    update: Option<UpdateFn<K>>,
    delete: Option<DeleteFn<K>>,
}

impl<K> Default for HandlerFns<K> {
    fn default() -> Self {
        Self {
            add: None,
            update: None,
            delete: None,
        }
    }
}

impl<K> HandlerFns<K> {
    /// A handler that ignores everything until given closures.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the add closure.
    pub fn on_add(mut self, f: impl Fn(&Arc<K>, bool) + Send + Sync + 'static) -> Self {
        self.add = Some(Box::new(f));
        self
    }
    /// Sets the update closure.
    pub fn on_update(mut self, f: impl Fn(&Arc<K>, &Arc<K>) + Send + Sync + 'static) -> Self {
        self.update = Some(Box::new(f));
        self
    }
    /// Sets the delete closure.
    pub fn on_delete(mut self, f: impl Fn(&DeletedObject<K>) + Send + Sync + 'static) -> Self {
        self.delete = Some(Box::new(f));
        self
    }
}

impl<K: Send + Sync + 'static> ResourceEventHandler<K> for HandlerFns<K> {
    fn on_add(&self, obj: &Arc<K>, initial: bool) {
        if let Some(f) = &self.add {
            f(obj, initial);
        }
    }
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        if let Some(f) = &self.update {
            f(old, new);
        }
    }
    fn on_delete(&self, obj: &DeletedObject<K>) {
        if let Some(f) = &self.delete {
            f(obj);
        }
    }
}

/// What travels down a handler's queue.
pub(crate) enum Message<K> {
    Notify(Notification<K>),
    /// Everything before this was the handler's initial state.
    Synced,
}

/// A registered handler, seen from outside.
#[derive(Debug, Clone)]
pub struct HandlerRegistration {
    synced: Arc<AtomicBool>,
}

impl HandlerRegistration {
    /// Whether this handler has processed its initial state (the informer's first list, or
    /// the synthetic adds it got when registered late).
    pub fn has_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

struct Listener<K> {
    tx: mpsc::UnboundedSender<Message<K>>,
}

/// The registered handlers' queues.
pub(crate) struct Processor<K> {
    listeners: Mutex<Vec<Listener<K>>>,
}

impl<K> Default for Processor<K> {
    fn default() -> Self {
        Self {
            listeners: Mutex::new(Vec::new()),
        }
    }
}

impl<K: Send + Sync + 'static> Processor<K> {
    /// Registers `handler`: `initial` (its synthetic state) is queued first, then `Synced` if
    /// `synced`. Spawns the handler's task on the current tokio runtime.
    pub(crate) fn add(
        &self,
        handler: Box<dyn ResourceEventHandler<K>>,
        initial: Vec<Notification<K>>,
        synced: bool,
    ) -> HandlerRegistration {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message<K>>();
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                match m {
                    Message::Notify(Notification::Add { obj, initial }) => {
                        handler.on_add(&obj, initial)
                    }
                    Message::Notify(Notification::Update { old, new }) => {
                        handler.on_update(&old, &new)
                    }
                    Message::Notify(Notification::Delete(d)) => handler.on_delete(&d),
                    Message::Synced => f.store(true, Ordering::SeqCst),
                }
            }
        });
        for n in initial {
            let _ = tx.send(Message::Notify(n));
        }
        if synced {
            let _ = tx.send(Message::Synced);
        }
        self.listeners
            .lock()
            .expect("listeners lock")
            .push(Listener { tx });
        HandlerRegistration { synced: flag }
    }

    /// Queues `notes` for every handler.
    pub(crate) fn distribute(&self, notes: &[Notification<K>]) {
        let listeners = self.listeners.lock().expect("listeners lock");
        for l in listeners.iter() {
            for n in notes {
                let _ = l.tx.send(Message::Notify(n.clone()));
            }
        }
    }

    /// Tells every handler its initial state is complete.
    pub(crate) fn synced(&self) {
        for l in self.listeners.lock().expect("listeners lock").iter() {
            let _ = l.tx.send(Message::Synced);
        }
    }

    /// Drops the queues: each handler task ends after draining what it has.
    pub(crate) fn close(&self) {
        self.listeners.lock().expect("listeners lock").clear();
    }
}
