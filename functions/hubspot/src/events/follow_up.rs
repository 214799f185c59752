//! A customer's message after the handoff: its file uploaded, a note on the ticket, and the
//! ticket's reply-window deadline moved to the new one.

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, HandoffRecord, MediaRecord, MediaState, MessageRecord, Step, StepState,
    TicketEvent, TimelineEntry,
};
use baton_shared::transcript::{Transcript, utc};

use super::{Ctx, one_property};
use crate::content;
use crate::deliverer::{Deliverer, content_type_of, hubspot_file_name};
use crate::error::HubspotError;
use crate::portal;

impl Deliverer {
    pub(super) async fn follow_up(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        message: &MessageRecord,
        media: Option<&MediaRecord>,
        window: Option<i64>,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        // The file, as the handoff's files are uploaded.
        if let Some(m) = media
            && !trail.is_finished("file")
        {
            let step = self.follow_up_file(ctx, m).await?;
            trail.set("file", step);
            self.save_event(event, trail).await?;
        }
        let file_step = trail.step("file").cloned();
        let file = media.zip(file_step.as_ref()).map(|(m, s)| {
            (
                m.filename.as_str(),
                match s.state {
                    StepState::Done => Ok(()),
                    _ => Err(s.how.as_deref().unwrap_or("not attached")),
                },
            )
        });
        let text = line_of(ctx.handoff, message);
        let body = content::follow_up_note(ctx.handoff, message.timestamp, &text, file, window);
        let attachment = file_step.as_ref().and_then(|s| s.id.clone());
        self.event_note(ctx, event, trail, body, attachment.as_deref())
            .await?;
        // The ticket's deadline moves with the customer's last message.
        if let Some(closes) = window
            && !trail.is_finished("window")
        {
            let value = (closes * 1000).to_string();
            self.set_ticket(ctx, "window", one_property(portal::TICKET_WINDOW, &value))
                .await?;
            trail.set("window", Step::done(utc(closes), "updated", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    /// The follow-up's file in HubSpot Files, or why it is not there.
    async fn follow_up_file(&self, ctx: &Ctx<'_>, m: &MediaRecord) -> Result<Step, HubspotError> {
        let (MediaState::Copied, Some(key)) = (m.state, &m.key) else {
            return Ok(Step::skipped(
                &format!(
                    "not copied from WhatsApp: {}",
                    m.error.as_deref().unwrap_or("unknown error")
                ),
                now_ms(),
            ));
        };
        let name = hubspot_file_name(m);
        match self
            .upload(
                ctx.client,
                ctx.handoff,
                key,
                &name,
                &content_type_of(m),
                ctx.deadline,
            )
            .await
        {
            Ok(id) => Ok(Step::done(id, "uploaded", now_ms())),
            Err(e) if e.skips_file() => Ok(Step::skipped(&e.to_string(), now_ms())),
            Err(e) => Err(e),
        }
    }
}

/// The message as the transcript writes it.
fn line_of(handoff: &HandoffRecord, message: &MessageRecord) -> String {
    let mut t = Transcript::new("", &handoff.customer.name()).keeping_lines();
    t.push(&TimelineEntry::Message(message.clone()));
    t.take_lines()
        .iter()
        .map(|l| {
            // The file itself is attached to the note; the line keeps what surrounds it.
            let (before, _, after) = l.parts();
            format!("{before}{after}").trim().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
