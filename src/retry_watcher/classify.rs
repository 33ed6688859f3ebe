//! What a failure means for the watch: retry (after how long) or stop with which error —
//! client-go's `RetryWatcher` rules, with the differences the module doc lists.
//!
//! | where | terminal | retried |
//! |---|---|---|
//! | watch start (HTTP status) | 410, 401, 403, other 4xx, an undecodable body | 429, 5xx, connection errors |
//! | in-stream `ERROR` event | 410 | everything else: 5xx, 429, 4xx, unknown codes, an object that is not a `Status` (code 0) |
//! | a stream line that is not a watch event | always ([`Error::Decode`], once) | — |
//! | the stream failing (connection, body) | — | always |
//!
//! client-go retries every in-stream `ERROR` but 410 ("we retry by default"); a line that is
//! not a watch event would loop forever on the same bytes, so it stops.

use std::time::Duration;

use kube::core::Status;

use super::Error;

/// What to do after a failure.
pub(super) enum Next {
    /// Reconnect, not before `retry_after` from now (if any).
    Retry {
        retry_after: Option<Duration>,
        why: String,
    },
    /// Emit this error and end.
    Stop(Error),
}

fn retry_after(status: &Status) -> Option<Duration> {
    status
        .details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.into()))
}

pub(super) fn expired(status: &Status, rv: u64) -> Error {
    Error::Expired {
        resource_version: rv.to_string(),
        message: status.message.clone(),
    }
}

/// A watch request that failed before its stream began.
pub(super) fn start_error(e: kube::Error, rv: u64) -> Next {
    match e {
        kube::Error::Api(status) => start_status(&status, rv),
        kube::Error::SerdeError(_) => Next::Stop(Error::Decode(e)),
        other => Next::Retry {
            retry_after: None,
            why: other.to_string(),
        },
    }
}

/// The HTTP status a watch request was answered with.
pub(super) fn start_status(status: &Status, rv: u64) -> Next {
    match status.code {
        410 => Next::Stop(expired(status, rv)),
        401 => Next::Stop(Error::Unauthorized(status.message.clone())),
        403 => Next::Stop(Error::Forbidden(status.message.clone())),
        429 | 500..=599 => Next::Retry {
            retry_after: retry_after(status),
            why: format!("{} {}", status.code, status.message),
        },
        code => Next::Stop(Error::Status {
            code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        }),
    }
}

/// An in-stream `ERROR` event: only 410 ends the watch.
pub(super) fn in_stream(status: &Status, rv: u64) -> Next {
    match status.code {
        410 => Next::Stop(expired(status, rv)),
        code => Next::Retry {
            retry_after: retry_after(status),
            why: format!("in-stream ERROR {code} {}", status.message),
        },
    }
}

/// The stream failed. kube re-reads a line that is not a watch event as a `Status`, and any
/// JSON object reads as one with code 0: that is an undecodable event, not a server's
/// answer.
pub(super) fn stream_error(e: kube::Error, rv: u64) -> Next {
    match e {
        kube::Error::SerdeError(_) => Next::Stop(Error::Decode(e)),
        kube::Error::Api(ref status) if status.code == 0 => Next::Stop(Error::Decode(e)),
        kube::Error::Api(status) => in_stream(&status, rv),
        other => Next::Retry {
            retry_after: None,
            why: other.to_string(),
        },
    }
}

/// The log line of a terminal error: the two that point at a bug or a relist get their own
/// message and fields.
pub(super) fn log_terminal(e: &Error, last_rv: u64) {
    match e {
        Error::Expired {
            resource_version,
            message,
        } => tracing::warn!(
            rv = %resource_version,
            status = %message,
            "resourceVersion expired (410): the watch cannot resume; list again and start a new watcher"
        ),
        Error::HistoricalReplay {
            event,
            name,
            got,
            last,
        } => tracing::error!(
            event,
            %name,
            rv = got,
            last_rv = last,
            "historical replay: the watch delivered an event not newer than the last one; does the watch function pass its WatchOptions through?"
        ),
        other => tracing::warn!(rv = last_rv, error = %other, "retry watcher stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry: u32) -> Status {
        serde_json::from_value(serde_json::json!({
            "code": code, "message": "m", "reason": "R", "details": {"retryAfterSeconds": retry}
        }))
        .expect("a Status")
    }

    #[test]
    fn at_watch_start_410_401_403_and_other_4xx_stop_and_429_5xx_retry() {
        assert!(
            matches!(start_status(&status(410, 0), 7), Next::Stop(Error::Expired { resource_version, .. }) if resource_version == "7")
        );
        assert!(matches!(
            start_status(&status(403, 0), 7),
            Next::Stop(Error::Forbidden(_))
        ));
        assert!(matches!(
            start_status(&status(401, 0), 7),
            Next::Stop(Error::Unauthorized(_))
        ));
        assert!(matches!(
            start_status(&status(404, 0), 7),
            Next::Stop(Error::Status { code: 404, .. })
        ));
        assert!(
            matches!(start_status(&status(429, 5), 7), Next::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(5))
        );
        assert!(matches!(
            start_status(&status(503, 0), 7),
            Next::Retry {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn in_stream_every_error_but_410_is_retried_honouring_retry_after() {
        assert!(matches!(
            in_stream(&status(410, 0), 7),
            Next::Stop(Error::Expired { .. })
        ));
        for code in [0, 400, 401, 403, 404, 422, 429, 500, 504, 999] {
            assert!(
                matches!(
                    in_stream(&status(code, 0), 7),
                    Next::Retry {
                        retry_after: None,
                        ..
                    }
                ),
                "in-stream {code}"
            );
        }
        assert!(
            matches!(in_stream(&status(500, 3), 7), Next::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(3))
        );
    }

    #[test]
    fn a_line_that_is_not_a_watch_event_is_a_decode_error_not_a_status() {
        let not_an_event = kube::Error::Api(status(0, 0).boxed());
        assert!(matches!(
            stream_error(not_an_event, 7),
            Next::Stop(Error::Decode(_))
        ));
        let server_said = kube::Error::Api(status(503, 0).boxed());
        assert!(matches!(stream_error(server_said, 7), Next::Retry { .. }));
    }
}
