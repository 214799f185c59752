//! The session page a rep opens from the HubSpot note (`GET /sessions/{id}?t=<token>`) and its
//! files (`GET /sessions/{id}/file?t=<token>&key=<key>`, for stores without presigned URLs). What
//! the page shows is [`crate::session_page`]; this is the route.
//!
//! | request | answer |
//! |---|---|
//! | a good token | 200, the session page (HTML) or the file |
//! | a missing, forged, moved or expired token | 403, a plain page that says nothing more |

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use baton_shared::observe::{self, metric};
use http::{HeaderValue, StatusCode, header};

use crate::Webhook;
use crate::respond::{html, private, text};
use crate::session_page::{self as page, Answer};

/// `GET /sessions/…`.
pub async fn serve(State(app): State<Arc<Webhook>>, req: Request) -> Response {
    let rest = req
        .uri()
        .path()
        .strip_prefix(page::SESSIONS_PATH)
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or("");
    let Some(sessions) = &app.sessions else {
        tracing::warn!(
            "session page asked for, but SESSION_LINK_SECRET or MEDIA_BUCKET is not set"
        );
        return html(StatusCode::NOT_FOUND, page::NOT_FOUND_HTML);
    };
    match sessions.answer(rest, query).await {
        Answer::Page { html: body, csp } => {
            observe::count(metric::SESSION_PAGES, 1);
            tracing::info!(bytes = body.len(), "session page served");
            let mut r = html(StatusCode::OK, body);
            if let Ok(v) = HeaderValue::from_str(&csp) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        Answer::File {
            stream,
            content_type,
        } => {
            // Read whole before answering: a store that fails mid-file gets a 503, not a
            // truncated file (Lambda answers with whole bodies anyway).
            use futures_util::TryStreamExt;
            let mut bytes = Vec::with_capacity(usize::try_from(stream.len).unwrap_or(0));
            let mut body = stream.body;
            loop {
                match body.try_next().await {
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "session file not readable");
                        return text(StatusCode::SERVICE_UNAVAILABLE, "try again later");
                    }
                }
            }
            let mut r = Response::new(Body::from(bytes));
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            // A customer's file is theirs to label: whatever its type, it runs nothing here.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            );
            private(h);
            r
        }
        Answer::Forbidden => {
            observe::count(metric::SESSION_PAGES_REFUSED, 1);
            tracing::warn!("session page refused: bad or expired link");
            html(StatusCode::FORBIDDEN, page::FORBIDDEN_HTML)
        }
        Answer::NotFound => html(StatusCode::NOT_FOUND, page::NOT_FOUND_HTML),
        Answer::Unavailable(e) => {
            tracing::error!(error = %e, "session page not available");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "The session cannot be read right now; try again in a minute.",
            )
        }
    }
}
