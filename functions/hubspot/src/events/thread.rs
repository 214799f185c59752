//! The WhatsApp thread under Meta's Conversation Routing: a note when another partner takes it,
//! and the hand-back when the ticket closes (`pass` to the AI agent or `release`, as
//! `WHATSAPP_THREAD_HANDBACK` says). Meta reports neither of Baton's own moves back to it, so
//! Baton records them on the handoff's trail.

use baton_shared::clock::now_ms;
use baton_shared::domain::{EventTrail, Step, ThreadOwner, TicketEvent};
use baton_shared::retry::Classify as _;

use super::Ctx;
use crate::config::Handback;
use crate::content;
use crate::deliverer::Deliverer;
use crate::error::HubspotError;
use crate::graph_send::{Recipient, ThreadAction};

/// Meta makes a thread idle after 24 hours without a customer message.
const IDLE_AFTER_SECS: i64 = 24 * 3600;

impl Deliverer {
    pub(super) async fn thread_taken(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        text: &str,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        self.set_thread_owner(&ctx.handoff.id, ThreadOwner::Other)
            .await?;
        self.event_note(ctx, event, trail, content::thread_taken_note(text), None)
            .await
    }

    /// Gives the thread back when Baton owns it: retried while Meta is unavailable, parked with
    /// Meta's reason when it refuses.
    pub(super) async fn hand_back(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        if trail.is_finished("thread") {
            return Ok(());
        }
        let (handoff, owner) = (ctx.handoff, ctx.thread);
        let last_heard = self
            .store
            .conversation(&handoff.conversation)
            .await?
            .and_then(|c| c.last_inbound_at);
        let idle = last_heard.is_some_and(|at| now_ms() / 1000 - at >= IDLE_AFTER_SECS);
        let action = match self.cfg.handback {
            Handback::Release => ThreadAction::Release,
            Handback::PassToAi => ThreadAction::PassToAi,
            Handback::Off => {
                trail.set(
                    "thread",
                    Step::skipped("WHATSAPP_THREAD_HANDBACK is off", now_ms()),
                );
                return self.save_event(event, trail).await;
            }
        };
        let skip = match owner {
            Some(ThreadOwner::Baton) if idle => {
                Some("the thread went idle after 24 hours without a customer message")
            }
            Some(ThreadOwner::Baton) => None,
            Some(_) => Some("Baton does not own the thread"),
            None => Some("Conversation Routing is not in use in this conversation"),
        };
        if let Some(why) = skip {
            trail.set("thread", Step::skipped(why, now_ms()));
            if idle {
                self.set_thread_owner(&handoff.id, ThreadOwner::Idle)
                    .await?;
            }
            return self.save_event(event, trail).await;
        }
        let Some(sender) = &self.sender else {
            return Err(HubspotError::Peer {
                step: "thread",
                message: "WHATSAPP_ACCESS_TOKEN is not set, so Baton cannot give the WhatsApp thread back".into(),
                retryable: false,
            });
        };
        let Some(to) = Recipient::of(&handoff.customer) else {
            trail.set(
                "thread",
                Step::skipped(
                    "WhatsApp gave no number or user id for this customer",
                    now_ms(),
                ),
            );
            return self.save_event(event, trail).await;
        };
        let metadata = format!("HubSpot ticket for handoff {} closed", handoff.id);
        match sender
            .thread_control(
                &handoff.conversation.phone_number_id,
                &to,
                action,
                &metadata,
            )
            .await
        {
            Ok(()) => {
                let now_owner = match action {
                    ThreadAction::PassToAi => ThreadOwner::Primary,
                    ThreadAction::Release => ThreadOwner::Idle,
                };
                self.set_thread_owner(&handoff.id, now_owner).await?;
                tracing::info!(handoff = %handoff.id, action = action.as_str(), "the WhatsApp thread was handed back");
                trail.set(
                    "thread",
                    Step::done(action.as_str(), "handed_back", now_ms()),
                );
                self.save_event(event, trail).await
            }
            Err(e) => {
                let advice = if e.not_thread_owner() {
                    " — Baton does not own the thread any more, or is not allowed to pass it: check Meta Business Suite > Settings > Conversation routing"
                } else {
                    ""
                };
                Err(HubspotError::Peer {
                    step: "thread",
                    message: format!(
                        "giving the WhatsApp thread back ({}): {e}{advice}",
                        action.as_str()
                    ),
                    retryable: e.is_retryable(),
                })
            }
        }
    }
}
