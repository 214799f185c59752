//! One extractor for every signed endpoint: [`Signed<E>`] reads the body (refusing one over the
//! endpoint's limit before reading it all) and checks its signature over the exact bytes, so a
//! handler only ever sees a body its sender signed. Each endpoint says how in [`Endpoint`]:
//! Meta's `X-Hub-Signature-256`, the AI agent's `X-Baton-Signature-256`, HubSpot's
//! `X-HubSpot-Signature-v3`.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use baton_shared::domain::MAX_BODY_BYTES;
use baton_shared::observe::{self, metric};
use baton_shared::{agent, whatsapp};

use crate::hubspot_webhook;
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;

use crate::Webhook;
use crate::respond::{error, too_large};

/// How one endpoint's bodies are signed.
pub trait Endpoint {
    /// The largest body accepted, and how the refusal names it.
    const LIMIT: usize;
    const LIMIT_TEXT: &'static str;
    /// Who sends it, for the logs.
    const SENDER: &'static str;

    /// Whether `body` is signed by the sender: the answer to give when it is not.
    fn verify(app: &Webhook, parts: &Parts, body: &Bytes) -> Result<(), Refused>;

    /// A body over the limit (counted where the endpoint counts refusals).
    fn refused_too_large(bytes: usize) {
        tracing::warn!(bytes, sender = Self::SENDER, "body refused: over the limit");
    }
}

/// A body the endpoint's sender signed, with the request it came in.
pub struct Signed<E> {
    pub parts: Parts,
    pub body: Bytes,
    endpoint: PhantomData<E>,
}

impl<E: Endpoint> FromRequest<Arc<Webhook>> for Signed<E> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<Webhook>) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // Read on past the limit (up to twice it) before refusing: a server that stops reading
        // mid-body resets the connection, and the sender sees a broken pipe instead of the 413.
        // Past that, the sender is not Meta and gets the reset.
        let body = axum::body::to_bytes(body, E::LIMIT * 2)
            .await
            .map_err(|_| {
                E::refused_too_large(E::LIMIT * 2 + 1);
                too_large(E::LIMIT_TEXT)
            })?;
        if body.len() > E::LIMIT {
            E::refused_too_large(body.len());
            return Err(too_large(E::LIMIT_TEXT));
        }
        E::verify(app, &parts, &body).map_err(IntoResponse::into_response)?;
        Ok(Self {
            parts,
            body,
            endpoint: PhantomData,
        })
    }
}

fn header_values<'a>(parts: &'a Parts, name: &str) -> impl Iterator<Item = &'a [u8]> {
    parts
        .headers
        .get_all(name)
        .iter()
        .map(http::HeaderValue::as_bytes)
}

/// Why a body was not accepted: the status and the reason its sender is told.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    reason: String,
}

impl Refused {
    fn new(status: StatusCode, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.status, &self.reason)
    }
}

/// Meta's webhook deliveries.
pub struct Meta;

impl Endpoint for Meta {
    const LIMIT: usize = MAX_BODY_BYTES;
    const LIMIT_TEXT: &'static str = "3 MB";
    const SENDER: &'static str = "Meta";

    fn refused_too_large(bytes: usize) {
        observe::count(metric::DELIVERIES_REFUSED, 1);
        tracing::warn!(bytes, "delivery refused: larger than Meta ever sends");
    }

    fn verify(app: &Webhook, parts: &Parts, body: &Bytes) -> Result<(), Refused> {
        let signatures = header_values(parts, whatsapp::SIGNATURE_HEADER);
        if let Err(e) = app.secrets.app_secrets.verify(signatures, body) {
            observe::count(metric::DELIVERIES_REFUSED, 1);
            tracing::warn!(reason = %e, bytes = body.len(), "delivery refused: bad signature");
            return Err(Refused::new(StatusCode::UNAUTHORIZED, &e.to_string()));
        }
        if body.is_empty() {
            // Nothing to keep.
            tracing::warn!("signed delivery refused: empty body");
            return Err(Refused::new(StatusCode::BAD_REQUEST, "empty body"));
        }
        Ok(())
    }
}

/// The AI agent's events.
pub struct Agent;

impl Endpoint for Agent {
    const LIMIT: usize = agent::MAX_BODY_BYTES;
    const LIMIT_TEXT: &'static str = "1 MB";
    const SENDER: &'static str = "the AI agent";

    fn verify(app: &Webhook, parts: &Parts, body: &Bytes) -> Result<(), Refused> {
        let Some(secrets) = &app.secrets.agent_secrets else {
            tracing::warn!("agent events refused: AGENT_EVENTS_SECRET is not configured");
            return Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "agent events are not enabled: AGENT_EVENTS_SECRET is not configured",
            ));
        };
        let signatures = header_values(parts, agent::SIGNATURE_HEADER);
        if let Err(e) = secrets.verify(signatures, body) {
            tracing::warn!(reason = %e, "agent events refused: bad signature");
            let reason = e.explain("X-Baton-Signature-256", "agent events secret");
            return Err(Refused::new(StatusCode::UNAUTHORIZED, &reason));
        }
        Ok(())
    }
}

/// HubSpot's webhook events (the app's ticket subscriptions).
pub struct Hubspot;

impl Endpoint for Hubspot {
    const LIMIT: usize = hubspot_webhook::MAX_BODY_BYTES;
    const LIMIT_TEXT: &'static str = "1 MB";
    const SENDER: &'static str = "HubSpot";

    fn verify(app: &Webhook, parts: &Parts, body: &Bytes) -> Result<(), Refused> {
        let Some(secrets) = &app.secrets.hubspot_secrets else {
            tracing::warn!("HubSpot events refused: HUBSPOT_APP_SECRET is not configured");
            return Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "HubSpot events are not enabled: HUBSPOT_APP_SECRET is not configured",
            ));
        };
        let header = |name: &str| parts.headers.get(name).map(http::HeaderValue::as_bytes);
        if let Err(e) = hubspot_webhook::verify_v3(
            secrets,
            parts.method.as_str(),
            &app.signed_uris(parts),
            body,
            header(hubspot_webhook::SIGNATURE_HEADER),
            header(hubspot_webhook::TIMESTAMP_HEADER),
            app.now(),
        ) {
            observe::count(metric::DELIVERIES_REFUSED, 1);
            tracing::warn!(reason = %e, "HubSpot events refused: bad signature");
            return Err(Refused::new(StatusCode::UNAUTHORIZED, &e.to_string()));
        }
        Ok(())
    }
}
