//! Who answers the customer now: the ownership event stored once per handoff and owner, and its
//! run, which tells the AI agent (the signed POST to `AGENT_WEBHOOK_URL`).

use baton_shared::clock::now_ms;
use baton_shared::domain::{EventTrail, HandoffRecord, Owner, Step, TicketEvent, TicketEventKind};
use serde_json::json;

use crate::deliverer::Deliverer;
use crate::error::HubspotError;

impl Deliverer {
    /// Stores the ownership event (once per handoff and owner); its own run tells the agent.
    pub(super) async fn hand_over(
        &self,
        event: &TicketEvent,
        owner: Owner,
    ) -> Result<(), HubspotError> {
        let ownership = TicketEvent {
            handoff_id: event.handoff_id.clone(),
            id: TicketEvent::ownership_id(owner),
            conversation: event.conversation.clone(),
            received_at_ms: now_ms(),
            kind: TicketEventKind::Ownership { owner },
        };
        self.store.save_ticket_event(&ownership).await?;
        Ok(())
    }

    pub(super) async fn tell_agent(
        &self,
        event: &TicketEvent,
        handoff: &HandoffRecord,
        ticket_id: Option<&str>,
        owner: Owner,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        if trail.is_finished("agent") {
            return Ok(());
        }
        let Some(agent) = &self.agent else {
            if self.cfg.agent_webhook.is_some() {
                return Err(HubspotError::config(
                    "agent",
                    "AGENT_WEBHOOK_URL is set but AGENT_EVENTS_SECRET (which signs what the agent is told) is not: set it, then replay",
                ));
            }
            trail.set(
                "agent",
                Step::skipped("AGENT_WEBHOOK_URL is not set", now_ms()),
            );
            return self.save_event(event, trail).await;
        };
        let body = json!({
            "type": "baton.owner_changed",
            "id": format!("{}|{}", event.handoff_id, event.id),
            "owner": owner.as_str(),
            "reason": match owner {
                Owner::Human => "a person replied from the HubSpot ticket; stay quiet in this conversation",
                Owner::Agent => "the HubSpot ticket was closed; you may answer this conversation again",
            },
            "handoff_id": handoff.id,
            "ticket_id": ticket_id,
            "conversation": {
                "phone_number_id": handoff.conversation.phone_number_id,
                "customer": handoff.conversation.customer,
            },
            "at": event.received_at_ms,
        });
        agent
            .notify(body.to_string().into_bytes())
            .await
            .map_err(|e| HubspotError::Peer {
                step: "agent",
                message: e.to_string(),
                retryable: e.retryable,
            })?;
        tracing::info!(handoff = %handoff.id, owner = owner.as_str(), "the AI agent was told who answers");
        trail.set("agent", Step::done(owner.as_str(), "told", now_ms()));
        self.save_event(event, trail).await
    }
}
