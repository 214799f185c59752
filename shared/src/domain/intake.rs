//! Turns a verified delivery body into the records to store. Pure: the same bytes and arrival
//! time always give the same batch, which is what makes replays and retries safe.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

use bytes::Bytes;

use super::records::*;
use crate::whatsapp::{Contact, MessageHead, MessagesValue, Notification, Status};

/// Meta's largest delivery is 3 MB; anything larger is refused before it is read further.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// At most this many problems are listed per delivery (the rest are counted), so a body full of
/// broken items still fits one stored item.
pub const MAX_PROBLEMS_LISTED: usize = 50;

const WABA: &str = "whatsapp_business_account";

/// Parses `body` and builds every record it produces. Never fails: what cannot be read is
/// described in the delivery's `state` and `problems`, and the body is kept whole.
pub fn build_batch(body: Bytes, received_at_ms: i64, origin: BatchOrigin) -> DeliveryBatch {
    let mut builder = Builder {
        received_at_ms,
        delivery_id: DeliveryId::of(&body),
        problems: Vec::new(),
        errors: Vec::new(),
        ignored_fields: Vec::new(),
        conversations: HashMap::new(),
        conversation_order: Vec::new(),
        messages: Vec::new(),
        message_ids: HashMap::new(),
        statuses: Vec::new(),
        status_ids: HashMap::new(),
        message_count: 0,
        status_count: 0,
    };
    let state = match serde_json::from_slice::<Notification<'_>>(&body) {
        Err(e) => {
            builder
                .problems
                .push(format!("body is not a WhatsApp notification: {e}"));
            ParseState::Unparsed
        }
        Ok(n) if n.object != WABA => {
            builder
                .problems
                .push(format!("object is {:?}, not {WABA:?}", n.object));
            ParseState::Ignored
        }
        Ok(n) => {
            builder.read(&n);
            if builder.problems.is_empty() {
                ParseState::Parsed
            } else {
                ParseState::Partial
            }
        }
    };
    builder.finish(body, state, origin)
}

struct Builder {
    received_at_ms: i64,
    delivery_id: DeliveryId,
    problems: Vec<String>,
    errors: Vec<crate::whatsapp::WaError>,
    ignored_fields: Vec<String>,
    conversations: HashMap<ConversationKey, Conversation>,
    conversation_order: Vec<ConversationKey>,
    messages: Vec<MessageRecord>,
    message_ids: HashMap<String, usize>,
    statuses: Vec<StatusRecord>,
    status_ids: HashMap<String, usize>,
    message_count: u32,
    status_count: u32,
}

impl Builder {
    fn read(&mut self, n: &Notification<'_>) {
        for (e, entry) in n.entry.iter().enumerate() {
            for (c, change) in entry.changes.iter().enumerate() {
                if change.field != "messages" {
                    if !self.ignored_fields.contains(&change.field) {
                        self.ignored_fields.push(change.field.clone());
                    }
                    continue;
                }
                let Some(raw) = change.value else {
                    self.problems
                        .push(format!("entry[{e}].changes[{c}] has no value"));
                    continue;
                };
                match serde_json::from_str::<MessagesValue<'_>>(raw.get()) {
                    Ok(value) => self.read_value(&value, e, c),
                    Err(err) => self
                        .problems
                        .push(format!("entry[{e}].changes[{c}].value: {err}")),
                }
            }
        }
    }

    fn read_value(&mut self, value: &MessagesValue<'_>, e: usize, c: usize) {
        let pnid = &value.metadata.phone_number_id;
        self.errors.extend(value.errors.iter().cloned());
        for (m, raw) in value.messages.iter().enumerate() {
            let at = || format!("entry[{e}].changes[{c}].value.messages[{m}]");
            let head = match serde_json::from_str::<MessageHead>(raw.get()) {
                Ok(h) if !h.id.is_empty() => h,
                Ok(_) => {
                    self.problems.push(format!("{}: no message id", at()));
                    continue;
                }
                Err(err) => {
                    self.problems.push(format!("{}: {err}", at()));
                    continue;
                }
            };
            let contact = sender_contact(
                &value.contacts,
                head.from.as_deref(),
                head.from_user_id.as_deref(),
            );
            let Some(customer) = head
                .from_user_id
                .clone()
                .or_else(|| contact.and_then(|c| c.user_id.clone()))
                .or_else(|| head.from.clone())
                .or_else(|| contact.and_then(|c| c.wa_id.clone()))
            else {
                self.problems
                    .push(format!("{}: message {} names no sender", at(), head.id));
                continue;
            };
            let key = ConversationKey::new(pnid.as_str(), customer);
            let kind = head.kind.clone().unwrap_or_default();
            // System notices (number or identity changes) are not the customer writing.
            let inbound_at = (kind != "system").then_some(head.timestamp);
            self.touch(
                &key,
                value,
                contact,
                head.from.as_deref(),
                head.from_user_id.as_deref(),
                inbound_at,
            );
            self.message_count += 1;
            if let MapEntry::Vacant(slot) = self.message_ids.entry(head.id.clone()) {
                slot.insert(self.messages.len());
                self.messages.push(MessageRecord {
                    conversation: key,
                    wamid: head.id,
                    timestamp: head.timestamp,
                    kind,
                    received_at_ms: self.received_at_ms,
                    seq: self.message_count,
                    delivery_id: self.delivery_id.clone(),
                    raw: raw.get().to_owned(),
                });
            }
        }
        for (s, raw) in value.statuses.iter().enumerate() {
            let status = match serde_json::from_str::<Status>(raw.get()) {
                Ok(st) if !st.id.is_empty() => st,
                Ok(_) => {
                    self.problems.push(format!(
                        "entry[{e}].changes[{c}].value.statuses[{s}]: no message id"
                    ));
                    continue;
                }
                Err(err) => {
                    self.problems.push(format!(
                        "entry[{e}].changes[{c}].value.statuses[{s}]: {err}"
                    ));
                    continue;
                }
            };
            let contact = sender_contact(
                &value.contacts,
                status.recipient_id.as_deref(),
                status.recipient_user_id.as_deref(),
            );
            let Some(customer) = status
                .recipient_user_id
                .clone()
                .or_else(|| contact.and_then(|c| c.user_id.clone()))
                .or_else(|| status.recipient_id.clone())
            else {
                self.problems.push(format!(
                    "entry[{e}].changes[{c}].value.statuses[{s}]: status of {} names no recipient",
                    status.id
                ));
                continue;
            };
            let key = ConversationKey::new(pnid.as_str(), customer);
            if contact.is_some() {
                self.touch(
                    &key,
                    value,
                    contact,
                    status.recipient_id.as_deref(),
                    status.recipient_user_id.as_deref(),
                    None,
                );
            }
            self.status_count += 1;
            let record = StatusRecord {
                conversation: key,
                wamid: status.id.clone(),
                rank: status.status.rank(),
                status: status.status.as_str().to_owned(),
                timestamp: status.timestamp,
                errors: status.errors,
                received_at_ms: self.received_at_ms,
                delivery_id: self.delivery_id.clone(),
                raw: raw.get().to_owned(),
            };
            // One item per message: keep the furthest status this delivery reports.
            match self.status_ids.entry(status.id) {
                MapEntry::Vacant(slot) => {
                    slot.insert(self.statuses.len());
                    self.statuses.push(record);
                }
                MapEntry::Occupied(slot) => {
                    let kept = &mut self.statuses[*slot.get()];
                    if record.rank > kept.rank {
                        *kept = record;
                    }
                }
            }
        }
    }

    fn touch(
        &mut self,
        key: &ConversationKey,
        value: &MessagesValue<'_>,
        contact: Option<&Contact>,
        wa_id: Option<&str>,
        user_id: Option<&str>,
        inbound_at: Option<i64>,
    ) {
        let touch = match self.conversations.entry(key.clone()) {
            MapEntry::Occupied(o) => o.into_mut(),
            MapEntry::Vacant(v) => {
                self.conversation_order.push(key.clone());
                v.insert(Conversation {
                    key: key.clone(),
                    display_phone_number: value.metadata.display_phone_number.clone(),
                    wa_id: None,
                    user_id: None,
                    username: None,
                    profile_name: None,
                    last_inbound_at: None,
                })
            }
        };
        let profile = contact.and_then(|c| c.profile.as_ref());
        fill(
            &mut touch.wa_id,
            wa_id.or(contact.and_then(|c| c.wa_id.as_deref())),
        );
        fill(
            &mut touch.user_id,
            user_id.or(contact.and_then(|c| c.user_id.as_deref())),
        );
        fill(
            &mut touch.username,
            profile.and_then(|p| p.username.as_deref()),
        );
        fill(
            &mut touch.profile_name,
            profile.and_then(|p| p.name.as_deref()),
        );
        if let Some(t) = inbound_at {
            touch.last_inbound_at = Some(touch.last_inbound_at.map_or(t, |old| old.max(t)));
        }
    }

    fn finish(mut self, body: Bytes, state: ParseState, origin: BatchOrigin) -> DeliveryBatch {
        if self.problems.len() > MAX_PROBLEMS_LISTED {
            let more = self.problems.len() - MAX_PROBLEMS_LISTED;
            self.problems.truncate(MAX_PROBLEMS_LISTED);
            self.problems.push(format!("… and {more} more"));
        }
        let mut conversations = self.conversations;
        DeliveryBatch {
            origin,
            delivery: RawDelivery {
                id: self.delivery_id,
                received_at_ms: self.received_at_ms,
                body,
                state,
                problems: self.problems,
                errors: self.errors,
                ignored_fields: self.ignored_fields,
                message_count: self.message_count,
                status_count: self.status_count,
            },
            conversations: self
                .conversation_order
                .iter()
                .filter_map(|k| conversations.remove(k))
                .collect(),
            messages: self.messages,
            statuses: self.statuses,
        }
    }
}

fn fill(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none()
        && let Some(v) = value.filter(|v| !v.is_empty())
    {
        *slot = Some(v.to_owned());
    }
}

/// The `contacts[]` entry describing a message's sender (or a status's recipient): matched on the
/// BSUID or phone number; when the message names neither, the single contact of the value.
fn sender_contact<'c>(
    contacts: &'c [Contact],
    wa_id: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'c Contact> {
    if let Some(uid) = user_id
        && let Some(c) = contacts.iter().find(|c| c.user_id.as_deref() == Some(uid))
    {
        return Some(c);
    }
    if let Some(w) = wa_id {
        return contacts.iter().find(|c| c.wa_id.as_deref() == Some(w));
    }
    if user_id.is_none() && contacts.len() == 1 {
        return contacts.first();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_up_to_a_bound_and_the_rest_counted() {
        let broken: Vec<String> = (0..500)
            .map(|i| format!(r#"{{"from":"1","timestamp":"{i}","type":"text"}}"#))
            .collect();
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"p"}},"messages":[{}]}}}}]}}]}}"#,
            broken.join(",")
        );
        let batch = build_batch(Bytes::from(body), 1, BatchOrigin::Webhook);
        assert_eq!(batch.delivery.state, ParseState::Partial);
        assert_eq!(batch.delivery.problems.len(), MAX_PROBLEMS_LISTED + 1);
        assert_eq!(batch.delivery.problems.last().unwrap(), "… and 450 more");
        assert!(batch.messages.is_empty());
    }

    #[test]
    fn other_fields_are_acknowledged_and_named() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"message_template_status_update","value":{"event":"APPROVED"}},
            {"field":"account_update","value":{}},
            {"field":"message_template_status_update","value":{"event":"REJECTED"}}]}]}"#;
        let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
        assert_eq!(batch.delivery.state, ParseState::Parsed);
        assert_eq!(
            batch.delivery.ignored_fields,
            ["message_template_status_update", "account_update"]
        );
    }

    #[test]
    fn a_message_that_names_no_sender_is_a_problem_not_a_failure() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"p"},
            "messages":[{"id":"wamid.nosender","timestamp":"1","type":"text","text":{"body":"x"}},
                        {"id":"wamid.ok","from":"15550001","timestamp":"2","type":"text","text":{"body":"y"}}]}}]}]}"#;
        let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
        assert_eq!(batch.delivery.state, ParseState::Partial);
        assert_eq!(batch.messages.len(), 1);
        assert!(batch.delivery.problems[0].contains("wamid.nosender"));
    }
}
