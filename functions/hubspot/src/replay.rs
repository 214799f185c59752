//! `baton-local hubspot-replay`: every parked or retrying handoff run again, oldest first, then
//! the ticket events parked or retrying on their own.

use baton_shared::store::{HandoffStore, TrailStore};
use tokio::time::Instant;

use crate::deliverer::Deliverer;
use crate::trail::{Delivered, EventDone};

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub done: usize,
    pub parked: usize,
    pub failed: usize,
    /// Each handoff replayed and how it ended (`done`, `parked: …`, `failed: …`).
    pub handoffs: Vec<(String, String)>,
    /// Ticket events (follow-ups, replies, …) run again on their own: done, parked again.
    pub events_done: usize,
    pub events_parked: usize,
    pub events_failed: usize,
}

/// Runs every parked or retrying handoff again, oldest first (`baton-local hubspot-replay`).
pub async fn replay(
    deliverer: &Deliverer,
    handoffs: &dyn HandoffStore,
    trails: &dyn TrailStore,
    deadline: Instant,
) -> ReplayReport {
    let mut report = ReplayReport::default();
    let ids = match trails.unfinished_handoffs(10_000).await {
        Ok(ids) => ids,
        Err(e) => {
            report.failed += 1;
            report.handoffs.push(("*".into(), format!("failed: {e}")));
            return report;
        }
    };
    // The store lists them in no useful order; reps should see the oldest tickets first.
    let mut records = Vec::new();
    for id in ids {
        let missing = match handoffs.handoff(&id).await {
            Ok(Some(record)) => {
                records.push(record);
                continue;
            }
            Ok(None) => "failed: the handoff record is gone".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        report.failed += 1;
        report.handoffs.push((id, missing));
    }
    records.sort_by_key(|r| r.created_at_ms);
    for record in records {
        let outcome = match deliverer.deliver(&record, deadline).await {
            Ok(Delivered::Done(_)) => {
                report.done += 1;
                // What happened on the ticket meanwhile waited for it.
                match deliverer.settle_events(&record.id, deadline).await {
                    Ok((0, 0)) => "done".to_owned(),
                    Ok((done, parked)) => {
                        format!("done; ticket events: {done} done, {parked} parked")
                    }
                    Err(e) => format!("done; ticket events failed: {}", e.log_summary()),
                }
            }
            Ok(Delivered::Parked(t)) => {
                report.parked += 1;
                format!(
                    "parked: {}",
                    t.last_error.map(|e| e.message).unwrap_or_default()
                )
            }
            Err(e) => {
                report.failed += 1;
                format!("failed: {e}")
            }
        };
        report.handoffs.push((record.id, outcome));
    }
    // Events parked or retrying on their own (a refused note, an agent that was down).
    let events = match handoffs.unfinished_events(10_000).await {
        Ok(events) => events,
        Err(e) => {
            report.events_failed += 1;
            tracing::error!(error = %e, "unfinished ticket events could not be listed");
            return report;
        }
    };
    for (handoff_id, id) in events {
        let outcome = match handoffs.ticket_event(&handoff_id, &id).await {
            Ok(Some((event, _))) => deliverer.ticket_event(&event, deadline).await,
            Ok(None) => continue,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(EventDone::Done(_)) => report.events_done += 1,
            Ok(EventDone::Parked(_)) => report.events_parked += 1,
            Err(e) => {
                report.events_failed += 1;
                tracing::warn!(handoff = %handoff_id, error = %e.log_summary(), "ticket event replay failed");
            }
        }
    }
    report
}
