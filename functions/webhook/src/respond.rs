//! The answers the webhook gives: JSON, plain text and HTML, with the headers each needs. Error
//! bodies name what a sender can fix, never Baton's internals.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

fn with_type(status: StatusCode, body: impl Into<Body>, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    with_type(status, body, "text/plain; charset=utf-8")
}

pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    with_type(
        status,
        serde_json::to_vec(body).unwrap_or_default(),
        "application/json",
    )
}

pub fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// The answer to a body over the endpoint's limit; also given by servers that stop reading such
/// a body early.
pub fn too_large(limit: &str) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("body larger than {limit}"),
    )
}

/// 405, naming the methods the path takes.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

pub fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Not Found")
}

/// The answer when the store failed: 503 so that the sender delivers again.
pub fn store_unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; deliver again later",
    )
}

/// Headers every session answer carries: never cached, never framed, never sniffed, no referrer
/// (the link's token stays out of other sites' logs).
pub fn private(h: &mut HeaderMap) {
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// A session page (or its refusal): HTML that may load nothing but its own styles.
pub fn html(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = with_type(status, body, "text/html; charset=utf-8");
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    private(h);
    r
}
