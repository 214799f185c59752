//! The webhook function: Meta's webhook, the AI agent's events, HubSpot's events and the session
//! page, as one axum [`Router`]. The Lambda runs it through `lambda_http` ([`handle_lambda`]) and
//! `baton-local` serves the same router, so both answer with exactly the same code.
//!
//! One file per endpoint: [`whatsapp`] (`/webhook`), [`agent_events`] (`/agent/events`),
//! [`hubspot_events`] (`/hubspot/events`), [`sessions`] (`/sessions/…`, the page itself in
//! [`session_page`]). Every signed body passes one extractor, [`signed::Signed`]; what cannot be
//! stored as items is kept whole ([`kept`]) for [`replay`].

pub mod agent_events;
pub mod config;
pub mod hubspot_events;
pub mod hubspot_webhook;
pub mod kept;
pub mod replay;
pub mod respond;
pub mod session_page;
pub mod sessions;
pub mod signed;
pub mod whatsapp;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
use baton_shared::observe;
use baton_shared::store::Store;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, header};
use tower::ServiceExt as _;

pub use config::{WebhookConfig, WebhookSecrets};
pub use replay::{ReplaySummary, replay_deliveries};
use session_page::SessionPages;

pub const WEBHOOK_PATH: &str = "/webhook";
pub const AGENT_EVENTS_PATH: &str = "/agent/events";
pub const HUBSPOT_EVENTS_PATH: &str = "/hubspot/events";

/// Milliseconds since the Unix epoch; injectable so tests control arrival times.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(baton_shared::clock::now_ms)
}

/// What the webhook's endpoints share: the store, the secrets, the clock, the session pages.
#[derive(Clone)]
pub struct Webhook {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) secrets: WebhookSecrets,
    clock: Clock,
    pub(crate) sessions: Option<SessionPages>,
    /// The public URL HubSpot calls (`PUBLIC_BASE_URL`), part of what its signature covers.
    public_base_url: Option<String>,
    /// The router [`Webhook::handle`] answers with, built on its first request.
    routed: Arc<OnceLock<Router>>,
}

impl Webhook {
    pub fn new(store: Arc<dyn Store>, secrets: WebhookSecrets) -> Self {
        Self::with_clock(store, secrets, system_clock())
    }

    pub fn with_clock(store: Arc<dyn Store>, secrets: WebhookSecrets, clock: Clock) -> Self {
        Self {
            store,
            secrets,
            clock,
            sessions: None,
            public_base_url: None,
            routed: Arc::default(),
        }
    }

    /// The public base URL (`PUBLIC_BASE_URL`), which HubSpot's signatures cover.
    pub fn with_public_base_url(mut self, url: Option<String>) -> Self {
        self.public_base_url = url.map(|u| u.trim_end_matches('/').to_owned());
        self.routed = Arc::default();
        self
    }

    /// Serves session pages (`/sessions/{id}`) too.
    pub fn with_sessions(mut self, sessions: SessionPages) -> Self {
        self.sessions = Some(sessions);
        self.routed = Arc::default();
        self
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The URLs HubSpot may have signed this request for: the configured public one, and the
    /// host the request names (HTTPS, and plain HTTP for a local run).
    pub(crate) fn signed_uris(&self, parts: &Parts) -> Vec<String> {
        let path = parts
            .uri
            .path_and_query()
            .map_or(HUBSPOT_EVENTS_PATH, |p| p.as_str());
        let mut uris = Vec::new();
        if let Some(base) = &self.public_base_url {
            uris.push(format!("{base}{path}"));
        }
        if let Some(host) = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            uris.push(format!("https://{host}{path}"));
            uris.push(format!("http://{host}{path}"));
        }
        uris
    }

    /// Every endpoint. Bodies are limited by each endpoint's own check (413 with its reason),
    /// not by axum's default.
    pub fn router(mut self) -> Router {
        // The router holds the webhook: never the cache that holds the router.
        self.routed = Arc::default();
        let only = |methods: MethodRouter<Arc<Self>>, allow: &'static str| {
            methods.fallback(move || async move { respond::method_not_allowed(allow) })
        };
        Router::new()
            .route(
                WEBHOOK_PATH,
                only(
                    get(whatsapp::handshake).post(whatsapp::receive),
                    "GET, POST",
                ),
            )
            .route(AGENT_EVENTS_PATH, only(post(agent_events::receive), "POST"))
            .route(
                HUBSPOT_EVENTS_PATH,
                only(post(hubspot_events::receive), "POST"),
            )
            .route(
                &format!("{}{{*rest}}", session_page::SESSIONS_PATH),
                only(get(sessions::serve), "GET"),
            )
            .fallback(|| async { respond::not_found() })
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::new(self))
    }

    /// Answers one request with the whole body read: what the tests, benchmarks and the demo use.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        let router = self.routed.get_or_init(|| self.clone().router()).clone();
        let response = router
            .oneshot(req.map(Body::from))
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        Response::from_parts(parts, bytes)
    }
}

/// Translates an API Gateway (or function URL) request into the router's types and back. API
/// Gateway has already decoded a base64-encoded body into its exact bytes.
pub async fn handle_lambda(
    router: Router,
    event: lambda_http::Request,
) -> Result<Response<lambda_http::Body>, std::convert::Infallible> {
    let (parts, body) = event.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    let response = router
        .oneshot(Request::from_parts(parts, Body::from(bytes)))
        .await
        .unwrap_or_else(|never| match never {});
    observe::flush("webhook");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body = match std::str::from_utf8(&body) {
        Ok(s) => lambda_http::Body::Text(s.to_owned()),
        Err(_) => lambda_http::Body::Binary(body.to_vec()),
    };
    Ok(Response::from_parts(parts, body))
}
