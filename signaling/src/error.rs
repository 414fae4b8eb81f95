//! One error type for HTTP handlers: a status and a sentence the user can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// The JSON body of every error answer from the API.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A sentence the user can act on; never internal detail.
    pub error: String,
}

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "please log in first")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure inside the server. The detail goes to the log with an id; the client
    /// gets the id and a sentence, never the internal text (database paths, queries).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let id = format!("{:08x}", rand::random::<u32>());
        tracing::error!(error_id = %id, "{detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("something went wrong on the server (error {id}); please try again"),
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            StoreError::NotFound => Self::not_found("no such item"),
            other => Self::internal(format!("the database failed: {other}")),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_failures_answer_with_an_id_and_never_the_detail() {
        let error = AppError::from(StoreError::Corrupt(
            "no such table: accounts at /var/lib/tandem/tandem.db".into(),
        ));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        let response = error.into_response();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("something went wrong"), "{text}");
        assert!(!text.contains("accounts"), "{text}");
        assert!(!text.contains("/var/lib"), "{text}");
    }
}
