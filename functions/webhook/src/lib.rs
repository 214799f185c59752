//! The webhook function: answers Meta's verification handshake and stores every signed delivery.
//!
//! [`Webhook::handle`] works on plain `http` types so that the Lambda entry point and
//! `baton-local` serve exactly the same code. Its answers:
//!
//! | request | answer |
//! |---|---|
//! | `GET /webhook` with `hub.mode=subscribe`, the right verify token and a challenge | 200, the challenge as `text/plain` |
//! | any other `GET /webhook` | 403 |
//! | `POST /webhook` larger than 3 MB | 413, nothing stored |
//! | `POST /webhook` with a missing, duplicated, malformed or wrong `X-Hub-Signature-256` | 401, nothing stored |
//! | signed but empty | 400, nothing stored (there is nothing to keep) |
//! | signed, stored (whether it could be read, partly read, or not at all) | 200 with what was stored |
//! | signed, but the store refuses its items for good | 200; the body alone is kept for replay |
//! | signed, but the store is unavailable | 503, so that Meta delivers it again |
//! | `POST /agent/events` larger than 1 MB | 413, nothing stored |
//! | `POST /agent/events` with a missing or wrong `X-Baton-Signature-256` (or no `AGENT_EVENTS_SECRET`) | 401, nothing stored |
//! | `POST /agent/events`, signed, but not valid events | 400 naming the problem; the body is kept for replay |
//! | `POST /agent/events`, signed and valid | 200 with how many events were new and how many seen before |
//! | `GET /sessions/{id}?t=<token>` with a good token | 200, the session page (HTML) |
//! | `GET /sessions/{id}/file?t=<token>&key=<key>` | 200, one of the session's files (stores without presigned URLs) |
//! | a session URL with a missing, forged, moved or expired token | 403, a plain page that says nothing more |
//! | `POST /hubspot/events` with a missing, stale (over 5 minutes) or wrong `X-HubSpot-Signature-v3` (or no `HUBSPOT_APP_SECRET`) | 401, nothing stored |
//! | `POST /hubspot/events`, signed, but not a list of events | 400; the body is kept for replay |
//! | `POST /hubspot/events`, signed | 200; each reply or stage change of a Baton ticket stored once as a ticket event |
//!
//! A `failed` status of a reply Baton sent (its `biz_opaque_callback_data` names the handoff and
//! the reply) is also stored as a ticket event, so the rep learns of it on the ticket.

use std::sync::Arc;

pub mod session_page;

use crate::session_page::{self as page, Answer, SessionPages};
use baton_shared::agent;
use baton_shared::config::WebhookSecrets;
use baton_shared::domain::{
    BatchOrigin, DeliveryBatch, DeliveryId, MAX_BODY_BYTES, ParseState, RawDelivery, WriteReport,
    build_batch,
};
use baton_shared::domain::{TicketEvent, TicketEventKind, parse_callback_data};
use baton_shared::hubspot_webhook::{self, TicketSignal};
use baton_shared::observe::{self, metric};
use baton_shared::store::{Store, StoreError};
use baton_shared::whatsapp::{SIGNATURE_HEADER, verify_handshake};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde::Serialize;

pub const WEBHOOK_PATH: &str = "/webhook";
pub const AGENT_EVENTS_PATH: &str = "/agent/events";
pub const HUBSPOT_EVENTS_PATH: &str = "/hubspot/events";

/// Problems of a kept HubSpot-events body start with this.
const HUBSPOT_PROBLEM: &str = "hubspot events: ";

/// Problems of a kept agent-events body start with this, so replay knows what it is.
const AGENT_PROBLEM: &str = "agent events: ";

/// Milliseconds since the Unix epoch; injectable so tests control arrival times.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(baton_shared::clock::now_ms)
}

/// The webhook's handler with everything it depends on.
#[derive(Clone)]
pub struct Webhook {
    store: Arc<dyn Store>,
    secrets: WebhookSecrets,
    clock: Clock,
    sessions: Option<SessionPages>,
    /// The public URL HubSpot calls (`PUBLIC_BASE_URL`), part of what its signature covers.
    public_base_url: Option<String>,
}

/// What a HubSpot webhook request became.
#[derive(Debug, Default, Serialize)]
struct HubspotReport {
    events: usize,
    replies: u32,
    stage_changes: u32,
    duplicates: u32,
    /// Events about other properties, other objects or tickets that are not Baton's.
    ignored: u32,
}

/// What a stored delivery's 200 answer says.
#[derive(Debug, Serialize)]
struct Stored<'a> {
    delivery: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    problems: &'a [String],
    duplicate_delivery: bool,
    messages_new: u32,
    messages_duplicate: u32,
    statuses_applied: u32,
    statuses_stale: u32,
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
        }
    }

    /// The public base URL (`PUBLIC_BASE_URL`), which HubSpot's signatures cover.
    pub fn with_public_base_url(mut self, url: Option<String>) -> Self {
        self.public_base_url = url.map(|u| u.trim_end_matches('/').to_owned());
        self
    }

    /// Serves session pages (`/sessions/{id}`) too.
    pub fn with_sessions(mut self, sessions: SessionPages) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Routes one request.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        if let Some(rest) = req.uri().path().strip_prefix(page::SESSIONS_PATH) {
            if req.method() != Method::GET {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                r.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
                return r;
            }
            return self.session(rest, req.uri().query().unwrap_or("")).await;
        }
        if req.uri().path() == AGENT_EVENTS_PATH {
            if req.method() != Method::POST {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                r.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
                return r;
            }
            return self.agent_events(req).await;
        }
        if req.uri().path() == HUBSPOT_EVENTS_PATH {
            if req.method() != Method::POST {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                r.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
                return r;
            }
            return self.hubspot_events(req).await;
        }
        if req.uri().path() != WEBHOOK_PATH {
            return text(StatusCode::NOT_FOUND, "Not Found");
        }
        match *req.method() {
            Method::GET => self.handshake(req.uri().query().unwrap_or("")),
            Method::POST => self.receive(req).await,
            _ => {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                r.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
                r
            }
        }
    }

    async fn session(&self, rest: &str, query: &str) -> Response<Bytes> {
        let Some(sessions) = &self.sessions else {
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
                if let Ok(v) = header::HeaderValue::from_str(&csp) {
                    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                }
                r
            }
            Answer::File {
                stream,
                content_type,
            } => {
                use futures_util::TryStreamExt;
                let mut bytes = Vec::with_capacity(stream.len as usize);
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
                let mut r = Response::new(Bytes::from(bytes));
                let h = r.headers_mut();
                if let Ok(v) = header::HeaderValue::from_str(&content_type) {
                    h.insert(header::CONTENT_TYPE, v);
                }
                // A customer's file is theirs to label: whatever its type, it runs nothing here.
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    header::HeaderValue::from_static("default-src 'none'; sandbox"),
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

    fn handshake(&self, query: &str) -> Response<Bytes> {
        match verify_handshake(query, &self.secrets.verify_token) {
            Ok(challenge) => {
                tracing::info!("webhook verification handshake answered");
                text(StatusCode::OK, challenge)
            }
            Err(e) => {
                tracing::warn!(reason = %e, "webhook verification handshake refused");
                text(StatusCode::FORBIDDEN, "Forbidden")
            }
        }
    }

    async fn receive(&self, req: Request<Bytes>) -> Response<Bytes> {
        let body = req.body();
        if body.len() > MAX_BODY_BYTES {
            observe::count(metric::DELIVERIES_REFUSED, 1);
            tracing::warn!(
                bytes = body.len(),
                "delivery refused: larger than Meta ever sends"
            );
            return payload_too_large();
        }
        let signatures = req
            .headers()
            .get_all(SIGNATURE_HEADER)
            .iter()
            .map(|v| v.as_bytes());
        if let Err(e) = self.secrets.app_secrets.verify(signatures, body) {
            observe::count(metric::DELIVERIES_REFUSED, 1);
            tracing::warn!(reason = %e, bytes = body.len(), "delivery refused: bad signature");
            return error(StatusCode::UNAUTHORIZED, &e.to_string());
        }
        if body.is_empty() {
            tracing::warn!("signed delivery refused: empty body");
            return error(StatusCode::BAD_REQUEST, "empty body");
        }
        let batch = build_batch(body.clone(), (self.clock)(), BatchOrigin::Webhook);
        let written = match self.store.write_batch(&batch).await {
            // Trying again cannot help (an item over the store's limits, say): keep the body
            // for replay instead, so nothing is lost and Meta stops delivering it.
            Err(StoreError::Rejected(reason)) => self.keep_for_replay(batch, &reason).await,
            other => other.map(|report| (batch, report)),
        };
        let written = match written {
            Ok((batch, report)) => self.reply_failures(&batch).await.map(|()| (batch, report)),
            Err(e) => Err(e),
        };
        match written {
            Ok((batch, report)) => {
                log_stored(&batch, &report);
                stored(&batch, &report)
            }
            Err(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(),
                    "delivery not stored; Meta will deliver it again");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage unavailable; deliver again later",
                )
            }
        }
    }

    async fn agent_events(&self, req: Request<Bytes>) -> Response<Bytes> {
        let body = req.body();
        if body.len() > agent::MAX_BODY_BYTES {
            tracing::warn!(bytes = body.len(), "agent events refused: body over 1 MB");
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 1 MB");
        }
        let Some(secrets) = &self.secrets.agent_secrets else {
            tracing::warn!("agent events refused: AGENT_EVENTS_SECRET is not configured");
            return error(
                StatusCode::UNAUTHORIZED,
                "agent events are not enabled: AGENT_EVENTS_SECRET is not configured",
            );
        };
        let signatures = req
            .headers()
            .get_all(agent::SIGNATURE_HEADER)
            .iter()
            .map(|v| v.as_bytes());
        if let Err(e) = secrets.verify(signatures, body) {
            tracing::warn!(reason = %e, "agent events refused: bad signature");
            let reason = e.explain("X-Baton-Signature-256", "agent events secret");
            return error(StatusCode::UNAUTHORIZED, &reason);
        }
        let now = (self.clock)();
        let events = match agent::parse_events(body, now) {
            Ok(events) => events,
            Err(e) => {
                // Signed by the agent, so kept: a later Baton (or a fixed agent) can replay it.
                let kept = self
                    .keep_agent_body(body.clone(), now, &e.to_string())
                    .await;
                tracing::warn!(
                    kept = kept.is_ok(),
                    "agent events refused: not valid events"
                );
                tracing::debug!(problem = %e, "what was wrong");
                return error(StatusCode::BAD_REQUEST, &e.to_string());
            }
        };
        match self.store.write_agent_events(&events).await {
            Ok(report) => {
                observe::count(metric::AGENT_EVENTS, u64::from(report.events_new));
                tracing::info!(
                    events_new = report.events_new,
                    events_duplicate = report.events_duplicate,
                    "agent events stored"
                );
                json(
                    StatusCode::OK,
                    serde_json::to_vec(&report).unwrap_or_default(),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(), "agent events not stored");
                if e.is_retryable() {
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage unavailable; send again later",
                    )
                } else {
                    let _ = self
                        .keep_agent_body(body.clone(), now, &e.to_string())
                        .await;
                    error(StatusCode::BAD_REQUEST, &e.to_string())
                }
            }
        }
    }

    /// Every `failed` status of a reply Baton sent becomes an event on the reply's ticket (once:
    /// a repeated status is the same event). Meta delivers the status again if this fails.
    async fn reply_failures(&self, batch: &DeliveryBatch) -> Result<(), StoreError> {
        for status in batch.statuses.iter().filter(|s| s.status == "failed") {
            let Some(data) = serde_json::from_str::<serde_json::Value>(&status.raw)
                .ok()
                .and_then(|v| {
                    v.get("biz_opaque_callback_data")
                        .and_then(|d| d.as_str())
                        .map(str::to_owned)
                })
            else {
                continue;
            };
            let Some((handoff_id, reply)) = parse_callback_data(&data) else {
                continue;
            };
            let event = TicketEvent {
                handoff_id: handoff_id.to_owned(),
                id: format!("rf#{}", status.wamid),
                conversation: status.conversation.clone(),
                received_at_ms: (self.clock)(),
                kind: TicketEventKind::ReplyFailed {
                    reply: reply.to_owned(),
                    wamid: status.wamid.clone(),
                    errors: status.errors.clone(),
                    at: status.timestamp,
                },
            };
            let new = self.store.save_ticket_event(&event).await?;
            tracing::warn!(handoff_id, new, codes = ?status.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
                "WhatsApp could not deliver a rep's reply; the ticket will say so");
        }
        Ok(())
    }

    /// The URLs HubSpot may have signed this request for: the configured public one, and the
    /// host the request names (HTTPS, and plain HTTP for a local run).
    fn signed_uris(&self, req: &Request<Bytes>) -> Vec<String> {
        let path = req
            .uri()
            .path_and_query()
            .map_or(HUBSPOT_EVENTS_PATH, |p| p.as_str());
        let mut uris = Vec::new();
        if let Some(base) = &self.public_base_url {
            uris.push(format!("{base}{path}"));
        }
        if let Some(host) = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            uris.push(format!("https://{host}{path}"));
            uris.push(format!("http://{host}{path}"));
        }
        uris
    }

    async fn hubspot_events(&self, req: Request<Bytes>) -> Response<Bytes> {
        let body = req.body();
        if body.len() > hubspot_webhook::MAX_BODY_BYTES {
            tracing::warn!(bytes = body.len(), "HubSpot events refused: body over 1 MB");
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 1 MB");
        }
        let Some(secrets) = &self.secrets.hubspot_secrets else {
            tracing::warn!("HubSpot events refused: HUBSPOT_APP_SECRET is not configured");
            return error(
                StatusCode::UNAUTHORIZED,
                "HubSpot events are not enabled: HUBSPOT_APP_SECRET is not configured",
            );
        };
        let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
        let now = (self.clock)();
        if let Err(e) = hubspot_webhook::verify_v3(
            secrets,
            req.method().as_str(),
            &self.signed_uris(&req),
            body,
            header(hubspot_webhook::SIGNATURE_HEADER),
            header(hubspot_webhook::TIMESTAMP_HEADER),
            now,
        ) {
            observe::count(metric::DELIVERIES_REFUSED, 1);
            tracing::warn!(reason = %e, "HubSpot events refused: bad signature");
            return error(StatusCode::UNAUTHORIZED, &e.to_string());
        }
        let events = match hubspot_webhook::parse_events(body) {
            Ok(events) => events,
            Err(problem) => {
                let kept = self
                    .keep_body(body.clone(), now, &format!("{HUBSPOT_PROBLEM}{problem}"))
                    .await;
                tracing::warn!(
                    kept = kept.is_ok(),
                    "HubSpot events refused: not a list of events"
                );
                return error(StatusCode::BAD_REQUEST, &problem);
            }
        };
        match store_crm_events(self.store.as_ref(), &events, now).await {
            Ok(report) => {
                observe::count(
                    metric::HUBSPOT_EVENTS,
                    u64::from(report.replies + report.stage_changes),
                );
                json(
                    StatusCode::OK,
                    serde_json::to_vec(&report).unwrap_or_default(),
                )
            }
            Err(err) => store_failed(&err),
        }
    }

    /// Keeps a signed agent-events body that could not be stored as events, for replay.
    async fn keep_agent_body(
        &self,
        body: Bytes,
        now: i64,
        problem: &str,
    ) -> Result<(), StoreError> {
        self.keep_body(body, now, &format!("{AGENT_PROBLEM}{problem}"))
            .await
    }

    /// Keeps a signed body that could not be read, with its problem, for replay.
    async fn keep_body(&self, body: Bytes, now: i64, problem: &str) -> Result<(), StoreError> {
        let batch = DeliveryBatch {
            origin: BatchOrigin::Webhook,
            delivery: RawDelivery {
                id: DeliveryId::of(&body),
                received_at_ms: now,
                body,
                state: ParseState::Unparsed,
                problems: vec![problem.to_owned()],
                errors: Vec::new(),
                ignored_fields: Vec::new(),
                message_count: 0,
                status_count: 0,
            },
            conversations: Vec::new(),
            messages: Vec::new(),
            statuses: Vec::new(),
        };
        self.store.write_batch(&batch).await.map(|_| ())
    }

    /// Stores the raw delivery alone, marked partial with the store's reason, for a later replay.
    async fn keep_for_replay(
        &self,
        batch: DeliveryBatch,
        reason: &str,
    ) -> Result<(DeliveryBatch, WriteReport), StoreError> {
        tracing::error!(delivery = %batch.delivery.id, error = %reason,
            "the store refused the delivery's items; keeping the body for replay");
        let mut delivery = batch.delivery;
        delivery.state = ParseState::Partial;
        delivery
            .problems
            .push(format!("the store refused its items: {reason}"));
        let mut only = DeliveryBatch {
            origin: BatchOrigin::Webhook,
            delivery,
            conversations: Vec::new(),
            messages: Vec::new(),
            statuses: Vec::new(),
        };
        let mut report = self.store.write_batch(&only).await?;
        if !report.delivery_new {
            // Stored before by an attempt that got further: mark that one for replay.
            only.origin = BatchOrigin::Replay;
            report = self.store.write_batch(&only).await?;
        }
        Ok((only, report))
    }
}

/// Stores each reply and stage change of a Baton ticket once, as an event on its handoff.
async fn store_crm_events(
    store: &dyn Store,
    events: &[hubspot_webhook::CrmEvent],
    now: i64,
) -> Result<HubspotReport, StoreError> {
    let mut report = HubspotReport {
        events: events.len(),
        ..HubspotReport::default()
    };
    for e in events {
        let Some(signal) = e.signal() else {
            report.ignored += 1;
            continue;
        };
        let link = match store.ticket_link(&e.ticket_id()).await {
            Ok(Some(link)) => link,
            Ok(None) => {
                report.ignored += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        let (id, kind) = match signal {
            TicketSignal::Reply { text } => (
                format!("rp#{}", e.key()),
                TicketEventKind::Reply {
                    ticket_id: link.ticket_id.clone(),
                    text,
                    occurred_at_ms: e.occurred_at,
                },
            ),
            TicketSignal::Stage { stage } => (
                format!("st#{}", e.key()),
                TicketEventKind::Stage {
                    ticket_id: link.ticket_id.clone(),
                    stage: Some(stage),
                    occurred_at_ms: e.occurred_at,
                },
            ),
            TicketSignal::Deleted => (
                format!("st#{}", e.key()),
                TicketEventKind::Stage {
                    ticket_id: link.ticket_id.clone(),
                    stage: None,
                    occurred_at_ms: e.occurred_at,
                },
            ),
        };
        let is_reply = matches!(kind, TicketEventKind::Reply { .. });
        let event = TicketEvent {
            handoff_id: link.handoff_id.clone(),
            id,
            conversation: link.conversation.clone(),
            received_at_ms: now,
            kind,
        };
        match store.save_ticket_event(&event).await {
            Ok(true) if is_reply => report.replies += 1,
            Ok(true) => report.stage_changes += 1,
            Ok(false) => report.duplicates += 1,
            Err(err) => return Err(err),
        }
        tracing::info!(handoff_id = %link.handoff_id, ticket = %link.ticket_id, kind = event.kind.as_str(), attempt = e.attempt_number, "HubSpot ticket event stored");
    }
    Ok(report)
}

/// The answer when the store failed: 503 so that the sender delivers again.
fn store_failed(e: &StoreError) -> Response<Bytes> {
    tracing::error!(error = %e, retryable = e.is_retryable(), "events not stored; the sender will deliver them again");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; deliver again later",
    )
}

fn log_stored(batch: &DeliveryBatch, report: &WriteReport) {
    let d = &batch.delivery;
    observe::count(metric::DELIVERIES, 1);
    observe::count(
        metric::DUPLICATE_DELIVERIES,
        u64::from(!report.delivery_new),
    );
    observe::count(metric::MESSAGES_NEW, u64::from(report.messages_new));
    observe::count(
        metric::MESSAGES_DUPLICATE,
        u64::from(report.messages_duplicate),
    );
    // Each message by its correlation id (followed through the handoff function's logs) and the
    // customer masked; the wamid holds the customer's number and stays out of the logs.
    for m in &batch.messages {
        tracing::info!(delivery = %d.id, message_ref = %observe::message_ref(&m.wamid),
            customer = %observe::mask_phone(&m.conversation.customer), kind = %m.kind,
            "message received");
    }
    // Parse errors can quote the values they choke on (a phone number, a message's text), so
    // their wording stays at debug; above it, only how many there were.
    match d.state {
        ParseState::Parsed => {}
        ParseState::Ignored => {
            tracing::info!(delivery = %d.id, "delivery kept but ignored: not a WhatsApp notification")
        }
        ParseState::Partial | ParseState::Unparsed => tracing::warn!(
            delivery = %d.id, state = d.state.as_str(), problems = d.problems.len(),
            "delivery kept for replay: not everything in it could be read"
        ),
    }
    if !d.problems.is_empty() {
        tracing::debug!(delivery = %d.id, problems = ?d.problems, "what could not be read");
    }
    for e in &d.errors {
        tracing::warn!(delivery = %d.id, code = e.code, title = e.title.as_deref().unwrap_or_default(),
            "WhatsApp reported an error for the account");
    }
    tracing::info!(
        delivery = %d.id,
        state = d.state.as_str(),
        bytes = d.body.len(),
        duplicate_delivery = !report.delivery_new,
        messages_new = report.messages_new,
        messages_duplicate = report.messages_duplicate,
        statuses_applied = report.statuses_applied,
        statuses_stale = report.statuses_stale,
        store_requests = report.requests,
        "delivery stored"
    );
}

fn stored(batch: &DeliveryBatch, report: &WriteReport) -> Response<Bytes> {
    let d = &batch.delivery;
    let body = Stored {
        delivery: &d.id.0,
        state: d.state.as_str(),
        problems: &d.problems,
        duplicate_delivery: !report.delivery_new,
        messages_new: report.messages_new,
        messages_duplicate: report.messages_duplicate,
        statuses_applied: report.statuses_applied,
        statuses_stale: report.statuses_stale,
    };
    json(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// The answer to a body over 3 MB; also given by servers that stop reading such a body early.
pub fn payload_too_large() -> Response<Bytes> {
    error(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 3 MB")
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Headers every session answer carries: never cached, never framed, never sniffed, no referrer
/// (the link's token stays out of other sites' logs).
fn private(h: &mut header::HeaderMap) {
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, header::HeaderValue::from_static(value));
    }
}

fn html(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    private(h);
    r
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    json(
        status,
        serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
    )
}

/// What a replay run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    pub deliveries: u32,
    /// Deliveries that read completely now.
    pub now_parsed: u32,
    /// Deliveries that still cannot be read completely (they stay listed).
    pub still_unreadable: u32,
    pub messages_new: u32,
    pub statuses_applied: u32,
}

/// Reads every delivery that was kept because it could not be read completely, parses it again
/// with this version of Baton and stores what it now yields. Idempotent: items already stored
/// are not written twice. Deliveries that still fail stay listed for a later replay.
pub async fn replay_deliveries(
    store: &dyn Store,
    limit: usize,
) -> Result<ReplaySummary, StoreError> {
    let mut summary = ReplaySummary::default();
    for id in store.replayable_deliveries(limit).await? {
        let Some(raw) = store.delivery(&id).await? else {
            continue;
        };
        if raw
            .problems
            .first()
            .is_some_and(|p| p.starts_with(AGENT_PROBLEM))
        {
            replay_agent_body(store, raw, &mut summary).await?;
            continue;
        }
        if raw
            .problems
            .first()
            .is_some_and(|p| p.starts_with(HUBSPOT_PROBLEM))
        {
            replay_hubspot_body(store, raw, &mut summary).await?;
            continue;
        }
        let batch = build_batch(raw.body, raw.received_at_ms, BatchOrigin::Replay);
        let report = store.write_batch(&batch).await?;
        summary.deliveries += 1;
        summary.messages_new += report.messages_new;
        summary.statuses_applied += report.statuses_applied;
        if batch.delivery.state.replayable() {
            summary.still_unreadable += 1;
            tracing::warn!(delivery = %id, problems = batch.delivery.problems.len(), "replayed delivery still unreadable");
        } else {
            summary.now_parsed += 1;
        }
    }
    Ok(summary)
}

/// Replays a kept agent-events body: stores its events if it reads now.
async fn replay_agent_body(
    store: &dyn Store,
    mut raw: RawDelivery,
    summary: &mut ReplaySummary,
) -> Result<(), StoreError> {
    summary.deliveries += 1;
    match agent::parse_events(&raw.body, raw.received_at_ms) {
        Ok(events) => {
            let report = store.write_agent_events(&events).await?;
            summary.messages_new += report.events_new;
            summary.now_parsed += 1;
            raw.state = ParseState::Parsed;
            raw.problems.clear();
        }
        Err(e) => {
            summary.still_unreadable += 1;
            raw.problems = vec![format!("{AGENT_PROBLEM}{e}")];
        }
    }
    rewrite_kept(store, raw).await
}

/// Stores a kept body's new state (read now, or still not).
async fn rewrite_kept(store: &dyn Store, raw: RawDelivery) -> Result<(), StoreError> {
    let batch = DeliveryBatch {
        origin: BatchOrigin::Replay,
        delivery: raw,
        conversations: Vec::new(),
        messages: Vec::new(),
        statuses: Vec::new(),
    };
    store.write_batch(&batch).await.map(|_| ())
}

/// Replays a kept HubSpot-events body (its signature was checked when it arrived).
async fn replay_hubspot_body(
    store: &dyn Store,
    mut raw: RawDelivery,
    summary: &mut ReplaySummary,
) -> Result<(), StoreError> {
    summary.deliveries += 1;
    match hubspot_webhook::parse_events(&raw.body) {
        Ok(events) => {
            let report = store_crm_events(store, &events, raw.received_at_ms).await?;
            summary.messages_new += report.replies + report.stage_changes;
            summary.now_parsed += 1;
            raw.state = ParseState::Parsed;
            raw.problems.clear();
        }
        Err(e) => {
            summary.still_unreadable += 1;
            raw.problems = vec![format!("{HUBSPOT_PROBLEM}{e}")];
        }
    }
    rewrite_kept(store, raw).await
}

/// Translates an API Gateway request into the handler's types and back. API Gateway has already
/// decoded a base64-encoded body into its exact bytes.
pub async fn handle_lambda(
    app: &Webhook,
    event: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, std::convert::Infallible> {
    let (parts, body) = event.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    let response = app.handle(Request::from_parts(parts, bytes)).await;
    observe::flush("webhook");
    let (parts, body) = response.into_parts();
    let body = match std::str::from_utf8(&body) {
        Ok(s) => lambda_http::Body::Text(s.to_owned()),
        Err(_) => lambda_http::Body::Binary(body.to_vec()),
    };
    Ok(lambda_http::Response::from_parts(parts, body))
}
