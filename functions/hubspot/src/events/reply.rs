//! A rep's reply from the ticket, sent on WhatsApp at most once: as text inside the customer's
//! 24-hour window, as the configured template outside it, or not at all with the reason; then a
//! note on the ticket, the reply field cleared, and the agent told a person answers.
//!
//! The `send` step is marked before the Graph call, so a crash mid-call leaves a mark that a
//! later run reports on the ticket instead of sending again.

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, Owner, ReplyWindow, Step, StepState, ThreadOwner, TicketEvent,
};
use baton_shared::retry::Classify as _;
use baton_shared::transcript::utc;

use super::{Ctx, one_property};
use crate::config::TemplateParam;
use crate::content::{self, ReplyOutcome};
use crate::deliverer::Deliverer;
use crate::error::HubspotError;
use crate::graph_send::{MAX_TEXT_CHARS, Outgoing, Recipient, SendError};
use crate::portal;

/// The `send` step's mark while the Graph call is under way.
const SENDING: &str = "sending";
/// How a `send` step whose outcome nobody knows starts.
const UNKNOWN: &str = "outcome unknown: ";

/// A template parameter's limit we keep to (Meta refuses long body parameters).
const TEMPLATE_PARAM_CHARS: usize = 1000;

/// Sends Meta refused with a retryable error (throttling, its own failures) before the reply is
/// parked: throttling that outlasts them is not going to lift in the next second, and a retry
/// that never ends holds up what comes after it. A replay starts a fresh count.
pub const MAX_SEND_TRIES: u32 = 5;
/// The step counting them.
const TRIES: &str = "tries";

impl Deliverer {
    pub(super) async fn reply(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        text: &str,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        // The customer's window as it stands now, read once: it decides text or template, and
        // the note says why.
        let window = self
            .store
            .conversation(&ctx.handoff.conversation)
            .await?
            .and_then(|c| c.reply_window());
        if !trail.is_finished("send") {
            let step = if trail.step("send").and_then(|s| s.how.as_deref()) == Some(SENDING) {
                Step::skipped(
                    &format!(
                        "{UNKNOWN}Baton stopped while sending this reply, so it may or may not have reached the customer; it was not sent again to avoid a duplicate — check the session page, then send it again if needed"
                    ),
                    now_ms(),
                )
            } else {
                self.send(ctx, event, text, window, trail).await?
            };
            trail.set("send", step);
            self.save_event(event, trail).await?;
        }
        let send = trail.step("send").cloned().unwrap_or_default();
        let how = send.how.clone().unwrap_or_default();
        let outcome = match send.state {
            StepState::Done if how == "text" => ReplyOutcome::Text,
            StepState::Done => ReplyOutcome::Template {
                name: how.strip_prefix("template ").unwrap_or(&how),
                window_closed_at: window.map(ReplyWindow::closes_at),
            },
            _ => match how.strip_prefix(UNKNOWN) {
                Some(why) => ReplyOutcome::Unknown { why },
                None => ReplyOutcome::NotSent { why: &how },
            },
        };
        let mut body = content::reply_note(text, outcome);
        // A reply that went out while another responder owned the thread took it (Meta's rule
        // for the escalation partner): said on the note, and recorded.
        if send.state == StepState::Done {
            if !trail.is_finished("thread") {
                let how = match ctx.thread {
                    Some(owner) if owner != ThreadOwner::Baton => {
                        self.set_thread_owner(&ctx.handoff.id, ThreadOwner::Baton)
                            .await?;
                        tracing::info!(handoff = %event.handoff_id, "the rep's reply took the WhatsApp thread");
                        owner.as_str()
                    }
                    _ => "",
                };
                trail.set(
                    "thread",
                    Step::done(ThreadOwner::Baton.as_str(), how, now_ms()),
                );
                self.save_event(event, trail).await?;
            }
            let took = trail
                .step("thread")
                .and_then(|s| s.how.as_deref())
                .and_then(ThreadOwner::parse);
            if let Some(from) = took {
                body.push_str(&content::took_thread(from));
            }
        }
        self.event_note(ctx, event, trail, body, None).await?;
        if !trail.is_finished("clear") {
            // Emptying the field fires HubSpot's event again, with no value: it sends nothing.
            self.set_ticket(ctx, "clear", one_property(portal::TICKET_REPLY, ""))
                .await?;
            trail.set("clear", Step::done("", "cleared", now_ms()));
            self.save_event(event, trail).await?;
        }
        if send.state == StepState::Done && !trail.is_finished("owner") {
            self.hand_over(event, Owner::Human).await?;
            trail.set("owner", Step::done(Owner::Human.as_str(), "told", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    /// Sends the reply (or decides not to): the step to record.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        text: &str,
        window: Option<ReplyWindow>,
        trail: &mut EventTrail,
    ) -> Result<Step, HubspotError> {
        let not_sent = |why: String| Ok(Step::skipped(&why, now_ms()));
        let Some(sender) = &self.sender else {
            return not_sent("WHATSAPP_ACCESS_TOKEN is not set, so Baton cannot send on WhatsApp: put the token into the stack's secret".into());
        };
        let customer = &ctx.handoff.customer;
        let Some(to) = Recipient::of(customer) else {
            return not_sent("WhatsApp gave no number or user id for this customer".into());
        };
        let now = now_ms() / 1000;
        let (message, how) = if window.is_some_and(|w| w.is_open_at(now)) {
            if text.chars().count() > MAX_TEXT_CHARS {
                return not_sent(format!(
                    "the reply is {} characters long; WhatsApp takes at most {MAX_TEXT_CHARS} in one message — split it",
                    text.chars().count()
                ));
            }
            (Outgoing::Text(text.to_owned()), "text".to_owned())
        } else {
            let closed = match window {
                Some(w) => format!("closed at {}", utc(w.closes_at())),
                None => "never opened (the customer has not written)".to_owned(),
            };
            let Some(template) = &self.cfg.reply_template else {
                return not_sent(format!(
                    "the 24-hour reply window {closed}, so WhatsApp only delivers approved templates, and none is configured (set WHATSAPP_REPLY_TEMPLATE); nothing was sent"
                ));
            };
            let params = template
                .params
                .iter()
                .map(|p| match p {
                    TemplateParam::CustomerName => customer
                        .profile_name
                        .clone()
                        .unwrap_or_else(|| "there".into()),
                    TemplateParam::TicketId => ctx.ticket_id.to_owned(),
                    TemplateParam::HandoffId => ctx.handoff.id.clone(),
                    TemplateParam::Reply => text.to_owned(),
                })
                .map(|p| template_param(&p))
                .collect();
            (
                Outgoing::Template {
                    name: template.name.clone(),
                    language: template.language.clone(),
                    params,
                },
                format!("template {}", template.name),
            )
        };
        // Marked before the call: a crash from here on must not send it twice.
        trail.set(
            "send",
            Step {
                state: StepState::Pending,
                id: None,
                how: Some(SENDING.into()),
                at_ms: Some(now_ms()),
            },
        );
        self.save_event(event, trail).await?;
        match sender
            .send(
                &ctx.handoff.conversation.phone_number_id,
                &to,
                &message,
                &event.callback_data(),
            )
            .await
        {
            Ok(wamid) => {
                tracing::info!(handoff = %event.handoff_id, how = %how, "reply sent on WhatsApp");
                Ok(Step::done(wamid, &how, now_ms()))
            }
            Err(e) if e.is_retryable() => {
                // Not sent: the next run may send it, up to the bound; then it parks with the
                // reason and a replay (after the throttle lifts) starts counting again.
                let tries = trail
                    .step(TRIES)
                    .and_then(|s| s.id.as_deref())
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0)
                    + 1;
                let parked = tries >= MAX_SEND_TRIES;
                let count = if parked { 0 } else { tries };
                trail.set("send", Step::default());
                trail.set(
                    TRIES,
                    Step::done(count.to_string(), "retryable refusals", now_ms()),
                );
                self.save_event(event, trail).await?;
                let message = if parked {
                    format!(
                        "{e}; WhatsApp refused {tries} tries in a row, so the reply is parked: run baton-local hubspot-replay once it accepts messages again, which sends it once"
                    )
                } else {
                    e.to_string()
                };
                Err(HubspotError::Peer {
                    step: "send",
                    message,
                    retryable: !parked,
                })
            }
            Err(e @ SendError::Unknown(_)) => not_sent(format!(
                "{UNKNOWN}{e}; the reply may or may not have reached the customer and was not sent again — check the session page"
            )),
            Err(e) if e.not_thread_owner() => not_sent(format!(
                "{e} — Meta's Conversation Routing does not let Baton reply in this thread: in Meta Business Suite > Settings > Conversation routing make Baton's app the escalation partner (its replies then take the thread), or have the AI agent pass the thread to it. Not retried: sending again cannot help until that changes"
            )),
            Err(e) => not_sent(e.to_string()),
        }
    }
}

/// A template body parameter as Meta takes it: no new-lines, no tabs, no more than four spaces
/// in a row (all white space runs become one space), and at most [`TEMPLATE_PARAM_CHARS`].
fn template_param(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    clip(&collapsed, TEMPLATE_PARAM_CHARS)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}
