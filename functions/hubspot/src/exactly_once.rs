//! Creates that happen once: a later run looks before it creates again (the ticket by its unique
//! handoff id, a note by the marker in its body among the ticket's notes), and a create whose
//! answer was lost (timeout, 5xx) or whose unique value is taken is looked up before anything is
//! sent again.

use baton_shared::domain::{Step, StepState};
use serde_json::Value;
use tokio::time::Instant;

use crate::api::{self, Association, NewNote, Object};
use crate::client::{HubspotClient, json_id};
use crate::error::HubspotError;
use crate::portal::{self, Portal};
use crate::transport::Call;

/// Creates with `call` unless a previous run (`retried`) did already, as `lookup` finds out.
pub(crate) async fn create_once(
    client: &HubspotClient,
    call: &Call,
    lookup: Lookup<'_>,
    retried: bool,
    deadline: Instant,
) -> Result<(String, &'static str), HubspotError> {
    if retried && let Some(id) = lookup.find(client, deadline).await? {
        return Ok((id, "found_on_retry"));
    }
    create_or_find(client, call, lookup, deadline).await
}

/// A note for a ticket (and its contact), with the marker a later run finds it by at the end of
/// its body.
pub(crate) struct TicketNote<'a> {
    pub ticket_id: &'a str,
    pub contact_id: Option<&'a str>,
    pub at_ms: i64,
    pub body: &'a str,
    pub attachments: &'a [String],
    pub marker: &'a str,
    /// When an earlier run was about to post this note (unix ms), if one was: HubSpot may still
    /// carry that post out, so this run looks for the note until [`HubspotClient::settle`] has
    /// passed since then before it posts.
    pub in_flight_since_ms: Option<i64>,
}

/// A note step's mark while its create may be under way (see [`TicketNote::in_flight_since_ms`]).
const CREATING: &str = "creating";

/// The mark a note step gets just before its note is posted.
pub(crate) fn creating() -> Step {
    Step {
        state: StepState::Pending,
        id: None,
        how: Some(CREATING.into()),
        at_ms: Some(baton_shared::clock::now_ms()),
    }
}

/// When an earlier run marked `step` as posting its note, if it did.
pub(crate) fn creating_since(step: &Step) -> Option<i64> {
    (step.state == StepState::Pending && step.how.as_deref() == Some(CREATING))
        .then_some(step.at_ms)
        .flatten()
}

/// Posts `note` once; its id and how it was made (or found).
pub(crate) async fn note_once(
    client: &HubspotClient,
    portal: &Portal,
    note: &TicketNote<'_>,
    retried: bool,
    deadline: Instant,
) -> Result<(String, &'static str), HubspotError> {
    let mut associations = vec![Association::new(note.ticket_id, portal.note_to_ticket)];
    if let Some(contact) = note.contact_id {
        associations.push(Association::new(contact, portal.note_to_contact));
    }
    let call = api::create_note(
        "note",
        &NewNote {
            at_ms: note.at_ms,
            body: note.body,
            attachments: note.attachments,
            associations,
        },
    );
    let lookup = Lookup::Note {
        ticket_id: note.ticket_id,
        marker: note.marker,
    };
    if let Some(since) = note.in_flight_since_ms {
        let left =
            (since + client.settle.as_millis() as i64 - baton_shared::clock::now_ms()).max(0);
        let wait = std::time::Duration::from_millis(left as u64);
        if let Some(id) = look_for(client, lookup, wait, deadline).await? {
            return Ok((id, "found_on_retry"));
        }
    }
    create_once(client, &call, lookup, retried, deadline).await
}

/// Looks for what a lost create may yet make, until `wait` has passed (or the deadline).
async fn look_for(
    client: &HubspotClient,
    lookup: Lookup<'_>,
    wait: std::time::Duration,
    deadline: Instant,
) -> Result<Option<String>, HubspotError> {
    let until = (Instant::now() + wait).min(deadline);
    loop {
        if let Some(id) = lookup.find(client, deadline).await? {
            return Ok(Some(id));
        }
        let now = Instant::now();
        if now >= until {
            return Ok(None);
        }
        tokio::time::sleep((until - now).min(std::time::Duration::from_millis(500))).await;
    }
}

/// Creates with `call`; when the outcome is unknown or a unique value is taken, `lookup` says
/// whether the object exists before anything is sent again.
async fn create_or_find(
    client: &HubspotClient,
    call: &Call,
    lookup: Lookup<'_>,
    deadline: Instant,
) -> Result<(String, &'static str), HubspotError> {
    let mut attempt = 0;
    loop {
        match client.call(call, deadline).await {
            Ok(a) if a.is_success() => {
                return a
                    .id()
                    .map(|id| (id, "created"))
                    .ok_or_else(|| a.rejected(call.step));
            }
            Ok(a) if a.status == 409 || is_unique_violation(&a.body) => {
                return match lookup.find(client, deadline).await? {
                    Some(id) => Ok((id, "conflict")),
                    None => Err(a.rejected(call.step)),
                };
            }
            Ok(a) => return Err(a.rejected(call.step)),
            Err(e @ HubspotError::Uncertain { .. }) => {
                // A note has nothing unique HubSpot would refuse a second one for: keep looking
                // while HubSpot may still carry the first out.
                let wait = match lookup {
                    Lookup::Note { .. } => client.settle,
                    Lookup::Ticket { .. } => std::time::Duration::ZERO,
                };
                if let Some(id) = look_for(client, lookup, wait, deadline).await? {
                    return Ok((id, "found_after_timeout"));
                }
                attempt += 1;
                if !client.backoff.pause(attempt - 1, deadline).await {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether HubSpot refused a write because a unique property's value is taken.
pub fn is_unique_violation(body: &Value) -> bool {
    let text = body.to_string().to_ascii_lowercase();
    text.contains("already has that value")
        || text.contains("unique")
        || text.contains("object_already_exists")
}

/// How an object a create may already have made is found.
#[derive(Clone, Copy)]
pub(crate) enum Lookup<'a> {
    /// By the ticket's unique handoff id.
    Ticket { handoff_id: &'a str },
    /// By the marker in the note's body, among the ticket's notes.
    Note { ticket_id: &'a str, marker: &'a str },
}

impl Lookup<'_> {
    pub(crate) async fn find(
        self,
        client: &HubspotClient,
        deadline: Instant,
    ) -> Result<Option<String>, HubspotError> {
        match self {
            Self::Ticket { handoff_id } => {
                client
                    .find_by_unique(
                        api::read_by_unique(
                            "ticket",
                            Object::Tickets,
                            handoff_id,
                            portal::TICKET_HANDOFF_ID,
                            &[],
                        ),
                        deadline,
                    )
                    .await
            }
            Self::Note { ticket_id, marker } => {
                find_note(client, ticket_id, marker, deadline).await
            }
        }
    }
}

/// The note a previous run posted on the ticket, found by its marker among the ticket's notes.
async fn find_note(
    client: &HubspotClient,
    ticket_id: &str,
    marker: &str,
    deadline: Instant,
) -> Result<Option<String>, HubspotError> {
    let associated = client
        .results(
            &api::ticket_associations("note", ticket_id, Object::Notes),
            deadline,
        )
        .await?;
    let ids: Vec<String> = associated
        .iter()
        .filter_map(|a| json_id(a.get("toObjectId")))
        .collect();
    for chunk in ids.chunks(100) {
        let notes = client
            .results(
                &api::batch_read("note", Object::Notes, chunk, &["hs_note_body"]),
                deadline,
            )
            .await?;
        let found = notes.iter().find(|n| {
            n.pointer("/properties/hs_note_body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(marker))
        });
        if let Some(note) = found {
            return Ok(json_id(note.get("id")));
        }
    }
    Ok(None)
}
