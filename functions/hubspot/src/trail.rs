//! The trail bookkeeping of a run: how a handoff's or a ticket event's run ended, what its trail
//! records when it fails, and saving it after each step (a retry resumes at the next step).

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, HubspotTrail, ThreadOwner, TicketEvent, TrailError, TrailStatus,
};
use baton_shared::retry::Classify as _;

use crate::deliverer::Deliverer;
use crate::error::HubspotError;

/// How a handoff's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Done(HubspotTrail),
    /// Refused by HubSpot or misconfigured: kept on the trail with the reason, not retried.
    Parked(HubspotTrail),
}

/// How a ticket event's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDone {
    Done(EventTrail),
    /// Refused or misconfigured: kept on the event's trail with the reason.
    Parked(EventTrail),
}

/// What a trail records when a run fails: retrying or parked, and why.
pub fn failed(e: &HubspotError) -> (TrailStatus, Option<TrailError>) {
    let status = if e.is_retryable() {
        TrailStatus::Retrying
    } else {
        TrailStatus::Parked
    };
    (status, Some(trail_error(e)))
}

/// The failure a trail keeps.
fn trail_error(e: &HubspotError) -> TrailError {
    TrailError {
        step: e.step().to_owned(),
        message: e.to_string(),
        status: e.status(),
        correlation_id: e.correlation_id().map(str::to_owned),
        retryable: e.is_retryable(),
        at_ms: now_ms(),
    }
}

impl Deliverer {
    /// Saves a handoff's trail as it stands.
    pub(crate) async fn save(
        &self,
        id: &str,
        trail: &mut HubspotTrail,
    ) -> Result<(), HubspotError> {
        trail.updated_at_ms = now_ms();
        self.store.save_trail(id, trail).await?;
        Ok(())
    }

    /// Records who owns the handoff's WhatsApp thread now.
    pub(crate) async fn set_thread_owner(
        &self,
        handoff_id: &str,
        owner: ThreadOwner,
    ) -> Result<(), HubspotError> {
        let mut trail = self.store.trail(handoff_id).await?.unwrap_or_default();
        if trail.thread != Some(owner) {
            trail.thread = Some(owner);
            self.save(handoff_id, &mut trail).await?;
        }
        Ok(())
    }

    /// Saves a ticket event's trail as it stands.
    pub(crate) async fn save_event(
        &self,
        event: &TicketEvent,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        trail.updated_at_ms = now_ms();
        self.store
            .save_event_trail(&event.handoff_id, &event.id, trail)
            .await?;
        Ok(())
    }
}
