//! Turns a verified delivery body into the records to store. Pure: the same bytes and arrival
//! time always give the same batch, which is what makes replays and retries safe.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::records::*;
use super::ticket::CALLBACK_PREFIX;
use crate::agent::{AgentEvent, HandoffRequest, Origin};
use crate::whatsapp::routing::{self, EchoesValue, HandoverKind, StandbyValue};
use crate::whatsapp::{
    Contact, MessageHead, MessagesValue, Metadata, Notification, Status, StatusKind,
};

/// Meta's largest delivery is 3 MB; anything larger is refused before it is read further.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// At most this many problems are listed per delivery (the rest are counted), so a body full of
/// broken items still fits one stored item.
pub const MAX_PROBLEMS_LISTED: usize = 50;

const WABA: &str = "whatsapp_business_account";

/// The webhook fields Baton reads; any other is acknowledged and named.
const FIELDS_READ: &[&str] = &[
    "messages",
    routing::STANDBY,
    routing::MESSAGE_ECHOES,
    routing::SMB_MESSAGE_ECHOES,
    routing::MESSAGING_HANDOVERS,
];

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
        agent_events: Vec::new(),
        agent_ids: HashSet::new(),
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
    agent_events: Vec<AgentEventRecord>,
    agent_ids: HashSet<(ConversationKey, String)>,
}

impl Builder {
    fn read(&mut self, n: &Notification<'_>) {
        for (e, entry) in n.entry.iter().enumerate() {
            for (c, change) in entry.changes.iter().enumerate() {
                let field = change.field.as_str();
                if !FIELDS_READ.contains(&field) {
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
                let at = format!("entry[{e}].changes[{c}].value");
                let problem = match field {
                    "messages" => serde_json::from_str::<MessagesValue<'_>>(raw.get())
                        .map(|value| self.read_value(&value, e, c)),
                    routing::STANDBY => serde_json::from_str::<StandbyValue<'_>>(raw.get())
                        .map(|value| self.read_standby(value, &at, e, c)),
                    routing::MESSAGING_HANDOVERS => {
                        self.read_handover(raw.get(), &at);
                        Ok(())
                    }
                    _ => serde_json::from_str::<EchoesValue<'_>>(raw.get()).map(|value| {
                        let origin = match field {
                            routing::SMB_MESSAGE_ECHOES => Origin::BusinessApp,
                            _ => Origin::Echo,
                        };
                        for (i, echo) in value.message_echoes.iter().enumerate() {
                            let at = format!("{at}.message_echoes[{i}]");
                            self.read_echo(echo.get(), &value.metadata, origin, &at);
                        }
                    }),
                };
                if let Err(err) = problem {
                    self.problems.push(format!("{at}: {err}"));
                }
            }
        }
    }

    /// Conversation Routing's copy of a thread Baton does not own: the customer's messages and
    /// receipts as on `messages`, and the owner's replies as echoes.
    fn read_standby(&mut self, value: StandbyValue<'_>, at: &str, e: usize, c: usize) {
        let StandbyValue { metadata, standby } = value;
        for (i, echo) in standby.message_echoes.iter().enumerate() {
            let at = format!("{at}.standby.message_echoes[{i}]");
            self.read_echo(echo.get(), &metadata, Origin::Echo, &at);
        }
        let messages = MessagesValue {
            messaging_product: None,
            metadata,
            contacts: standby.contacts,
            messages: standby.messages,
            statuses: standby.statuses,
            errors: standby.errors,
        };
        self.read_value(&messages, e, c);
    }

    /// Another sender's outbound message: a line of the AI agent (or of the business's phone).
    fn read_echo(&mut self, raw: &str, metadata: &Metadata, origin: Origin, at: &str) {
        let echo = match routing::parse_echo(raw) {
            Ok(echo) => echo,
            Err(err) => {
                self.problems.push(format!("{at}: {err}"));
                return;
            }
        };
        let event = AgentEvent {
            id: format!("echo:{}", echo.wamid),
            kind: AgentEventKind::Message,
            phone_number_id: metadata.phone_number_id.clone(),
            customer: echo.to.clone(),
            timestamp: Some(echo.timestamp.into()),
            failed: false,
            text: Some(echo.text),
            wamid: Some(echo.wamid),
            tool: None,
            handoff: None,
            origin: Some(origin),
        };
        self.push_agent(event, echo.timestamp);
    }

    /// A thread passed to Baton (a handoff of its own kind) or taken from it; a type Baton does
    /// not know is a problem, so the delivery is listed for replay once Baton learns it.
    fn read_handover(&mut self, raw: &str, at: &str) {
        let handover = match routing::parse_handover(raw) {
            Ok(h) => h,
            Err(err) => {
                self.problems.push(format!("{at}: {err}"));
                return;
            }
        };
        let key =
            ConversationKey::new(handover.phone_number_id.as_str(), handover.customer.clone());
        let wa_id = handover
            .customer
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(handover.customer.as_str());
        self.touch_key(&key, &handover.display_phone_number, wa_id, None);
        let (category, text) = handover.category_and_text();
        let mut event = AgentEvent {
            id: String::new(),
            kind: AgentEventKind::Handoff,
            phone_number_id: handover.phone_number_id.clone(),
            customer: handover.customer.clone(),
            timestamp: Some(handover.timestamp.into()),
            failed: false,
            text: None,
            wamid: None,
            tool: None,
            handoff: None,
            origin: None,
        };
        match &handover.kind {
            HandoverKind::Passed => {
                event.id = format!("control_passed:{}", handover.timestamp);
                event.origin = Some(Origin::ControlPassed);
                event.handoff = Some(HandoffRequest {
                    category,
                    reason: text,
                    summary: handover.summary.clone(),
                    sentiment: None,
                    language: None,
                });
            }
            HandoverKind::Taken => {
                event.id = format!("control_taken:{}", handover.timestamp);
                event.kind = AgentEventKind::Handover;
                event.origin = Some(Origin::ControlTaken);
                let to = handover
                    .new_owner
                    .as_deref()
                    .map(|r| format!(" (now with the {r} role)"))
                    .unwrap_or_default();
                let why = handover
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                event.text = Some(format!("another partner took the WhatsApp thread{to}{why}"));
            }
            HandoverKind::Other(kind) => {
                self.problems.push(format!(
                    "{at}: messaging_handovers of type {kind:?} is not known; kept for replay"
                ));
                return;
            }
        }
        self.push_agent(event, handover.timestamp);
    }

    fn push_agent(&mut self, event: AgentEvent, timestamp: i64) {
        let key = ConversationKey::new(event.phone_number_id.as_str(), event.customer.clone());
        if !self.agent_ids.insert((key.clone(), event.id.clone())) {
            return;
        }
        self.agent_events.push(AgentEventRecord {
            conversation: key,
            event_id: event.id.clone(),
            kind: event.kind,
            timestamp,
            received_at_ms: self.received_at_ms,
            seq: self.agent_events.len() as u32,
            failed: false,
            raw: serde_json::to_string(&event).expect("plain data"),
        });
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
                &value.metadata.display_phone_number,
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
            self.status_count += 1;
            // Only statuses somebody reads are stored: those of replies Baton sent for a rep
            // (their callback data names the handoff) and every failure. The AI agent's own
            // messages' sent/delivered/read are read by no one here; storing them cost a write
            // each, three per message.
            let ours = status
                .biz_opaque_callback_data
                .as_deref()
                .is_some_and(|d| d.starts_with(CALLBACK_PREFIX));
            if !ours && status.status != StatusKind::Failed {
                continue;
            }
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
                    &value.metadata.display_phone_number,
                    contact,
                    status.recipient_id.as_deref(),
                    status.recipient_user_id.as_deref(),
                    None,
                );
            }
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

    /// The conversation as far as this delivery tells, created on first sight.
    fn touch_key(
        &mut self,
        key: &ConversationKey,
        display_phone_number: &str,
        wa_id: Option<&str>,
        user_id: Option<&str>,
    ) -> &mut Conversation {
        let touch = match self.conversations.entry(key.clone()) {
            MapEntry::Occupied(o) => o.into_mut(),
            MapEntry::Vacant(v) => {
                self.conversation_order.push(key.clone());
                v.insert(Conversation {
                    key: key.clone(),
                    display_phone_number: display_phone_number.to_owned(),
                    wa_id: None,
                    user_id: None,
                    username: None,
                    profile_name: None,
                    last_inbound_at: None,
                })
            }
        };
        fill(&mut touch.wa_id, wa_id);
        fill(&mut touch.user_id, user_id);
        touch
    }

    fn touch(
        &mut self,
        key: &ConversationKey,
        display_phone_number: &str,
        contact: Option<&Contact>,
        wa_id: Option<&str>,
        user_id: Option<&str>,
        inbound_at: Option<i64>,
    ) {
        let touch = self.touch_key(key, display_phone_number, None, None);
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
            agent_events: self.agent_events,
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

    fn routing(name: &str) -> DeliveryBatch {
        let path = format!(
            "{}/../tests/fixtures/routing/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        build_batch(Bytes::from(body), 1_750_200_000_000, BatchOrigin::Webhook)
    }

    fn event(batch: &DeliveryBatch) -> AgentEvent {
        assert_eq!(batch.agent_events.len(), 1, "{:?}", batch.delivery.problems);
        AgentEvent::parse(&batch.agent_events[0].raw).unwrap()
    }

    #[test]
    fn standby_copies_are_stored_like_messages_and_echoes_as_the_agents_lines() {
        let inbound = routing("standby_inbound_text");
        assert_eq!(inbound.delivery.state, ParseState::Parsed);
        assert!(inbound.delivery.ignored_fields.is_empty());
        assert_eq!(inbound.messages.len(), 1);
        assert_eq!(
            inbound.conversations[0].profile_name.as_deref(),
            Some("Ana Ruiz")
        );
        assert_eq!(
            inbound.conversations[0].last_inbound_at,
            Some(1_750_100_000)
        );
        // The thread owner's message read: read here, and like any status nobody reads, not kept.
        let status = routing("standby_status_read");
        assert_eq!(
            (status.delivery.state, status.delivery.status_count),
            (ParseState::Parsed, 1)
        );
        assert!(status.statuses.is_empty());

        let echo = routing("standby_echo_text");
        let record = &echo.agent_events[0];
        assert_eq!(
            record.conversation,
            ConversationKey::new("106540352242922", "16505551234")
        );
        assert_eq!(record.kind, AgentEventKind::Message);
        assert_eq!(record.timestamp, 1_750_100_100);
        let e = event(&echo);
        assert_eq!(e.origin, Some(Origin::Echo));
        assert_eq!(
            e.text.as_deref(),
            Some("Hello! Your order #12345 has shipped.")
        );
        assert_eq!(
            e.wamid.as_deref(),
            Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJFQ0hPVEVYVDAwMDAwMDAwMQA=")
        );
        for (name, text) in [
            (
                "standby_echo_template",
                "[template order_update: Ana | 48213]",
            ),
            (
                "standby_echo_interactive",
                "Do you want a refund or a replacement? [choices: Refund | Replacement]",
            ),
            ("standby_echo_image", "[image] Your return label"),
        ] {
            assert_eq!(event(&routing(name)).text.as_deref(), Some(text), "{name}");
        }
        let smb = event(&routing("smb_echo_text"));
        assert_eq!(smb.origin, Some(Origin::BusinessApp));
        assert_eq!(smb.customer, "16505551234");
    }

    #[test]
    fn handovers_in_each_of_metas_shapes() {
        let roles = routing("control_passed_roles");
        assert_eq!(roles.delivery.state, ParseState::Parsed);
        assert_eq!(roles.agent_events[0].kind, AgentEventKind::Handoff);
        assert_eq!(roles.agent_events[0].event_id, "control_passed:1750101000");
        assert_eq!(roles.conversations[0].wa_id.as_deref(), Some("16505551234"));
        let e = event(&roles);
        assert_eq!(e.origin, Some(Origin::ControlPassed));
        let request = e.handoff.unwrap();
        assert_eq!(request.category, "customer_request");
        assert_eq!(
            request.reason,
            "The customer asked for a person (WhatsApp user requested human agent)"
        );
        assert!(
            request
                .summary
                .unwrap()
                .starts_with("The customer's order 48213")
        );
        let app_role = event(&routing("control_passed_app_role")).handoff.unwrap();
        assert_eq!(app_role.category, "customer_request");
        assert!(app_role.summary.is_none());
        let json = event(&routing("control_passed_json_metadata"))
            .handoff
            .unwrap();
        assert_eq!(json.category, "marketing_message");

        let taken = routing("control_taken");
        assert_eq!(taken.agent_events[0].kind, AgentEventKind::Handover);
        let e = event(&taken);
        assert_eq!(e.origin, Some(Origin::ControlTaken));
        assert_eq!(
            e.text.as_deref(),
            Some(
                "another partner took the WhatsApp thread (now with the customer_service role): Taken by the sales team"
            )
        );

        // A type Baton does not know: kept, listed for replay, nothing stored from it.
        let unknown = routing("handover_unknown_type");
        assert_eq!(unknown.delivery.state, ParseState::Partial);
        assert!(unknown.delivery.state.replayable());
        assert!(unknown.delivery.problems[0].contains("\"control_requested\" is not known"));
        assert!(unknown.agent_events.is_empty());
    }

    #[test]
    fn an_echo_delivered_in_two_fields_is_one_event() {
        let body = std::fs::read_to_string(format!(
            "{}/../tests/fixtures/routing/standby_echo_text.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let change = v["entry"][0]["changes"][0].clone();
        let mut twice = v.clone();
        twice["entry"][0]["changes"] = serde_json::json!([change.clone(), change]);
        let batch = build_batch(Bytes::from(twice.to_string()), 1, BatchOrigin::Webhook);
        assert_eq!(batch.agent_events.len(), 1);
    }
}
