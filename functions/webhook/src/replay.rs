//! `baton-local replay`: every delivery kept because it could not be read completely (and every
//! kept agent or HubSpot events body) read again with this version of Baton, and what it now
//! yields stored. Idempotent: items already stored are not written twice.

use crate::hubspot_webhook;
use baton_shared::agent;
use baton_shared::domain::{BatchOrigin, ParseState, RawDelivery, build_batch};
use baton_shared::store::{Store, StoreError};
use serde::Serialize;

use crate::hubspot_events::store_crm_events;
use crate::kept::{AGENT_PROBLEM, HUBSPOT_PROBLEM, rewrite_kept};

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
