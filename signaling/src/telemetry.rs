//! Operations metrics, served in Prometheus's text format at `/metrics`.
//!
//! Each server has its own recorder rather than the process-global one: tests run many
//! servers in one process, and a global recorder would mix their counts. Counters (messages,
//! refusals) and the store's latency are recorded as they happen; gauges (live sessions,
//! participants, connections, invitations) are read from the server's own state at each
//! scrape, so they cannot drift from it.
//!
//! `/metrics` is protected: on the main port it needs `metrics_token` as a bearer token
//! (without one configured it answers 404); `metrics_bind` serves it on a separate address
//! instead (with the token too when one is set).
//!
//! The embedded TURN service's use (`tandem_turn_*`) is read from `turn_server.rs`'s
//! counters at each scrape, like the gauges.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Gauge, counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sha2::{Digest, Sha256};
use tandem_protocol::{Admission, ErrorCode, Role};

use crate::AppState;

/// Metric names, as documented in docs/self-hosting.md.
pub mod names {
    pub const BUILD_INFO: &str = "tandem_build_info";
    pub const LIVE_SESSIONS: &str = "tandem_live_sessions";
    pub const PARTICIPANTS: &str = "tandem_participants";
    pub const WEBSOCKET_CONNECTIONS: &str = "tandem_websocket_connections";
    pub const WEBSOCKET_MESSAGES: &str = "tandem_websocket_messages_received_total";
    pub const WEBSOCKET_REFUSALS: &str = "tandem_websocket_refusals_total";
    pub const TCP_CONNECTIONS: &str = "tandem_tcp_connections";
    pub const TCP_REFUSED: &str = "tandem_tcp_connections_refused_total";
    pub const INVITATIONS: &str = "tandem_invitations";
    pub const STORE_SECONDS: &str = "tandem_store_seconds";
    pub const LOCK_TAKEN: &str = "tandem_registry_lock_taken_total";
    pub const LOCK_HELD: &str = "tandem_registry_lock_held_microseconds_total";
    pub const LOCK_WAITED: &str = "tandem_registry_lock_waited_microseconds_total";
    pub const REDIS_UP: &str = "tandem_redis_up";
    pub const REDIS_ERRORS: &str = "tandem_redis_errors_total";
    pub const SITE_SERVING: &str = "tandem_site_serving";
    pub const TURN_ALLOCATIONS: &str = "tandem_turn_allocations";
    pub const TURN_ALLOCATIONS_REFUSED: &str = "tandem_turn_allocations_refused_total";
    pub const TURN_RELAYED_BYTES: &str = "tandem_turn_relayed_bytes_total";
    pub const TURN_DROPPED_PACKETS: &str = "tandem_turn_dropped_packets_total";
    pub const TURN_REQUESTS_OVER_RATE: &str = "tandem_turn_requests_over_rate_total";
}

/// Store calls take well under a millisecond on a quiet SQLite file; the upper buckets
/// catch a disk that stalls.
const STORE_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The participants' roles as labelled; customers in the waiting room (C2) are `waiting`.
const ROLES: [&str; 7] = [
    "primary_rep",
    "assistant",
    "observer",
    "customer",
    "agent",
    "recorder",
    "waiting",
];

/// Invitation states always present in the output, so that a state at zero shows as 0.
const INVITATION_STATES: [&str; 3] = ["sending", "sent", "failed"];

/// One server's metrics.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    websockets: Gauge,
    /// The same count, readable: a stopping server waits for it to reach zero.
    open_websockets: Arc<AtomicUsize>,
    /// Set once the server stops taking connections: `/readyz` then answers 503.
    draining: AtomicBool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(names::STORE_SECONDS.into()), STORE_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let websockets = with_local_recorder(&recorder, || {
            describe();
            gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            gauge!(names::WEBSOCKET_CONNECTIONS)
        });
        let telemetry = Arc::new(Self {
            recorder,
            handle,
            websockets,
            open_websockets: Arc::default(),
            draining: AtomicBool::new(false),
        });
        spawn_upkeep(Arc::downgrade(&telemetry));
        telemetry
    }

    /// A WebSocket connection opened; it counts until the guard is dropped.
    pub fn websocket_opened(&self) -> WebSocketOpen {
        self.websockets.increment(1.0);
        self.open_websockets.fetch_add(1, Ordering::Relaxed);
        WebSocketOpen {
            gauge: self.websockets.clone(),
            open: self.open_websockets.clone(),
        }
    }

    /// Wait until every WebSocket connection has ended (its close frame written), or
    /// `within` has passed; whether they all ended.
    pub async fn websockets_closed(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.open_websockets.load(Ordering::Relaxed) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// A message arrived on a WebSocket: its `type`, or `invalid` or `binary` when it
    /// could not be decoded.
    pub fn message_received(&self, kind: &'static str) {
        with_local_recorder(&self.recorder, || {
            counter!(names::WEBSOCKET_MESSAGES, "type" => kind).increment(1);
        });
    }

    /// An `error` reply went to a client.
    pub fn refused(&self, code: ErrorCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        with_local_recorder(&self.recorder, || {
            counter!(names::WEBSOCKET_REFUSALS, "code" => code).increment(1);
        });
    }

    /// A store call took `took`.
    pub fn store_call(&self, op: &'static str, took: Duration) {
        with_local_recorder(&self.recorder, || {
            histogram!(names::STORE_SECONDS, "op" => op).record(took);
        });
    }

    /// The server stops taking connections.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Read the gauges from the server's state, then render everything.
    async fn render(&self, state: &AppState) -> String {
        let invitations = match state.store.invitation_counts().await {
            Ok(counts) => Some(counts),
            Err(e) => {
                tracing::warn!("metrics: could not count invitations: {e}");
                None
            }
        };
        let sessions = state.registry.live_count();
        let participants = state.registry.participant_counts();
        let caps = &state.caps;
        let lock = state.registry.lock_use();
        let turn = state.turn.as_ref().map(|turn| turn.usage());
        with_local_recorder(&self.recorder, || {
            if let Some(turn) = turn {
                gauge!(names::TURN_ALLOCATIONS).set(turn.allocations as f64);
                counter!(names::TURN_ALLOCATIONS_REFUSED).absolute(turn.allocations_refused);
                counter!(names::TURN_RELAYED_BYTES, "direction" => "to_peer")
                    .absolute(turn.relayed_to_peer);
                counter!(names::TURN_RELAYED_BYTES, "direction" => "to_client")
                    .absolute(turn.relayed_to_client);
                counter!(names::TURN_DROPPED_PACKETS, "reason" => "over_bandwidth")
                    .absolute(turn.dropped_over_bandwidth);
                counter!(names::TURN_DROPPED_PACKETS, "reason" => "peer_not_allowed")
                    .absolute(turn.dropped_peer_not_allowed);
                counter!(names::TURN_REQUESTS_OVER_RATE).absolute(turn.requests_over_rate);
            }
            for (kind, lock) in [("session", lock.sessions), ("site", lock.site)] {
                counter!(names::LOCK_TAKEN, "lock" => kind).absolute(lock.taken);
                counter!(names::LOCK_HELD, "lock" => kind).absolute(micros(lock.held));
                counter!(names::LOCK_WAITED, "lock" => kind).absolute(micros(lock.waited));
            }
            gauge!(names::LIVE_SESSIONS).set(sessions as f64);
            for label in ROLES {
                let n: usize = participants
                    .iter()
                    .filter(|((role, admission), _)| role_label(*role, *admission) == label)
                    .map(|(_, n)| *n)
                    .sum();
                gauge!(names::PARTICIPANTS, "role" => label).set(n as f64);
            }
            gauge!(names::TCP_CONNECTIONS).set(caps.open() as f64);
            counter!(names::TCP_REFUSED, "reason" => "full").absolute(caps.refused_full() as u64);
            counter!(names::TCP_REFUSED, "reason" => "too_many_from_address")
                .absolute(caps.refused_from_address() as u64);
            if let Some(shared) = caps.shared() {
                gauge!(names::REDIS_UP).set(if shared.is_up() { 1.0 } else { 0.0 });
                counter!(names::REDIS_ERRORS).absolute(shared.errors());
            }
            if state.config.postgres.is_some() {
                gauge!(names::SITE_SERVING).set(1.0);
            }
            if let Some(counts) = invitations {
                for known in INVITATION_STATES {
                    if !counts.iter().any(|(state, _)| state == known) {
                        gauge!(names::INVITATIONS, "state" => known).set(0.0);
                    }
                }
                for (state, n) in counts {
                    gauge!(names::INVITATIONS, "state" => state).set(n as f64);
                }
            }
        });
        self.handle.render()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts one open WebSocket connection while it lives.
#[derive(Debug)]
pub struct WebSocketOpen {
    gauge: Gauge,
    open: Arc<AtomicUsize>,
}

impl Drop for WebSocketOpen {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn role_label(role: Role, admission: Admission) -> &'static str {
    match (role, admission) {
        (Role::Customer, Admission::Waiting) => "waiting",
        (Role::PrimaryRep, _) => "primary_rep",
        (Role::Assistant, _) => "assistant",
        (Role::Observer, _) => "observer",
        (Role::Customer, _) => "customer",
        (Role::Agent, _) => "agent",
        (Role::Recorder, _) => "recorder",
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(names::BUILD_INFO, BUILD_INFO_HELP);
    describe_gauge!(names::LIVE_SESSIONS, "Support sessions live now");
    describe_gauge!(
        names::PARTICIPANTS,
        "Participants of live sessions by role (customers in the waiting room: waiting)"
    );
    describe_gauge!(
        names::WEBSOCKET_CONNECTIONS,
        "WebSocket connections open now"
    );
    describe_counter!(
        names::WEBSOCKET_MESSAGES,
        "WebSocket messages received, by type (invalid: not decodable; binary: a binary frame)"
    );
    describe_counter!(
        names::WEBSOCKET_REFUSALS,
        "Error replies sent on WebSockets, by error code"
    );
    describe_gauge!(names::TCP_CONNECTIONS, TCP_CONNECTIONS_HELP);
    describe_counter!(names::TCP_REFUSED, TCP_REFUSED_HELP);
    describe_gauge!(names::INVITATIONS, "Email invitations kept, by state");
    describe_gauge!(names::REDIS_UP, REDIS_UP_HELP);
    describe_counter!(names::REDIS_ERRORS, REDIS_ERRORS_HELP);
    describe_gauge!(names::SITE_SERVING, SITE_SERVING_HELP);
    describe_counter!(
        names::LOCK_TAKEN,
        "Times the registry's locks were taken: each session's own (lock=session, summed over \
         sessions) and the one over what spans sessions (lock=site)"
    );
    describe_counter!(
        names::LOCK_HELD,
        "Time the registry's locks were held, in all (µs), by kind"
    );
    describe_counter!(
        names::LOCK_WAITED,
        "Time spent waiting for the registry's locks, in all (µs), by kind"
    );
    describe_gauge!(
        names::TURN_ALLOCATIONS,
        "Embedded TURN service: relay allocations held now"
    );
    describe_counter!(
        names::TURN_ALLOCATIONS_REFUSED,
        "Embedded TURN service: allocations refused at the caps (508)"
    );
    describe_counter!(
        names::TURN_RELAYED_BYTES,
        "Embedded TURN service: bytes relayed, by direction (to_peer, to_client)"
    );
    describe_counter!(
        names::TURN_DROPPED_PACKETS,
        "Embedded TURN service: relayed packets dropped, by reason (over_bandwidth, \
         peer_not_allowed)"
    );
    describe_counter!(
        names::TURN_REQUESTS_OVER_RATE,
        "Embedded TURN service: STUN requests dropped over an address's rate"
    );
    describe_histogram!(
        names::STORE_SECONDS,
        Unit::Seconds,
        "Time taken by calls to the store, by operation"
    );
}

const SITE_SERVING_HELP: &str =
    "With --postgres: 1 while this server serves the site, 0 while it stands by";
const BUILD_INFO_HELP: &str = "Always 1; the server's version is its label";
const TCP_CONNECTIONS_HELP: &str = "TCP connections open now (HTTP and WebSocket)";
const TCP_REFUSED_HELP: &str = "TCP connections refused at the connection caps, by reason";
const REDIS_UP_HELP: &str = "With --redis: 1 if the last call to Redis got through, else 0";
const REDIS_ERRORS_HELP: &str = "With --redis: calls to Redis that failed (each let a \
     connection in unchecked across the site, or left a count to write again)";

/// `/metrics` of a standby (it serves no sessions: its connections, Redis, and that it
/// stands by), protected as the serving server's is: `token` asked when set; `off` (on
/// the main port without a token, or with metrics on their own address) answers 404.
pub fn standby_scrape(
    caps: Arc<crate::serve::ConnectionCaps>,
    token: Option<String>,
    off: bool,
) -> axum::routing::MethodRouter {
    get(move |headers: HeaderMap| {
        let (caps, token) = (caps.clone(), token.clone());
        async move {
            if off {
                return StatusCode::NOT_FOUND.into_response();
            }
            if let Some(token) = &token
                && !bearer_matches(&headers, token)
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                    "a valid metrics token is needed\n",
                )
                    .into_response();
            }
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                standby_metrics(&caps),
            )
                .into_response()
        }
    })
}

/// A standby's metrics, in Prometheus's text format.
fn standby_metrics(caps: &crate::serve::ConnectionCaps) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let version = format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    metric(
        names::BUILD_INFO,
        "gauge",
        BUILD_INFO_HELP,
        &[(&version, 1.0)],
    );
    metric(
        names::SITE_SERVING,
        "gauge",
        SITE_SERVING_HELP,
        &[("", 0.0)],
    );
    metric(
        names::TCP_CONNECTIONS,
        "gauge",
        TCP_CONNECTIONS_HELP,
        &[("", caps.open() as f64)],
    );
    metric(
        names::TCP_REFUSED,
        "counter",
        TCP_REFUSED_HELP,
        &[
            ("{reason=\"full\"}", caps.refused_full() as f64),
            (
                "{reason=\"too_many_from_address\"}",
                caps.refused_from_address() as f64,
            ),
        ],
    );
    if let Some(shared) = caps.shared() {
        metric(
            names::REDIS_UP,
            "gauge",
            REDIS_UP_HELP,
            &[("", if shared.is_up() { 1.0 } else { 0.0 })],
        );
        metric(
            names::REDIS_ERRORS,
            "counter",
            REDIS_ERRORS_HELP,
            &[("", shared.errors() as f64)],
        );
    }
    out
}

/// Histogram samples wait in a buffer until a scrape; without scrapes it would only grow.
fn spawn_upkeep(telemetry: Weak<Telemetry>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            match telemetry.upgrade() {
                Some(telemetry) => telemetry.handle.run_upkeep(),
                None => break,
            }
        }
    });
}

/// Prometheus metrics (see docs/self-hosting.md, "Operations"). On the main port only
/// with the configured bearer token (`metrics_token`); 404 without one, and 404 when
/// metrics are served on their own address (`metrics_bind`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics, in Prometheus's text format",
            content_type = "text/plain"),
        (status = 401, description = "No or a wrong `Authorization: Bearer <metrics_token>`",
            content_type = "text/plain"),
        (status = 404, description = "No metrics_token is set, or metrics are on metrics_bind"),
    )
)]
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.config.metrics_bind.is_some() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.config.metrics_token.as_deref() {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(token) => answer(&state, &headers, Some(token)).await,
    }
}

/// `/metrics` on the separate metrics address: the token is asked only when one is set.
async fn scrape_private(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = state.config.metrics_token.clone();
    answer(&state, &headers, token.as_deref()).await
}

/// The router for `metrics_bind`: `/metrics` and nothing else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape_private))
        .with_state(state)
}

async fn answer(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> Response {
    if let Some(token) = token {
        if !bearer_matches(headers, token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                "a valid metrics token is needed\n",
            )
                .into_response();
        }
    }
    let text = state.telemetry.render(state).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Compare digests, so that the time taken says nothing about how much of a guess was
/// right.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_customers_are_apart_and_every_role_has_a_label() {
        assert_eq!(role_label(Role::Customer, Admission::Waiting), "waiting");
        assert_eq!(role_label(Role::Customer, Admission::Admitted), "customer");
        for role in [
            Role::PrimaryRep,
            Role::Assistant,
            Role::Observer,
            Role::Customer,
            Role::Agent,
        ] {
            assert!(ROLES.contains(&role_label(role, Admission::Admitted)));
        }
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "secret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        assert!(bearer_matches(&headers, "secret"));
        assert!(!bearer_matches(&headers, "secret2"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic secret"),
        );
        assert!(!bearer_matches(&headers, "secret"));
    }
}
