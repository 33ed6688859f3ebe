//! The registry: ConfigMap `app-registry` in each namespace holds one key per live App (its
//! uid as the value). Written with a conflict-checked update (the read's resourceVersion is
//! the precondition), re-read and retried on 409 as client-go's `retry.RetryOnConflict`
//! does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::ResourceExt;

use crate::app::App;
use crate::error::Error;
use crate::reconcile::Ctx;
use crate::variant::Variant;

/// The registry ConfigMap's name.
pub const REGISTRY: &str = "app-registry";
/// Attempts of one registry edit before a reconcile gives up with [`Error::Conflict`].
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// Adds the App's key (its uid).
pub(crate) async fn register(app: &App, ctx: &Ctx) -> Result<(), Error> {
    edit(app, ctx, app.uid()).await
}

/// Removes the App's key.
pub(crate) async fn deregister(app: &App, ctx: &Ctx) -> Result<(), Error> {
    edit(app, ctx, None).await
}

/// Sets (`Some`) or removes (`None`) `data[name]`; whether that changed anything.
fn edited(data: &mut BTreeMap<String, String>, name: &str, value: &Option<String>) -> bool {
    match value {
        Some(v) => data.insert(name.to_string(), v.clone()).as_ref() != Some(v),
        None => data.remove(name).is_some(),
    }
}

fn registry(namespace: &str, data: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(REGISTRY.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

async fn edit(app: &App, ctx: &Ctx, value: Option<String>) -> Result<(), Error> {
    let namespace = app.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = app.name_any();
    if ctx.variant == Variant::StaleCache {
        return stale_edit(&api, &namespace, &name, &value).await;
    }
    for attempt in 1..=CONFLICT_ATTEMPTS {
        match try_edit(&api, &namespace, &name, &value).await {
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if ctx.variant == Variant::NoConflictRetry {
                    // The bug: "someone else wrote it", so the work is dropped as done.
                    tracing::info!(app = %name, "registry conflict: assuming it is handled");
                    return Ok(());
                }
                tracing::debug!(app = %name, attempt, "registry conflict: re-reading");
            }
            other => return Ok(other?),
        }
    }
    Err(Error::Conflict {
        namespace,
        attempts: CONFLICT_ATTEMPTS,
    })
}

/// One read-modify-write: a consistent read, then a create (409 if someone else created
/// it first) or an update under the read's resourceVersion (409 if it changed since).
async fn try_edit(
    api: &Api<ConfigMap>,
    namespace: &str,
    name: &str,
    value: &Option<String>,
) -> kube::Result<()> {
    match api.get_opt(REGISTRY).await? {
        None if value.is_none() => {}
        None => {
            let mut data = BTreeMap::new();
            edited(&mut data, name, value);
            api.create(&PostParams::default(), &registry(namespace, data))
                .await?;
        }
        Some(mut cm) => {
            if edited(cm.data.get_or_insert_default(), name, value) {
                api.replace(REGISTRY, &PostParams::default(), &cm).await?;
            }
        }
    }
    Ok(())
}

/// `Variant::StaleCache`: the registry read from the watch cache (`resourceVersion=0`),
/// written back whole as a new object, with no resourceVersion to conflict on.
async fn stale_edit(
    api: &Api<ConfigMap>,
    namespace: &str,
    name: &str,
    value: &Option<String>,
) -> Result<(), Error> {
    let by_name = format!("metadata.name={REGISTRY}");
    let cached = api
        .list(&ListParams::default().fields(&by_name).match_any())
        .await?;
    let exists = !cached.items.is_empty();
    let mut data = cached
        .items
        .into_iter()
        .find_map(|c| c.data)
        .unwrap_or_default();
    if !edited(&mut data, name, value) {
        return Ok(());
    }
    tracing::debug!(app = %name, ?data, "registry written from the cached copy");
    let cm = registry(namespace, data);
    match exists {
        true => api.replace(REGISTRY, &PostParams::default(), &cm).await?,
        false => api.create(&PostParams::default(), &cm).await?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_reports_whether_it_changed_the_registry() {
        // Setting a new or different value and removing a present key change the map;
        // setting the same value and removing an absent key do not.
        let mut data = BTreeMap::new();
        assert!(edited(&mut data, "a", &Some("u1".into())));
        assert!(!edited(&mut data, "a", &Some("u1".into())));
        assert!(edited(&mut data, "a", &Some("u2".into())));
        assert!(edited(&mut data, "a", &None));
        assert!(!edited(&mut data, "a", &None));
        assert!(data.is_empty());
    }
}
