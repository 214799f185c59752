//! The transcript a rep reads: every message of the conversation in timeline order, labelled
//! customer / AI agent / system, each type rendered readably, media pointing at their copies.
//!
//! Built one page of the timeline at a time ([`Transcript::push`]), with one map of short excerpts
//! so replies and reactions can quote what they refer to: linear in the conversation's length.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::agent::{AgentEvent, Origin};
use crate::domain::{
    AgentEventKind, AgentEventRecord, MediaRecord, MediaState, MessageRecord, TimelineEntry,
};
use crate::whatsapp::{Content, InboundMessage, Interactive, Media, Reading, read_message};

/// Marks where a media line's copy goes until the copies are known (see [`Rendered::text`]).
const MEDIA_MARK: char = '\u{0}';

/// Longest quote of an earlier message in a reply or reaction line.
const EXCERPT_CHARS: usize = 60;

/// Formats unix seconds as `2026-11-24 10:00:01 UTC`.
pub fn utc(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => {
            let f = time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            );
            t.format(&f).unwrap_or_else(|_| ts.to_string())
        }
        Err(_) => ts.to_string(),
    }
}

fn excerpt(text: &str) -> String {
    excerpt_of(text, EXCERPT_CHARS)
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn excerpt_of(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line
            .chars()
            .take(max.saturating_sub(1))
            .collect::<String>()
            + "…"
    }
}

/// A media file a transcript line refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub wamid: String,
    pub kind: String,
    pub media: Media,
}

/// What the transcript builder produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// The lines, with a mark where each media line's copy goes.
    marked: String,
    pub messages: u32,
    pub agent_events: u32,
    /// The customer's own words, message by message, for the insights.
    pub customer_texts: Vec<String>,
    /// The customer's media messages, in order.
    pub media: Vec<MediaRef>,
    /// The order key of the last entry pushed.
    pub last_order_key: Option<String>,
    /// Meta's Conversation Routing showed in the timeline (an echo or a handover).
    pub routed: bool,
}

impl Rendered {
    /// The transcript, each media line ending with its copy (`link` of the object key) or why
    /// the file is missing. One pass over the text.
    pub fn text(
        &self,
        copies: &HashMap<String, MediaRecord>,
        link: &dyn Fn(&str) -> String,
    ) -> String {
        let mut out = String::with_capacity(self.marked.len() + copies.len() * 80);
        let mut parts = self.marked.split(MEDIA_MARK);
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        // Marks come in pairs around a wamid: wamid, then the text up to the next mark.
        while let (Some(wamid), Some(rest)) = (parts.next(), parts.next()) {
            match copies.get(wamid) {
                Some(r) if r.state == MediaState::Copied => {
                    let _ = write!(out, " — {}", link(r.key.as_deref().unwrap_or_default()));
                    if r.sha256_matches == Some(false) {
                        out.push_str(" (its checksum differs from WhatsApp's)");
                    }
                }
                Some(r) if r.state == MediaState::Pending => {
                    out.push_str(" — still being copied: the file follows on the ticket");
                }
                Some(r) => {
                    let _ = write!(
                        out,
                        " — FILE MISSING: {}",
                        r.error.as_deref().unwrap_or("not copied")
                    );
                }
                None => out.push_str(" — FILE MISSING: not copied yet"),
            }
            out.push_str(rest);
        }
        out
    }
}

/// Who a transcript line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Agent,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
}

/// One transcript line, kept whole for a page that lays lines out itself (the session page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unix seconds.
    pub at: i64,
    pub role: Role,
    /// `Customer (name)`, `AI agent` or `System`.
    pub who: String,
    /// The line's text; a media line carries its message's wamid between marks (see
    /// [`Line::parts`]).
    text: String,
}

impl Line {
    /// The text before the media mark, the media message's wamid, and the text after it.
    pub fn parts(&self) -> (&str, Option<&str>, &str) {
        let mut split = self.text.splitn(3, MEDIA_MARK);
        let before = split.next().unwrap_or_default();
        match (split.next(), split.next()) {
            (Some(wamid), Some(after)) => (before, Some(wamid), after),
            _ => (before, None, ""),
        }
    }
}

/// Builds a transcript page by page.
pub struct Transcript {
    customer: String,
    excerpts: HashMap<String, String>,
    /// The wamids of the agent's replies already written: an echo from Meta and the agent's own
    /// event of one reply are one line.
    replies: HashSet<String>,
    out: Rendered,
    /// Lines kept whole since the last [`Transcript::take_lines`], when asked for.
    lines: Option<Vec<Line>>,
}

impl Transcript {
    /// `title` heads the transcript; `customer` names the customer in each line.
    pub fn new(title: &str, customer: &str) -> Self {
        let mut out = Rendered::default();
        let _ = writeln!(out.marked, "{title}\n");
        Self {
            customer: format!("Customer ({customer})"),
            excerpts: HashMap::new(),
            replies: HashSet::new(),
            out,
            lines: None,
        }
    }

    /// Also keeps each line whole, to be taken with [`Transcript::take_lines`].
    pub fn keeping_lines(mut self) -> Self {
        self.lines = Some(Vec::new());
        self
    }

    /// The lines written since the last call (none unless [`Transcript::keeping_lines`]).
    pub fn take_lines(&mut self) -> Vec<Line> {
        self.lines.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn push(&mut self, entry: &TimelineEntry) {
        self.out.last_order_key = Some(entry.order_key());
        match entry {
            TimelineEntry::Message(m) => self.message(m),
            TimelineEntry::Agent(e) => self.agent(e),
        }
    }

    pub fn finish(self) -> Rendered {
        self.out
    }

    fn line(&mut self, ts: i64, role: Role, text: &str) {
        self.line_by(ts, role, None, text);
    }

    /// A line; `sender` names who wrote an agent line when Meta says it (an echo).
    fn line_by(&mut self, ts: i64, role: Role, sender: Option<&str>, text: &str) {
        let customer = self.customer.clone();
        let who = match role {
            Role::Customer => customer.as_str(),
            Role::Agent => sender.unwrap_or("AI agent"),
            Role::System => "System",
        };
        match &mut self.lines {
            // A page laying the lines out itself needs no text version as well.
            Some(lines) => lines.push(Line {
                at: ts,
                role,
                who: who.to_owned(),
                text: text.to_owned(),
            }),
            None => {
                let _ = writeln!(self.out.marked, "[{}] {who}: {text}", utc(ts));
            }
        }
    }

    fn quote(&self, wamid: &str) -> String {
        match self.excerpts.get(wamid) {
            Some(e) => format!("“{e}”"),
            None => "an earlier message".to_owned(),
        }
    }

    fn agent(&mut self, e: &AgentEventRecord) {
        self.out.agent_events += 1;
        let Ok(event) = AgentEvent::parse(&e.raw) else {
            self.line(
                e.timestamp,
                Role::System,
                &format!("[agent event {} could not be read]", e.event_id),
            );
            return;
        };
        self.out.routed |= event.origin.is_some();
        match e.kind {
            AgentEventKind::Message => {
                if let Some(w) = &event.wamid
                    && !self.replies.insert(w.clone())
                {
                    self.out.agent_events -= 1;
                    return;
                }
                let text = event.text.unwrap_or_default();
                if let Some(w) = &event.wamid {
                    self.excerpts.insert(w.clone(), excerpt(&text));
                }
                let sender = event.origin.map(Origin::sender);
                self.line_by(e.timestamp, Role::Agent, sender, &text);
            }
            AgentEventKind::Handoff => {
                if let Some(h) = event.handoff {
                    let who = match event.origin {
                        Some(Origin::ControlPassed) => {
                            "the AI agent passed the WhatsApp thread to Baton (Meta Conversation Routing)"
                        }
                        _ => "the AI agent handed the conversation to a person",
                    };
                    self.line(
                        e.timestamp,
                        Role::System,
                        &format!("{who} ({}): {}", h.category, h.reason),
                    );
                }
            }
            AgentEventKind::Handover => {
                let text = event
                    .text
                    .unwrap_or_else(|| "the WhatsApp thread moved".into());
                self.line(
                    e.timestamp,
                    Role::System,
                    &format!("{text} (Meta Conversation Routing)"),
                );
            }
            // Reasoning and tool calls belong on the session page, not in the rep's transcript.
            AgentEventKind::Reasoning | AgentEventKind::ToolCall => {}
        }
    }

    fn message(&mut self, m: &MessageRecord) {
        self.out.messages += 1;
        // A stored message always reaches the transcript: repaired, or shown for what it is.
        let mut prefix = String::new();
        let msg: InboundMessage = match read_message(&m.raw) {
            Reading::Whole(msg) => msg,
            Reading::Repaired(msg) => {
                crate::observe::count(crate::observe::metric::MESSAGES_UNREADABLE, 1);
                prefix.push_str("(some characters could not be read) ");
                msg
            }
            Reading::Unreadable { reason, words } => {
                crate::observe::count(crate::observe::metric::MESSAGES_UNREADABLE, 1);
                let words = words.map(|w| format!(" “{w}”")).unwrap_or_default();
                self.line(
                    m.timestamp,
                    Role::Customer,
                    &format!("[unreadable {} message: {reason}]{words}", m.kind),
                );
                return;
            }
        };
        if let Some(ctx) = &msg.context {
            if ctx.frequently_forwarded == Some(true) {
                prefix.push_str("(forwarded many times) ");
            } else if ctx.forwarded == Some(true) {
                prefix.push_str("(forwarded) ");
            }
            if let Some(p) = &ctx.referred_product {
                let _ = write!(
                    prefix,
                    "(asking about product {} in catalog {}) ",
                    p.product_retailer_id, p.catalog_id
                );
            } else if let Some(id) = &ctx.id {
                let _ = write!(prefix, "(replying to {}) ", self.quote(id));
            }
        }
        if let Some(r) = &msg.referral {
            let what = r
                .headline
                .as_deref()
                .or(r.body.as_deref())
                .unwrap_or("an ad");
            let _ = write!(
                prefix,
                "(came from an ad: {}{}) ",
                excerpt(what),
                r.source_url
                    .as_deref()
                    .map(|u| format!(" — {u}"))
                    .unwrap_or_default()
            );
        }
        let (role, body, said) = self.render(&msg);
        if let Some(said) = said {
            self.excerpts.insert(msg.id.clone(), excerpt(&said));
            if role == Role::Customer {
                self.out.customer_texts.push(said);
            }
        }
        self.line(m.timestamp, role, &format!("{prefix}{body}"));
    }

    /// Who the line is from (the customer, or a system notice), the rendered line and the words
    /// the customer said.
    fn render(&mut self, msg: &InboundMessage) -> (Role, String, Option<String>) {
        let c = Role::Customer;
        match &msg.content {
            Content::Text(t) => (c, t.body.clone(), Some(t.body.clone())),
            Content::Image(media)
            | Content::Audio(media)
            | Content::Video(media)
            | Content::Document(media)
            | Content::Sticker(media) => {
                self.out.media.push(MediaRef {
                    wamid: msg.id.clone(),
                    kind: msg.kind.clone(),
                    media: media.clone(),
                });
                let kind = match (&msg.content, media.voice) {
                    (Content::Audio(_), Some(true)) => "voice note".to_owned(),
                    (Content::Sticker(_), _) => "sticker".to_owned(),
                    _ => msg.kind.clone(),
                };
                let mut line = format!("[{kind}");
                if let Some(f) = &media.filename {
                    let _ = write!(line, " “{f}”");
                }
                line.push(']');
                if let Some(cap) = media.caption.as_deref().filter(|c| !c.is_empty()) {
                    let _ = write!(line, " {cap}");
                }
                // The copy's link or why it is missing goes here once known.
                let _ = write!(
                    line,
                    "{MEDIA_MARK}{}{MEDIA_MARK}",
                    msg.id.replace(MEDIA_MARK, "")
                );
                (c, line, media.caption.clone().filter(|c| !c.is_empty()))
            }
            Content::Location(l) => {
                let mut line = String::from("shared a location: ");
                let place: Vec<&str> = [l.name.as_deref(), l.address.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !place.is_empty() {
                    let _ = write!(line, "{} — ", place.join(", "));
                }
                let _ = write!(
                    line,
                    "https://maps.google.com/?q={},{}",
                    l.latitude, l.longitude
                );
                (c, line, None)
            }
            Content::Contacts(list) => {
                let people: Vec<String> = list
                    .iter()
                    .map(|p| {
                        let name = p
                            .name
                            .formatted_name
                            .clone()
                            .or_else(|| {
                                let parts: Vec<&str> =
                                    [p.name.first_name.as_deref(), p.name.last_name.as_deref()]
                                        .into_iter()
                                        .flatten()
                                        .collect();
                                (!parts.is_empty()).then(|| parts.join(" "))
                            })
                            .unwrap_or_else(|| "(no name)".to_owned());
                        let numbers: Vec<String> = p
                            .phones
                            .iter()
                            .filter_map(|ph| ph.phone.clone().or_else(|| ph.wa_id.clone()))
                            .collect();
                        let emails: Vec<String> =
                            p.emails.iter().filter_map(|e| e.email.clone()).collect();
                        let details: Vec<String> = numbers.into_iter().chain(emails).collect();
                        if details.is_empty() {
                            name
                        } else {
                            format!("{name} ({})", details.join(", "))
                        }
                    })
                    .collect();
                (
                    c,
                    format!(
                        "shared {}: {}",
                        if list.len() == 1 {
                            "a contact"
                        } else {
                            "contacts"
                        },
                        people.join("; ")
                    ),
                    None,
                )
            }
            Content::Interactive(i) => match i {
                Interactive::ButtonReply { title, .. } => {
                    (c, format!("tapped “{title}”"), Some(title.clone()))
                }
                Interactive::ListReply {
                    title, description, ..
                } => (
                    c,
                    match description {
                        Some(d) => format!("chose “{title}” ({d})"),
                        None => format!("chose “{title}”"),
                    },
                    Some(title.clone()),
                ),
                Interactive::NfmReply {
                    name,
                    body,
                    response_json,
                } => (
                    c,
                    format!(
                        "submitted the form {}: {}",
                        name.as_deref().or(body.as_deref()).unwrap_or("(unnamed)"),
                        response_json
                    ),
                    None,
                ),
                Interactive::Other { kind } => (
                    c,
                    format!("[an interactive reply of type {kind} — not shown by WhatsApp]"),
                    None,
                ),
            },
            Content::Button(b) => (c, format!("tapped “{}”", b.text), Some(b.text.clone())),
            Content::Reaction(r) => {
                let target = self.quote(&r.message_id);
                match r.emoji.as_deref().filter(|e| !e.is_empty()) {
                    Some(e) => (c, format!("reacted {e} to {target}"), None),
                    None => (c, format!("removed their reaction to {target}"), None),
                }
            }
            Content::Order(o) => {
                let items: Vec<String> = o
                    .product_items
                    .iter()
                    .map(|p| {
                        format!(
                            "{} × {} at {} {}",
                            p.quantity, p.product_retailer_id, p.item_price, p.currency
                        )
                    })
                    .collect();
                let mut line = format!(
                    "placed an order (catalog {}): {}",
                    o.catalog_id,
                    items.join("; ")
                );
                if let Some(t) = &o.text {
                    let _ = write!(line, " — {t}");
                }
                (c, line, o.text.clone())
            }
            Content::System(s) => (
                Role::System,
                s.body.clone().unwrap_or_else(|| {
                    format!("system notice {}", s.kind.as_deref().unwrap_or(""))
                }),
                None,
            ),
            Content::Unsupported(u) => {
                let why = msg
                    .errors
                    .first()
                    .and_then(|e| e.explanation())
                    .unwrap_or("WhatsApp does not deliver this type");
                (
                    c,
                    format!(
                        "[UNSUPPORTED MESSAGE: {} — {why}]",
                        u.kind.as_deref().unwrap_or("unknown type")
                    ),
                    None,
                )
            }
            Content::Revoke(r) => (
                c,
                format!("deleted {}", self.quote(&r.original_message_id)),
                None,
            ),
            Content::Edit(e) => {
                let before = self.quote(&e.original_message_id);
                let after = match e.message.as_ref().map(|m| &m.content) {
                    Some(Content::Text(t)) => t.body.clone(),
                    Some(Content::Image(m) | Content::Video(m) | Content::Document(m)) => {
                        m.caption.clone().unwrap_or_else(|| "(new media)".into())
                    }
                    _ => "(a change WhatsApp does not show)".into(),
                };
                (c, format!("edited {before} to: {after}"), Some(after))
            }
            Content::RequestWelcome => (
                Role::System,
                "the customer opened the chat".to_owned(),
                None,
            ),
            Content::Unknown { kind } => {
                let why = msg
                    .errors
                    .first()
                    .and_then(|e| e.explanation())
                    .map(|w| format!(" — {w}"))
                    .unwrap_or_default();
                (c, format!("[UNSUPPORTED MESSAGE: type {kind}{why}]"), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationKey, DeliveryId};

    /// The first message of a fixture under tests/fixtures/whatsapp, as the store keeps it.
    fn fixture(name: &str, seq: u32) -> TimelineEntry {
        let path = format!(
            "{}/../tests/fixtures/whatsapp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let m = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
        TimelineEntry::Message(MessageRecord {
            conversation: ConversationKey::new("1", "2"),
            wamid: m["id"].as_str().unwrap().to_owned(),
            timestamp: m["timestamp"].as_str().unwrap().parse().unwrap(),
            kind: m["type"].as_str().unwrap_or("").to_owned(),
            received_at_ms: 0,
            seq,
            delivery_id: DeliveryId("d".into()),
            raw: m.to_string(),
        })
    }

    fn render(names: &[&str]) -> String {
        let mut t = Transcript::new("Title", "Ana");
        for (i, n) in names.iter().enumerate() {
            t.push(&fixture(n, i as u32));
        }
        t.finish().text(&HashMap::new(), &|k| format!("s3://b/{k}"))
    }

    #[test]
    fn every_message_type_reads_as_a_line() {
        let cases: &[(&str, &str)] = &[
            ("text.json", "Customer (Ana): "),
            ("contacts.json", "shared a contact: "),
            ("interactive_button_reply.json", "tapped “"),
            ("interactive_list_reply.json", "chose “"),
            ("interactive_nfm_reply.json", "submitted the form "),
            (
                "interactive_with_value_errors.json",
                "[UNSUPPORTED MESSAGE: type interactive",
            ),
            ("button.json", "tapped “"),
            ("order.json", "placed an order (catalog "),
            ("system_user_changed_number.json", "System: User "),
            ("unsupported.json", "[UNSUPPORTED MESSAGE: "),
            ("unsupported_no_subtype.json", "[UNSUPPORTED MESSAGE: "),
            (
                "unknown_legacy.json",
                "[UNSUPPORTED MESSAGE: unknown type — Message type is not currently supported]",
            ),
            ("revoke.json", "deleted an earlier message"),
            ("edit_image.json", "edited an earlier message to: "),
            (
                "sticker_animated.json",
                "[sticker] — FILE MISSING: not copied yet",
            ),
            ("audio_voice.json", "[voice note]"),
            ("video.json", "(forwarded) [video] caption"),
            (
                "text_frequently_forwarded.json",
                "(forwarded many times) text forwarded",
            ),
            (
                "text_message_business_button.json",
                "(asking about product ",
            ),
            ("text_referral_ctwa.json", "(came from an ad: "),
            (
                "reaction_removed.json",
                "removed their reaction to an earlier message",
            ),
            (
                "location_current.json",
                "https://maps.google.com/?q=12.25089,",
            ),
        ];
        for (name, want) in cases {
            let text = render(&[name]);
            assert!(text.contains(want), "{name}: {want:?} not in\n{text}");
            assert_eq!(
                text.lines().filter(|l| l.starts_with('[')).count(),
                1,
                "{name}: one line\n{text}"
            );
        }
        let contacts = render(&["contacts.json"]);
        assert!(
            contacts.chars().any(|c| c.is_ascii_digit()),
            "a shared contact shows its number: {contacts}"
        );
    }

    #[test]
    fn media_lines_point_at_their_copies_or_say_why_not() {
        let mut t = Transcript::new("Title", "Ana");
        t.push(&fixture("image.json", 0));
        t.push(&fixture("document.json", 1));
        let rendered = t.finish();
        assert_eq!(rendered.media.len(), 2);
        let mut copies = HashMap::new();
        let base = MediaRecord {
            conversation: ConversationKey::new("1", "2"),
            wamid: rendered.media[0].wamid.clone(),
            kind: "image".into(),
            media_id: "m".into(),
            state: MediaState::Copied,
            key: Some("media/x/y/image.jpg".into()),
            content_type: None,
            filename: "image.jpg".into(),
            bytes: Some(1),
            sha256_expected: None,
            sha256_matches: Some(true),
            error: None,
            retryable: false,
            attempts: 1,
            updated_at_ms: 0,
        };
        copies.insert(rendered.media[0].wamid.clone(), base.clone());
        // Both fixtures share a wamid: the document's line resolves to the same record. Use a
        // failed record for the check of a missing file instead.
        let text = rendered.text(&copies, &|k| format!("s3://b/{k}"));
        assert!(text.contains("— s3://b/media/x/y/image.jpg"), "{text}");
        let mut failed = base;
        failed.state = MediaState::Failed;
        failed.error = Some("download refused (500 Internal Server Error)".into());
        copies.insert(rendered.media[0].wamid.clone(), failed);
        let text = rendered.text(&copies, &|k| format!("s3://b/{k}"));
        assert!(
            text.contains("— FILE MISSING: download refused (500 Internal Server Error)"),
            "{text}"
        );
        assert!(!text.contains('\u{0}'), "no marks left");
    }

    /// Every timeline entry a routing fixture (tests/fixtures/routing) stores.
    fn routed(name: &str) -> Vec<TimelineEntry> {
        let path = format!(
            "{}/../tests/fixtures/routing/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let batch = crate::domain::build_batch(
            bytes::Bytes::from(std::fs::read(&path).unwrap()),
            1_750_200_000_000,
            crate::domain::BatchOrigin::Webhook,
        );
        let mut entries: Vec<TimelineEntry> = batch
            .messages
            .into_iter()
            .map(TimelineEntry::Message)
            .chain(batch.agent_events.into_iter().map(TimelineEntry::Agent))
            .collect();
        entries.sort_by_key(TimelineEntry::order_key);
        entries
    }

    #[test]
    fn a_conversation_seen_only_through_routing_reads_in_order_with_each_sender() {
        let mut timeline: Vec<TimelineEntry> = [
            "standby_inbound_text",
            "standby_echo_text",
            "standby_echo_template",
            "smb_echo_text",
            "control_passed_roles",
            "control_taken",
        ]
        .iter()
        .flat_map(|n| routed(n))
        .collect();
        // The agent also posted its first reply itself, with the same wamid: one line.
        let posted = crate::agent::parse_events(
            br#"{"id":"agent-1","type":"message","phone_number_id":"106540352242922","customer":"16505551234",
                 "text":"Hello! Your order #12345 has shipped.","timestamp":1750100101,
                 "wamid":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJFQ0hPVEVYVDAwMDAwMDAwMQA="}"#,
            1_750_200_000_000,
        )
        .unwrap();
        timeline.push(TimelineEntry::Agent(posted[0].clone()));
        timeline.sort_by_key(TimelineEntry::order_key);
        let mut t = Transcript::new("Title", "Ana Ruiz");
        for entry in &timeline {
            t.push(entry);
        }
        let rendered = t.finish();
        let text = rendered.text(&HashMap::new(), &|k| k.to_owned());
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "[2025-02-12 00:43:44 UTC] Business (WhatsApp Business app): Here's the info you requested! https://www.meta.com/quest/quest-3/",
                "[2025-06-16 18:53:20 UTC] Customer (Ana Ruiz): My order 48213 arrived broken.",
                "[2025-06-16 18:55:00 UTC] AI agent: Hello! Your order #12345 has shipped.",
                "[2025-06-16 18:56:40 UTC] AI agent: [template order_update: Ana | 48213]",
                "[2025-06-16 19:10:00 UTC] System: the AI agent passed the WhatsApp thread to Baton (Meta Conversation Routing) (customer_request): The customer asked for a person (WhatsApp user requested human agent)",
                "[2025-06-16 19:26:40 UTC] System: another partner took the WhatsApp thread (now with the customer_service role): Taken by the sales team (Meta Conversation Routing)",
            ],
            "{text}"
        );
        assert_eq!(
            rendered.agent_events, 5,
            "the posted copy of the echo is not counted"
        );
    }
}
