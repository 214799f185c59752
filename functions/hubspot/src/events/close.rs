//! A closed (or deleted) ticket ends the conversation's episode, and the agent is told it may
//! answer again.

use baton_shared::clock::now_ms;
use baton_shared::domain::{EventTrail, Owner, Step, TicketEvent};

use super::Ctx;

use crate::deliverer::Deliverer;
use crate::error::HubspotError;

impl Deliverer {
    /// A closed (or deleted) ticket ends the conversation's episode: the next request for a
    /// person opens a new handoff and a new ticket; the agent is told it may answer again.
    pub(super) async fn close(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        let handoff = ctx.handoff;
        if !trail.is_finished("close") {
            let closed = self
                .store
                .close_episode(&handoff.conversation, handoff.episode)
                .await?;
            tracing::info!(handoff = %handoff.id, closed, "the ticket was closed: the handoff's episode ends");
            trail.set(
                "close",
                Step::done(
                    handoff.episode.to_string(),
                    if closed { "closed" } else { "already_closed" },
                    now_ms(),
                ),
            );
            self.save_event(event, trail).await?;
        }
        if !trail.is_finished("owner") {
            self.hand_over(event, Owner::Agent).await?;
            trail.set("owner", Step::done(Owner::Agent.as_str(), "told", now_ms()));
            self.save_event(event, trail).await?;
        }
        self.hand_back(ctx, event, trail).await
    }
}
