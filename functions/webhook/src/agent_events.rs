//! The AI agent's events (`POST /agent/events`): its replies, reasoning, tool calls and handoff
//! requests, signed with `AGENT_EVENTS_SECRET`, each stored once.
//!
//! | request | answer |
//! |---|---|
//! | larger than 1 MB | 413, nothing stored |
//! | a missing or wrong `X-Baton-Signature-256` (or no `AGENT_EVENTS_SECRET`) | 401, nothing stored |
//! | signed, but not valid events | 400 naming the problem; the body is kept for replay |
//! | signed and valid | 200 with how many events were new and how many seen before |

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use baton_shared::agent;
use baton_shared::observe::{self, metric};
use baton_shared::retry::Classify as _;
use http::StatusCode;

use crate::Webhook;
use crate::kept::{AGENT_PROBLEM, keep_body};
use crate::respond::{error, json};
use crate::signed::{Agent, Signed};

/// `POST /agent/events`.
pub async fn receive(State(app): State<Arc<Webhook>>, events: Signed<Agent>) -> Response {
    let body = events.body;
    let now = app.now();
    // Signed by the agent, so kept when it cannot be stored as events: a later Baton (or a
    // fixed agent) can replay it.
    let keep = |problem: String| {
        keep_body(
            app.store.as_ref(),
            body.clone(),
            now,
            format!("{AGENT_PROBLEM}{problem}"),
        )
    };
    let events = match agent::parse_events(&body, now) {
        Ok(events) => events,
        Err(e) => {
            let kept = keep(e.to_string()).await;
            tracing::warn!(
                kept = kept.is_ok(),
                "agent events refused: not valid events"
            );
            tracing::debug!(problem = %e, "what was wrong");
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    match app.store.write_agent_events(&events).await {
        Ok(report) => {
            observe::count(metric::AGENT_EVENTS, u64::from(report.events_new));
            tracing::info!(
                events_new = report.events_new,
                events_duplicate = report.events_duplicate,
                "agent events stored"
            );
            json(StatusCode::OK, &report)
        }
        Err(e) => {
            tracing::error!(error = %e, retryable = e.is_retryable(), "agent events not stored");
            if e.is_retryable() {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage unavailable; send again later",
                )
            } else {
                let _ = keep(e.to_string()).await;
                error(StatusCode::BAD_REQUEST, &e.to_string())
            }
        }
    }
}
