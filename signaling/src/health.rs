//! Health endpoints for load balancers and service managers: `/healthz` says the process
//! serves, `/readyz` that it takes sessions. Neither needs a login, and both stay cheap.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP. Touches nothing else (not the database).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "`ok`", content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// This server takes sessions: it is not shutting down, and its database answers a
/// trivial query within 2 s.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`ready`; on a standby that forwards to the serving \
            server, `ready: standby, forwarding to <server>, which serves this site`",
            content_type = "text/plain"),
        (status = 503, description = "`not ready: <reason>` (shutting down, the database \
            does not answer; on a standby that cannot forward, `standby: <why>`, e.g. \
            `standby: cannot forward to <server>, which serves this site: <why>`, \
            `standby: looking for the server that serves this site`, `standby: taking the \
            site over`, `standby: cannot reach PostgreSQL: <why>`)",
            content_type = "text/plain"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.telemetry.is_draining() {
        return not_ready("shutting down");
    }
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!("readyz: the database failed a trivial query: {e}");
            not_ready("the database does not answer")
        }
        Err(_) => not_ready("the database did not answer in time"),
    }
}

fn not_ready(why: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
        format!("not ready: {why}\n"),
    )
        .into_response()
}
