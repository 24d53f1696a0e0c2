//! [`RequestError`]: why a request was refused, as a clear 4xx (or 5xx) JSON answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused request: nothing was run. Answers `{"error": "<message>"}` with the status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body or the query is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// No or a wrong bearer token (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No such session or resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the server accepts (413).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The server has no store, or the store failed (503 / 500).
    #[error("{0}")]
    Store(String),
}

impl RequestError {
    /// A 400 with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        RequestError::Invalid(message.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Invalid(_) => StatusCode::BAD_REQUEST,
            RequestError::Unauthorized => StatusCode::UNAUTHORIZED,
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if self == RequestError::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
