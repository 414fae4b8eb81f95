//! Starting a session (R1) and listing a rep's live sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tandem_protocol::{ErrorCode, SessionNumber};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Rep;
use crate::error::{AppError, ErrorBody};
use crate::live::RepSession;
use crate::store::InvitationRecord;

#[derive(Deserialize, ToSchema)]
pub struct StartRequest {
    /// R1's "Email" checkbox: the session page opens the invite dialog by itself
    /// (`open_invite_dialog` in `joined`). Default true.
    #[schema(default = true)]
    #[serde(default = "yes")]
    email_invite: bool,
}

fn yes() -> bool {
    true
}

/// A live session as its primary rep or an assistant sees it.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The session number, 9 digits (`join_by_number`, `open_session`, `assist`).
    #[schema(example = "123456789")]
    number: String,
    /// The number as people read it.
    #[schema(example = "123 456 789")]
    display: String,
    /// The join link, `<base>/j/<secret>`: its last path segment is the `secret` of
    /// `join_by_link`. Whoever has it joins without waiting (C2): hand it only to customers.
    #[schema(example = "https://support.example.com/j/3q2-7Zk...")]
    link: String,
    /// The page where a customer types the number (and waits to be admitted).
    #[schema(example = "https://support.example.com/join")]
    join_page: String,
    /// Whether the server can send invitations by email itself (R3).
    email_configured: bool,
}

/// Start a session (R1). The rep becomes its primary rep and must open the session page
/// (WebSocket `open_session`) within 60 s, or the session ends.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "sessions",
    security(("tandem_login" = [])),
    request_body = StartRequest,
    responses(
        (status = 201, description = "The session is live", body = SessionView),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 409, description = "The rep already runs a session and the site does not \
            allow several at once (R4)", body = ErrorBody),
        (status = 503, description = "The server is restarting: no session was started \
            (rarely, as the site's lease is lost, one may have been: then it is on the \
            rep's dashboard); try again in a moment", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Rep(account): Rep,
    headers: HeaderMap,
    Json(request): Json<StartRequest>,
) -> Result<(StatusCode, Json<SessionView>), AppError> {
    let settings = state.store.settings().await?;
    let base = state.base_url(&headers);
    let started = state
        .registry
        .start(&account, request.email_invite, &settings, &base)
        .map_err(|r| match r.code {
            ErrorCode::SiteLimit => AppError::new(StatusCode::CONFLICT, r.message),
            ErrorCode::Restarting => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is restarting; start the session again in a moment",
            ),
            _ => AppError::new(StatusCode::INTERNAL_SERVER_ERROR, r.message),
        })?;
    // The session is on disk before anyone hears of it.
    if !state.registry.written().await {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is restarting; start the session again in a moment",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(SessionView {
            link: format!("{base}/j/{}", started.secret),
            join_page: format!("{base}/join"),
            number: started.number,
            display: started.display,
            email_configured: email_configured(&state).await,
        }),
    ))
}

/// The logged-in rep's live sessions, for the dashboard.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "sessions",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "Every live session this rep takes part in", body = [RepSession]),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
    )
)]
pub async fn mine(State(state): State<AppState>, Rep(account): Rep) -> Json<Vec<RepSession>> {
    Json(state.registry.sessions_of(&account))
}

/// The number and join link of one of the rep's live sessions, for the session page.
/// Only the primary rep and assistants get it; a former primary who observes (R9), other
/// reps and numbers no session has all get 404.
#[utoipa::path(
    get,
    path = "/api/sessions/{number}",
    tag = "sessions",
    security(("tandem_login" = [])),
    params(("number" = String, Path, description = "The session number: 9 digits, spaces or dashes allowed")),
    responses(
        (status = 200, description = "The session and its join link", body = SessionView),
        (status = 400, description = "Not a session number", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 404, description = "You are not the primary rep or an assistant of a live \
            session with that number", body = ErrorBody),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Rep(account): Rep,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Result<Json<SessionView>, AppError> {
    let number: SessionNumber = number
        .parse()
        .map_err(|e: tandem_protocol::InvalidSessionNumber| AppError::bad_request(e.to_string()))?;
    let secret = state
        .registry
        .secret_for(&account, number)
        .ok_or_else(|| AppError::not_found("you have no live session with that number"))?;
    let base = state.base_url(&headers);
    Ok(Json(SessionView {
        link: format!("{base}/j/{secret}"),
        join_page: format!("{base}/join"),
        number: number.digits(),
        display: number.to_string(),
        email_configured: email_configured(&state).await,
    }))
}

async fn email_configured(state: &AppState) -> bool {
    crate::mailer::settings(state.store.as_ref(), state.config.smtp.as_ref())
        .await
        .is_some()
}

/// The session's email invitations and where each stands, for the rep's page (R3).
#[utoipa::path(
    get,
    path = "/api/sessions/{number}/invitations",
    tag = "sessions",
    security(("tandem_login" = [])),
    params(("number" = String, Path, description = "The session number")),
    responses(
        (status = 200, description = "The invitations, oldest first", body = [InvitationRecord]),
        (status = 400, description = "Not a session number", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 404, description = "You are not the primary rep or an assistant of a live \
            session with that number", body = ErrorBody),
    )
)]
pub async fn invitations(
    State(state): State<AppState>,
    Rep(account): Rep,
    Path(number): Path<String>,
) -> Result<Json<Vec<InvitationRecord>>, AppError> {
    let number: SessionNumber = number
        .parse()
        .map_err(|e: tandem_protocol::InvalidSessionNumber| AppError::bad_request(e.to_string()))?;
    if state.registry.secret_for(&account, number).is_none() {
        return Err(AppError::not_found(
            "you have no live session with that number",
        ));
    }
    Ok(Json(state.store.invitations(&number.digits()).await?))
}

/// R10: where a WebACD agent can transfer a session: the other agents and the queues.
#[derive(Serialize, ToSchema)]
pub struct Directory {
    agents: Vec<DirectoryAgent>,
    queues: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DirectoryAgent {
    /// The account name: the `agent` of a `webacd_transfer` target.
    agent: String,
    /// The display name.
    name: String,
}

#[utoipa::path(
    get,
    path = "/api/webacd",
    tag = "sessions",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "The other enabled WebACD agents and the queues", body = Directory),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The rep is not a WebACD agent", body = ErrorBody),
    )
)]
pub async fn webacd_directory(
    State(state): State<AppState>,
    Rep(account): Rep,
) -> Result<Json<Directory>, AppError> {
    if !account.is_webacd {
        return Err(AppError::forbidden(
            "only WebACD agents transfer sessions to agents and queues",
        ));
    }
    let agents = state
        .store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| a.is_webacd && !a.disabled && a.id != account.id)
        .map(|a| DirectoryAgent {
            agent: a.username,
            name: a.display_name,
        })
        .collect();
    let queues = state
        .store
        .queues()
        .await?
        .into_iter()
        .map(|q| q.name)
        .collect();
    Ok(Json(Directory { agents, queues }))
}
