//! Query parameters of list and watch requests, validated as kube-apiserver does (bad syntax:
//! 400; bad combinations: 422 on `ListOptions`).

use std::collections::BTreeMap;

use super::error::ApiError;
use super::selector::{FieldSelector, LabelSelector};

/// The query parameters of one request.
#[derive(Debug, Default)]
pub(super) struct Query {
    raw: BTreeMap<String, String>,
}

impl Query {
    pub(super) fn parse(q: Option<&str>) -> Self {
        let raw = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { raw }
    }

    pub(super) fn str(&self, k: &str) -> Option<&str> {
        self.raw.get(k).map(String::as_str)
    }

    pub(super) fn bool(&self, k: &str) -> Result<bool, ApiError> {
        match self.str(k) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v:?}: expected true or false"
            ))),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.str(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {k}: {v:?}: expected an integer"
                    ))
                })
            })
            .transpose()
    }

    /// `resourceVersion`: `None` when unset or empty.
    pub(super) fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.str("resourceVersion") {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resource version {v:?}: expected an unsigned integer"
                ))
            }),
        }
    }

    pub(super) fn rv_match(&self) -> Result<RvMatch, ApiError> {
        match self.str("resourceVersionMatch") {
            None | Some("") => Ok(RvMatch::Unset),
            Some("NotOlderThan") => Ok(RvMatch::NotOlderThan),
            Some("Exact") => Ok(RvMatch::Exact),
            Some(v) => Err(list_options_invalid(
                "resourceVersionMatch",
                &format!("Unsupported value: {v:?}: supported values: \"Exact\", \"NotOlderThan\""),
            )),
        }
    }

    /// `timeoutSeconds`.
    pub(super) fn timeout_seconds(&self) -> Result<Option<u64>, ApiError> {
        match self.int("timeoutSeconds")? {
            Some(t) if t < 0 => Err(list_options_invalid(
                "timeoutSeconds",
                &format!("Invalid value: {t}: must be greater than or equal to 0"),
            )),
            t => Ok(t.map(|t| t as u64)),
        }
    }

    pub(super) fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.int("limit")? {
            Some(l) if l < 0 => Err(list_options_invalid(
                "limit",
                &format!("Invalid value: {l}: must be greater than or equal to 0"),
            )),
            Some(0) | None => Ok(None),
            Some(l) => Ok(Some(l as usize)),
        }
    }

    /// The label and field selectors, for objects of `kind`.
    pub(super) fn selectors(&self, kind: &str) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.str("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid labelSelector: {e}")))?;
        let fields = FieldSelector::parse_for_kind(self.str("fieldSelector").unwrap_or(""), kind)
            .map_err(|e| ApiError::bad_request(format!("invalid fieldSelector: {e}")))?;
        Ok((labels, fields))
    }
}

/// The options of a write (`CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`
/// as query parameters).
#[derive(Debug, Clone, Default)]
pub(super) struct WriteOptions {
    /// `dryRun=All`: everything but the commit.
    pub(super) dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields are a 400.
    pub(super) strict: bool,
    /// `fieldManager`.
    pub(super) field_manager: Option<String>,
    /// `force` (server-side apply takes over conflicting fields).
    pub(super) force: bool,
}

impl Query {
    /// The write options; an unknown `dryRun` or `fieldValidation` value is a 400.
    pub(super) fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let dry_run = match self.str("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "invalid dryRun value {v:?}: supported values: \"All\""
                )))
            }
        };
        let strict = match self.str("fieldValidation") {
            None | Some("" | "Ignore" | "Warn") => false,
            Some("Strict") => true,
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "invalid fieldValidation value {v:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
                )))
            }
        };
        Ok(WriteOptions {
            dry_run,
            strict,
            field_manager: self.str("fieldManager").map(str::to_string),
            force: self.bool("force")?,
        })
    }
}

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

/// 422 Invalid for a ListOptions field, as kube-apiserver's ListOptions validation answers.
pub(super) fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid("ListOptions.meta.k8s.io", "", field, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_syntax_is_400_and_bad_values_are_422() {
        let q = |s: &str| Query::parse(Some(s));
        assert_eq!(q("watch=maybe").bool("watch").unwrap_err().code, 400);
        assert_eq!(
            q("timeoutSeconds=x").timeout_seconds().unwrap_err().code,
            400
        );
        assert_eq!(
            q("timeoutSeconds=-1").timeout_seconds().unwrap_err().code,
            422
        );
        assert_eq!(q("resourceVersion=").resource_version().unwrap(), None);
        assert_eq!(q("limit=0").limit().unwrap(), None);
    }
}
