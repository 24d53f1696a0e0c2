//! `GET /`: the dashboard, one HTML page with its script and styles inline, compiled into
//! the binary (no bundler, nothing fetched at run time). It reads `/api/sessions`,
//! `/api/sessions/{id}/events` and `/events`, and starts runs through `/ag-ui`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page.
pub(crate) const PAGE: &str = include_str!("../assets/dashboard.html");

/// Serves the page. It holds no secret: a token, when the server has one, is given by
/// the user in the page's address (`/?token=…`) and stays in the browser.
pub(crate) async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}
