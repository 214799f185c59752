//! WhatsApp's word that a reply Baton sent did not reach the customer: a note on the ticket with
//! the error and what to do (131047: the window closed, a template is needed).

use baton_shared::domain::{EventTrail, TicketEvent, TicketEventKind};
use baton_shared::whatsapp::WaError;

use super::Ctx;
use crate::content;
use crate::deliverer::Deliverer;
use crate::error::HubspotError;

impl Deliverer {
    pub(super) async fn reply_failed(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        reply: &str,
        errors: &[WaError],
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        let text = match self.store.ticket_event(&event.handoff_id, reply).await? {
            Some((
                TicketEvent {
                    kind: TicketEventKind::Reply { text, .. },
                    ..
                },
                _,
            )) => Some(text),
            _ => None,
        };
        let described: Vec<String> = errors
            .iter()
            .map(|e| {
                let what = e
                    .title
                    .clone()
                    .or_else(|| e.message.clone())
                    .unwrap_or_else(|| "no description".into());
                format!("error {} ({what})", e.code)
            })
            .collect();
        let described = if described.is_empty() {
            "WhatsApp reported the message as failed without a reason".to_owned()
        } else {
            described.join("; ")
        };
        let advice = if errors.iter().any(|e| e.code == 131047) {
            match &self.cfg.reply_template {
                Some(t) => format!("More than 24 hours have passed since the customer last wrote, so only an approved template reaches them. Reply again: Baton sends the template “{}” while the window is closed.", t.name),
                None => "More than 24 hours have passed since the customer last wrote, so only an approved template reaches them, and none is configured: set WHATSAPP_REPLY_TEMPLATE, or wait for the customer to write.".to_owned(),
            }
        } else {
            "The customer did not receive it. Check the error in Meta's documentation, then reply again.".to_owned()
        };
        let body = content::failure_note(text.as_deref(), &described, &advice);
        self.event_note(ctx, event, trail, body, None).await
    }
}
