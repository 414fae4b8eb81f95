//! Starting a session (R1) and listing a rep's live sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tandem_protocol::{ErrorCode, SessionNumber};

use crate::AppState;
use crate::auth::Rep;
use crate::error::AppError;
use crate::live::RepSession;
use crate::store::InvitationRecord;

#[derive(Deserialize)]
pub struct StartRequest {
    /// R1's "Email" checkbox.
    #[serde(default = "yes")]
    email_invite: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize)]
pub struct SessionView {
    number: String,
    display: String,
    link: String,
    join_page: String,
    /// Whether the server can send invitations by email itself (R3).
    email_configured: bool,
}

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
        .map_err(|r| {
            let status = match r.code {
                ErrorCode::SiteLimit => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            AppError::new(status, r.message)
        })?;
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

pub async fn mine(State(state): State<AppState>, Rep(account): Rep) -> Json<Vec<RepSession>> {
    Json(state.registry.sessions_of(&account))
}

/// The number and join link of one of the rep's live sessions, for the session page.
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
#[derive(Serialize)]
pub struct Directory {
    agents: Vec<DirectoryAgent>,
    queues: Vec<String>,
}

#[derive(Serialize)]
pub struct DirectoryAgent {
    agent: String,
    name: String,
}

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
