//! Session recordings (docs/rules.md "Recording"): listed, played and deleted. An
//! administrator sees every recording; a rep, the ones they started.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeFile;

use crate::AppState;
use crate::auth::Rep;
use crate::error::{AppError, ErrorBody};
use crate::store::{Account, RecordingRecord};

/// The recording, if this account may see it; otherwise the same 404 as for one that
/// does not exist, so ids cannot be probed.
async fn visible(
    state: &AppState,
    account: &Account,
    id: i64,
) -> Result<RecordingRecord, AppError> {
    match state.store.recording(id).await? {
        Some(r) if account.is_admin || r.started_by == account.id => Ok(r),
        _ => Err(AppError::not_found(format!("no recording {id}"))),
    }
}

#[utoipa::path(
    get,
    path = "/api/recordings",
    tag = "recordings",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "The recordings this account may see (all for an administrator, the ones they started for a rep), the newest first", body = [RecordingRecord]),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rep(account): Rep,
) -> Result<Json<Vec<RecordingRecord>>, AppError> {
    let all = state.store.recordings().await?;
    Ok(Json(
        all.into_iter()
            .filter(|r| account.is_admin || r.started_by == account.id)
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/api/recordings/{id}/video",
    tag = "recordings",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The recording: fragmented MP4, H.264, as the agent sent it (a recording still going on plays up to its last second)", content_type = "video/mp4"),
        (status = 206, description = "A byte range of it (players seek with Range requests)", content_type = "video/mp4"),
        (status = 304, description = "Not modified since the request's If-Modified-Since"),
        (status = 412, description = "Modified since the request's If-Unmodified-Since"),
        (status = 416, description = "A Range outside the file (Content-Range says its size)"),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 404, description = "No such recording, or not one this account may see, or its file is gone", body = ErrorBody),
    )
)]
pub async fn video(
    State(state): State<AppState>,
    Rep(account): Rep,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, AppError> {
    let recording = visible(&state, &account, id).await?;
    let path = state.recordings.path(&recording);
    serve(path, "video/mp4", request).await
}

#[utoipa::path(
    get,
    path = "/api/recordings/{id}/events",
    tag = "recordings",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The chat and who came and went, timed from the recording's start: a WebVTT text track for the player", content_type = "text/vtt"),
        (status = 206, description = "A byte range of it (Range requests)", content_type = "text/vtt"),
        (status = 304, description = "Not modified since the request's If-Modified-Since"),
        (status = 412, description = "Modified since the request's If-Unmodified-Since"),
        (status = 416, description = "A Range outside the file (Content-Range says its size)"),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 404, description = "No such recording, or not one this account may see", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Rep(account): Rep,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, AppError> {
    let recording = visible(&state, &account, id).await?;
    let path = state.recordings.events_path(&recording);
    serve(path, "text/vtt; charset=utf-8", request).await
}

async fn serve(
    path: std::path::PathBuf,
    mime: &str,
    request: Request,
) -> Result<Response, AppError> {
    let mime: mime_guess::Mime = mime.parse().map_err(AppError::internal)?;
    let response = ServeFile::new_with_mime(&path, &mime)
        .try_call(request)
        .await
        .map_err(|e| AppError::internal(format!("cannot read {}: {e}", path.display())))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(AppError::not_found("the recording's file is gone"));
    }
    let mut response = response.map(Body::new);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response.into_response())
}

#[utoipa::path(
    delete,
    path = "/api/recordings/{id}",
    tag = "recordings",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The recording's id")),
    responses(
        (status = 204, description = "Deleted: its files and its row; the session's audit log has `recording_deleted` with who did it"),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 404, description = "No such recording, or not one this account may see", body = ErrorBody),
        (status = 409, description = "It is still being recorded: stop the recording first", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Rep(account): Rep,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let recording = visible(&state, &account, id).await?;
    if recording.state == "recording" {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "this recording is still going on; stop it in the session first",
        ));
    }
    state
        .recordings
        .delete(&recording, Some(&account.username))
        .await
        .map_err(|e| AppError::internal(format!("could not delete recording {id}: {e:#}")))?;
    tracing::info!(recording = id, by = %account.username, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}
