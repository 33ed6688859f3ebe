//! Classifying reconcile errors: a retryable error is requeued through the rate limiter until
//! `max_retries`, a terminal one is dead-lettered at once.

use std::fmt;

/// How the controller treats a reconcile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// Worth another attempt (conflicts, throttling, server errors, network trouble).
    Retryable,
    /// Will fail the same way again (invalid object, forbidden): dead-letter at once.
    Terminal,
}

impl ErrorClass {
    /// `retryable` or `terminal` (the metrics label).
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Terminal => "terminal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by reconcile error types to say whether retrying can help.
pub trait Classify {
    /// This error's class.
    fn class(&self) -> ErrorClass;
}

/// API errors: 409 Conflict, 429, 5xx, 404 (a stale cache) and transport errors are
/// retryable; other 4xx (invalid, forbidden, unauthorised) and undecodable bodies are terminal.
impl Classify for kube::Error {
    fn class(&self) -> ErrorClass {
        match self {
            kube::Error::Api(s) => match s.code {
                404 | 409 | 429 | 500..=599 => ErrorClass::Retryable,
                400..=499 => ErrorClass::Terminal,
                _ => ErrorClass::Retryable,
            },
            kube::Error::SerdeError(_) => ErrorClass::Terminal,
            _ => ErrorClass::Retryable,
        }
    }
}

/// A failed reconcile, type-erased: its class and its message (with sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) class: ErrorClass,
    pub(crate) message: String,
}

impl Failure {
    /// From a typed error: its class and its display chain.
    pub(crate) fn from_error<E: Classify + std::error::Error>(e: &E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self {
            class: e.class(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("m", "Reason")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn api_errors_classify_by_status_code() {
        // One code per row of the rule.
        for (code, class) in [
            (404, ErrorClass::Retryable),
            (409, ErrorClass::Retryable),
            (429, ErrorClass::Retryable),
            (503, ErrorClass::Retryable),
            (400, ErrorClass::Terminal),
            (403, ErrorClass::Terminal),
            (422, ErrorClass::Terminal),
        ] {
            assert_eq!(api(code).class(), class, "{code}");
        }
    }
}
