//! `/metrics`, `/healthz` and `/readyz` for a controller, as an axum router (feature `axum`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Controller;

/// A router serving the controller's metrics (OpenMetrics text), liveness (`/healthz`) and
/// readiness (`/readyz`): 200 `ok`, or 503 with one problem per line.
pub fn router(controller: Controller) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(controller)
}

async fn metrics(State(c): State<Controller>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], c.metrics_text()).into_response()
}

async fn healthz(State(c): State<Controller>) -> Response {
    probe(c.liveness())
}

async fn readyz(State(c): State<Controller>) -> Response {
    probe(c.readiness())
}

fn probe(result: Result<(), Vec<String>>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()).into_response(),
        Err(problems) => {
            let body: String = problems.iter().map(|p| format!("{p}\n")).collect();
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}
