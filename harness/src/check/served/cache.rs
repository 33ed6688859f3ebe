//! `no_event_loss` for an external client that reports its cache: a file of
//! `namespace/name resourceVersion` lines, compared with the server's ConfigMaps at the end
//! exactly as the simulation compares an informer's store.

use std::path::Path;

use super::{Found, ServedEvidence};
use crate::check::cache::differences;
use crate::trace::Held;

/// A cache file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CacheFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `key rv`.
    #[error("{path}:{line}: expected `namespace/name resourceVersion`, got {text:?}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Reads a cache file: one `namespace/name resourceVersion` per line (blank lines and `#`
/// comments skipped).
pub fn parse_cache(path: &Path) -> Result<Held, CacheFileError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CacheFileError::Read {
        path: p.clone(),
        source,
    })?;
    let mut held = Held::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let parsed = match (
            words.next(),
            words.next().map(str::parse::<u64>),
            words.next(),
        ) {
            (Some(key), Some(Ok(rv)), None) => Some((key.to_string(), rv)),
            _ => None,
        };
        let Some((key, rv)) = parsed else {
            return Err(CacheFileError::Line {
                path: p,
                line: i + 1,
                text: line.to_string(),
            });
        };
        held.insert(key, (rv, String::new()));
    }
    Ok(held)
}

pub(super) fn no_event_loss(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    let Some(cache) = ev.cache else { return };
    let server: Held = ev
        .objects
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let key = format!(
                "{}/{}",
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or("")
            );
            let rv = m["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (key, (rv, String::new()))
        })
        .collect();
    let end = ev.scenario.end();
    for (key, message) in differences("client cache", cache, &server) {
        found.add("client", &key, end, message);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::testkit::Served;
    use super::*;
    use crate::scenario::Checker;

    fn cm(name: &str, rv: u64) -> Arc<serde_json::Value> {
        Arc::new(
            json!({"metadata": {"namespace": "default", "name": name, "resourceVersion": rv.to_string()}}),
        )
    }

    fn held(pairs: &[(&str, u64)]) -> Held {
        pairs
            .iter()
            .map(|(k, rv)| (k.to_string(), (*rv, String::new())))
            .collect()
    }

    #[test]
    fn no_event_loss_passes_a_reported_cache_equal_to_the_server() {
        let mut c = Served::new("");
        c.objects = vec![cm("a", 5), cm("b", 7)];
        c.cache = Some(held(&[("default/a", 5), ("default/b", 7)]));
        assert!(c.messages(Checker::NoEventLoss).is_empty());
    }

    #[test]
    fn no_event_loss_finds_a_stale_version_and_a_missed_deletion() {
        let mut c = Served::new("");
        c.objects = vec![cm("a", 9)];
        c.cache = Some(held(&[("default/a", 5), ("default/gone", 3)]));
        assert_eq!(
            c.messages(Checker::NoEventLoss),
            [
                "client: client cache holds default/a rv=5, server has rv=9",
                "client: client cache still holds default/gone rv=3: its deletion never reached it",
            ]
        );
    }

    #[test]
    fn a_cache_file_is_key_rv_lines_and_a_bad_line_is_named() {
        let dir = std::env::temp_dir().join(format!("kube-chaos-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(&good, "# cache\ndefault/a 5\n\ndefault/b 7\n").unwrap();
        assert_eq!(
            parse_cache(&good).unwrap(),
            held(&[("default/a", 5), ("default/b", 7)])
        );
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "default/a 5\ndefault/b seven\n").unwrap();
        let err = parse_cache(&bad).unwrap_err().to_string();
        assert!(
            err.ends_with(
                r#"bad.txt:2: expected `namespace/name resourceVersion`, got "default/b seven""#
            ),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
