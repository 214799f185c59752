//! HubSpot's webhook (`POST /hubspot/events`): a rep's reply written into the ticket's reply
//! property, a ticket's stage change or deletion, signed with the app's client secret
//! (`X-HubSpot-Signature-v3`). Each one about a Baton ticket is stored once as a ticket event.
//!
//! | request | answer |
//! |---|---|
//! | a missing, stale (over 5 minutes) or wrong signature (or no `HUBSPOT_APP_SECRET`) | 401, nothing stored |
//! | signed, but not a list of events | 400; the body is kept for replay |
//! | signed | 200; each reply or stage change of a Baton ticket stored once as a ticket event |

use std::sync::Arc;

use crate::hubspot_webhook::{self, TicketSignal};
use axum::extract::State;
use axum::response::Response;
use baton_shared::domain::{TicketEvent, TicketEventKind};
use baton_shared::observe::{self, metric};
use baton_shared::retry::Classify as _;
use baton_shared::store::{Store, StoreError};
use http::StatusCode;
use serde::Serialize;

use crate::Webhook;
use crate::kept::{HUBSPOT_PROBLEM, keep_body};
use crate::respond::{error, json};
use crate::signed::{Hubspot, Signed};

/// What a HubSpot webhook request became.
#[derive(Debug, Default, Serialize)]
pub(crate) struct HubspotReport {
    events: usize,
    pub replies: u32,
    pub stage_changes: u32,
    duplicates: u32,
    /// Events about other properties, other objects or tickets that are not Baton's.
    ignored: u32,
}

/// `POST /hubspot/events`.
pub async fn receive(State(app): State<Arc<Webhook>>, events: Signed<Hubspot>) -> Response {
    let now = app.now();
    let events = match hubspot_webhook::parse_events(&events.body) {
        Ok(parsed) => parsed,
        Err(problem) => {
            let kept = keep_body(
                app.store.as_ref(),
                events.body,
                now,
                format!("{HUBSPOT_PROBLEM}{problem}"),
            )
            .await;
            tracing::warn!(
                kept = kept.is_ok(),
                "HubSpot events refused: not a list of events"
            );
            return error(StatusCode::BAD_REQUEST, &problem);
        }
    };
    match store_crm_events(app.store.as_ref(), &events, now).await {
        Ok(report) => {
            observe::count(
                metric::HUBSPOT_EVENTS,
                u64::from(report.replies + report.stage_changes),
            );
            json(StatusCode::OK, &report)
        }
        Err(e) => {
            tracing::error!(error = %e, retryable = e.is_retryable(), "events not stored; the sender will deliver them again");
            crate::respond::store_unavailable()
        }
    }
}

/// Stores each reply and stage change of a Baton ticket once, as an event on its handoff.
pub(crate) async fn store_crm_events(
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
