//! Meta's webhook (`/webhook`): the verification handshake (GET) and every signed delivery
//! (POST), stored exactly once: the raw body first, then each message and status.
//!
//! | request | answer |
//! |---|---|
//! | `GET` with `hub.mode=subscribe`, the right verify token and a challenge | 200, the challenge as `text/plain` |
//! | any other `GET` | 403 |
//! | `POST` larger than 3 MB | 413, nothing stored |
//! | `POST` with a missing, duplicated, malformed or wrong `X-Hub-Signature-256` | 401, nothing stored |
//! | signed but empty | 400, nothing stored (there is nothing to keep) |
//! | signed, stored (whether it could be read, partly read, or not at all) | 200 with what was stored |
//! | signed, but the store refuses its items for good | 200; the body alone is kept for replay |
//! | signed, but the store is unavailable | 503, so that Meta delivers it again |
//!
//! A `failed` status of a reply Baton sent (its `biz_opaque_callback_data` names the handoff and
//! the reply) is also stored as a ticket event, so the rep learns of it on the ticket.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use baton_shared::domain::{
    BatchOrigin, DeliveryBatch, ParseState, TicketEvent, TicketEventKind, WriteReport, build_batch,
    parse_callback_data,
};
use baton_shared::observe::{self, metric};
use baton_shared::retry::Classify as _;
use baton_shared::store::StoreError;
use baton_shared::whatsapp::verify_handshake;
use http::StatusCode;
use serde::Serialize;

use crate::Webhook;
use crate::kept::keep_for_replay;
use crate::respond::{json, store_unavailable, text};
use crate::signed::{Meta, Signed};

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

/// `GET /webhook`: Meta's verification handshake.
pub async fn handshake(State(app): State<Arc<Webhook>>, RawQuery(query): RawQuery) -> Response {
    match verify_handshake(query.as_deref().unwrap_or(""), &app.secrets.verify_token) {
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

/// `POST /webhook`: one signed delivery.
pub async fn receive(State(app): State<Arc<Webhook>>, delivery: Signed<Meta>) -> Response {
    let batch = build_batch(delivery.body, app.now(), BatchOrigin::Webhook);
    let written = match app.store.write_batch(&batch).await {
        // Trying again cannot help (an item over the store's limits, say): keep the body
        // for replay instead, so nothing is lost and Meta stops delivering it.
        Err(StoreError::Rejected {
            message: reason, ..
        }) => keep_for_replay(app.store.as_ref(), batch, &reason).await,
        other => other.map(|report| (batch, report)),
    };
    let written = match written {
        Ok((batch, report)) => reply_failures(&app, &batch).await.map(|()| (batch, report)),
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
            store_unavailable()
        }
    }
}

/// Every `failed` status of a reply Baton sent becomes an event on the reply's ticket (once:
/// a repeated status is the same event). Meta delivers the status again if this fails.
async fn reply_failures(app: &Webhook, batch: &DeliveryBatch) -> Result<(), StoreError> {
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
            received_at_ms: app.now(),
            kind: TicketEventKind::ReplyFailed {
                reply: reply.to_owned(),
                wamid: status.wamid.clone(),
                errors: status.errors.clone(),
                at: status.timestamp,
            },
        };
        let new = app.store.save_ticket_event(&event).await?;
        tracing::warn!(handoff_id, new, codes = ?status.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
            "WhatsApp could not deliver a rep's reply; the ticket will say so");
    }
    Ok(())
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
            tracing::info!(delivery = %d.id, "delivery kept but ignored: not a WhatsApp notification");
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

fn stored(batch: &DeliveryBatch, report: &WriteReport) -> Response {
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
    json(StatusCode::OK, &body)
}
