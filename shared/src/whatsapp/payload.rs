//! The WhatsApp Cloud API webhook payload: every inbound message type, statuses, errors and contacts.
//!
//! Meta adds types and fields without notice, so nothing here rejects what it does not know: every
//! object ignores unknown fields, unknown message types become [`Content::Unknown`], unknown status
//! names become [`StatusKind::Other`], and each message and status keeps its exact raw JSON. Numbers
//! that Meta documents as strings but sometimes sends as numbers (timestamps, coordinates, sizes) are
//! accepted in both forms.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The top-level object of a webhook delivery, borrowing the raw per-item JSON from the body.
#[derive(Debug, Deserialize)]
pub struct Notification<'a> {
    pub object: String,
    #[serde(default, borrow)]
    pub entry: Vec<Entry<'a>>,
}

/// One WhatsApp Business Account in a delivery.
#[derive(Debug, Deserialize)]
pub struct Entry<'a> {
    /// The WABA id.
    #[serde(default)]
    pub id: String,
    #[serde(default, borrow)]
    pub changes: Vec<Change<'a>>,
}

/// One change: `field` says what `value` holds (`messages` for everything Baton handles).
#[derive(Debug, Deserialize)]
pub struct Change<'a> {
    #[serde(default)]
    pub field: String,
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
}

/// The `value` of a `messages` change. Messages and statuses stay raw here so that one malformed
/// item cannot fail the rest of the delivery; parse each with [`MessageHead`] / [`InboundMessage`] /
/// [`Status`].
#[derive(Debug, Deserialize)]
pub struct MessagesValue<'a> {
    #[serde(default)]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default, borrow)]
    pub messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub statuses: Vec<&'a RawValue>,
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// The business phone number that received the message.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: String,
    pub phone_number_id: String,
}

/// A customer in `value.contacts[]`. Username users may have no `wa_id`; `user_id` is the
/// business-scoped user id (BSUID).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Contact {
    #[serde(default)]
    pub profile: Option<Profile>,
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_user_id: Option<String>,
    #[serde(default)]
    pub identity_key_hash: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// An error object: value-level, per message (unsupported types) or per failed status.
/// The 2022 shape carried `details` at the top level instead of `error_data.details`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct WaError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub href: Option<String>,
}

impl WaError {
    /// The most specific human-readable explanation the error carries.
    pub fn explanation(&self) -> Option<&str> {
        self.error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .or(self.details.as_deref())
            .or(self.message.as_deref())
            .or(self.title.as_deref())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// The few fields of an inbound message that storage needs. It parses any message, of any type,
/// as long as it has an id; everything else stays in the raw JSON.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MessageHead {
    pub id: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    #[serde(default, deserialize_with = "unix_seconds")]
    pub timestamp: i64,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// How a stored message read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// As Meta sent it.
    Whole(InboundMessage),
    /// After repairs (a lone UTF-16 surrogate escape became U+FFFD): what the customer wrote,
    /// minus the characters no text can hold.
    Repaired(InboundMessage),
    /// Not as a message: why, and the words it carries (`text.body`, a caption), if any.
    Unreadable {
        reason: String,
        words: Option<String>,
    },
}

/// Reads a stored message. JSON allows what Rust strings cannot (a lone `\ud800`), and Meta
/// has sent strings where it documents numbers; neither may drop the message.
pub fn read_message(raw: &str) -> Reading {
    let first = match serde_json::from_str::<InboundMessage>(raw) {
        Ok(m) => return Reading::Whole(m),
        Err(e) => e.to_string(),
    };
    let repaired = repair_surrogates(raw);
    if let std::borrow::Cow::Owned(fixed) = &repaired
        && let Ok(m) = serde_json::from_str::<InboundMessage>(fixed)
    {
        return Reading::Repaired(m);
    }
    let words = serde_json::from_str::<serde_json::Value>(&repaired)
        .ok()
        .and_then(|v| {
            let kind = v["type"].as_str().unwrap_or_default().to_owned();
            ["/text/body".to_owned(), format!("/{kind}/caption")]
                .iter()
                .find_map(|p| {
                    v.pointer(p)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                })
        });
    Reading::Unreadable {
        reason: first,
        words,
    }
}

/// Replaces every `\uXXXX` escape of an unpaired UTF-16 surrogate with `\ufffd`.
fn repair_surrogates(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains("\\u") && !raw.contains("\\U") {
        return std::borrow::Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let escape_at = |i: usize| -> Option<u32> {
        if bytes.get(i) == Some(&b'\\') && matches!(bytes.get(i + 1), Some(b'u' | b'U')) {
            raw.get(i + 2..i + 6)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        } else {
            None
        }
    };
    let mut out = String::with_capacity(raw.len());
    let mut changed = false;
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            Some(0xD800..=0xDBFF) => {
                let paired = escape_at(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                if paired {
                    i += 12;
                } else {
                    out.push_str(&raw[last..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    last = i;
                    changed = true;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.push_str(&raw[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
                changed = true;
            }
            Some(_) => i += 6,
            // Any other escape (`\\`, `\"`, …) is two characters: skip both.
            None => i += 2,
        }
    }
    if !changed {
        return std::borrow::Cow::Borrowed(raw);
    }
    out.push_str(&raw[last..]);
    std::borrow::Cow::Owned(out)
}

/// An inbound message with its typed content.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub id: String,
    /// The customer's phone number; omitted for username users with no recent contact.
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    pub from_parent_user_id: Option<String>,
    /// Unix seconds, Meta's clock.
    pub timestamp: i64,
    /// The `type` field exactly as sent.
    pub kind: String,
    pub content: Content,
    pub context: Option<Context>,
    pub referral: Option<Referral>,
    pub errors: Vec<WaError>,
    pub group_id: Option<String>,
    pub identity: Option<Identity>,
}

/// What a message carries, by type. `Unknown` covers types Baton does not know yet and messages
/// whose payload object is missing (Meta then reports why in `errors`).
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(Text),
    Image(Media),
    Audio(Media),
    Video(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Contacts(Vec<SharedContact>),
    Interactive(Interactive),
    Button(Button),
    Reaction(Reaction),
    Order(Order),
    System(System),
    Unsupported(Unsupported),
    Revoke(Revoke),
    Edit(Box<Edit>),
    RequestWelcome,
    Unknown { kind: String },
}

impl Content {
    /// The media object, for the types that carry a downloadable file.
    pub fn media(&self) -> Option<&Media> {
        match self {
            Content::Image(m)
            | Content::Audio(m)
            | Content::Video(m)
            | Content::Document(m)
            | Content::Sticker(m) => Some(m),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Text {
    #[serde(default)]
    pub body: String,
}

/// Image, audio, video, document or sticker. `url` appears in webhooks since late 2025.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Media {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Base64 SHA-256 of the file as Meta reports it.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    /// Documents only.
    #[serde(default)]
    pub filename: Option<String>,
    /// Audio only: a voice note recorded in WhatsApp.
    #[serde(default)]
    pub voice: Option<bool>,
    /// Stickers only.
    #[serde(default)]
    pub animated: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Location {
    #[serde(deserialize_with = "float_or_string")]
    pub latitude: f64,
    #[serde(deserialize_with = "float_or_string")]
    pub longitude: f64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A contact card the customer shared.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedContact {
    #[serde(default)]
    pub name: SharedContactName,
    #[serde(default)]
    pub phones: Vec<SharedPhone>,
    #[serde(default)]
    pub emails: Vec<SharedEmail>,
    #[serde(default)]
    pub org: Option<SharedOrg>,
    #[serde(default)]
    pub birthday: Option<String>,
    #[serde(default)]
    pub vcard: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedContactName {
    #[serde(default)]
    pub formatted_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedPhone {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedEmail {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedOrg {
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// A reply to an interactive message: a button, a list row, a Flow, or something newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interactive {
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// A WhatsApp Flow completion; `response_json` is a JSON document inside a string.
    NfmReply {
        name: Option<String>,
        body: Option<String>,
        response_json: String,
    },
    Other {
        kind: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Button {
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub text: String,
}

/// A reaction to an earlier message; `emoji: None` means the reaction was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub message_id: String,
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Order {
    #[serde(default)]
    pub catalog_id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub product_items: Vec<ProductItem>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ProductItem {
    #[serde(default)]
    pub product_retailer_id: String,
    #[serde(default, deserialize_with = "float_or_string_default")]
    pub quantity: f64,
    #[serde(default, deserialize_with = "float_or_string_default")]
    pub item_price: f64,
    #[serde(default)]
    pub currency: String,
}

/// A system notice: the customer changed number, identity or user id.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct System {
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The new number, for `user_changed_number`.
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Identity {
    #[serde(default)]
    pub acknowledged: Option<bool>,
    #[serde(default)]
    pub created_timestamp: Option<String>,
    #[serde(default)]
    pub hash: Option<String>,
}

/// A message WhatsApp could not deliver to the API; `kind` names what it was (poll, edit, …) when
/// Meta says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsupported {
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Revoke {
    #[serde(default)]
    pub original_message_id: String,
}

/// An edit of an earlier message; `message` is the new version (its id is the original's).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub original_message_id: String,
    pub message: Option<InboundMessage>,
}

/// Reply and forwarding information.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Context {
    /// The sender of the quoted message (the business number, for replies to the business).
    #[serde(default)]
    pub from: Option<String>,
    /// The wamid of the quoted message.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub forwarded: Option<bool>,
    #[serde(default)]
    pub frequently_forwarded: Option<bool>,
    #[serde(default)]
    pub referred_product: Option<ReferredProduct>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ReferredProduct {
    #[serde(default)]
    pub catalog_id: String,
    #[serde(default)]
    pub product_retailer_id: String,
}

/// The Click-to-WhatsApp ad that started the conversation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Referral {
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub source_id: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub video_url: Option<String>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub ctwa_clid: Option<String>,
    #[serde(default)]
    pub welcome_message: Option<WelcomeMessage>,
}

/// The ad's pre-filled greeting.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct WelcomeMessage {
    #[serde(default)]
    pub text: String,
}

/// A delivery status of a message the business sent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Status {
    pub id: String,
    pub status: StatusKind,
    #[serde(default, deserialize_with = "unix_seconds")]
    pub timestamp: i64,
    #[serde(default)]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub recipient_parent_user_id: Option<String>,
    #[serde(default)]
    pub recipient_type: Option<String>,
    #[serde(default)]
    pub recipient_participant_id: Option<String>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub conversation: Option<StatusConversation>,
    #[serde(default)]
    pub pricing: Option<Pricing>,
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// The state of an outbound message. Statuses arrive out of order and more than once, so they are
/// ranked: a stored status is replaced only by a higher rank; `failed` is terminal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    Other(String),
}

impl StatusKind {
    pub fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }

    /// sent < delivered < read < played < failed. Unknown names rank 0: stored when nothing is
    /// known yet, never replacing a known status.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Other(_) => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Played => 4,
            Self::Failed => 9,
        }
    }
}

impl<'de> Deserialize<'de> for StatusKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct StatusConversation {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_unix_seconds")]
    pub expiration_timestamp: Option<i64>,
    #[serde(default)]
    pub origin: Option<ConversationOrigin>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ConversationOrigin {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Pricing {
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub pricing_model: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

/// The wire form of a message: every known payload object is optional, so a message with a
/// missing or unknown payload still parses.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    #[serde(default)]
    from_parent_user_id: Option<String>,
    #[serde(default, deserialize_with = "unix_seconds")]
    timestamp: i64,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    referral: Option<Referral>,
    #[serde(default)]
    errors: Vec<WaError>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    identity: Option<Identity>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    audio: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    sticker: Option<Media>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    contacts: Option<Vec<SharedContact>>,
    #[serde(default)]
    interactive: Option<WireInteractive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    reaction: Option<WireReaction>,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    system: Option<System>,
    #[serde(default)]
    unsupported: Option<WireUnsupported>,
    #[serde(default)]
    revoke: Option<Revoke>,
    #[serde(default)]
    edit: Option<WireEdit>,
}

#[derive(Deserialize)]
struct WireInteractive {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    button_reply: Option<WireReply>,
    #[serde(default)]
    list_reply: Option<WireReply>,
    #[serde(default)]
    nfm_reply: Option<WireNfm>,
}

#[derive(Deserialize)]
struct WireReply {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct WireNfm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    response_json: String,
}

#[derive(Deserialize)]
struct WireReaction {
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct WireUnsupported {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct WireEdit {
    #[serde(default)]
    original_message_id: String,
    #[serde(default)]
    message: Option<Box<WireMessage>>,
}

impl<'de> Deserialize<'de> for InboundMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireMessage::deserialize(d).map(InboundMessage::from)
    }
}

impl From<WireMessage> for InboundMessage {
    fn from(w: WireMessage) -> Self {
        let kind = w.kind.clone().unwrap_or_default();
        let unknown = || Content::Unknown { kind: kind.clone() };
        let content = match kind.as_str() {
            "text" => w.text.map(Content::Text),
            "image" => w.image.map(Content::Image),
            "audio" => w.audio.map(Content::Audio),
            "video" => w.video.map(Content::Video),
            "document" => w.document.map(Content::Document),
            "sticker" => w.sticker.map(Content::Sticker),
            "location" => w.location.map(Content::Location),
            "contacts" => w.contacts.map(Content::Contacts),
            "interactive" => w.interactive.map(|i| {
                Content::Interactive(
                    match (i.kind.as_str(), i.button_reply, i.list_reply, i.nfm_reply) {
                        ("button_reply", Some(r), _, _) => Interactive::ButtonReply {
                            id: r.id,
                            title: r.title,
                        },
                        ("list_reply", _, Some(r), _) => Interactive::ListReply {
                            id: r.id,
                            title: r.title,
                            description: r.description,
                        },
                        ("nfm_reply", _, _, Some(n)) => Interactive::NfmReply {
                            name: n.name,
                            body: n.body,
                            response_json: n.response_json,
                        },
                        _ => Interactive::Other { kind: i.kind },
                    },
                )
            }),
            "button" => w.button.map(Content::Button),
            "reaction" => w.reaction.map(|r| {
                Content::Reaction(Reaction {
                    message_id: r.message_id,
                    emoji: r.emoji.filter(|e| !e.is_empty()),
                })
            }),
            "order" => w.order.map(Content::Order),
            "system" => w.system.map(Content::System),
            "unsupported" | "unknown" => Some(Content::Unsupported(Unsupported {
                kind: w.unsupported.and_then(|u| u.kind),
            })),
            "revoke" => w.revoke.map(Content::Revoke),
            "edit" => w.edit.map(|e| {
                let original_message_id = e.original_message_id;
                let message = e.message.map(|m| {
                    let mut m = InboundMessage::from(*m);
                    if m.id.is_empty() {
                        m.id.clone_from(&original_message_id);
                    }
                    m
                });
                Content::Edit(Box::new(Edit {
                    original_message_id,
                    message,
                }))
            }),
            "request_welcome" => Some(Content::RequestWelcome),
            _ => None,
        }
        .unwrap_or_else(unknown);
        InboundMessage {
            id: w.id,
            from: w.from,
            from_user_id: w.from_user_id,
            from_parent_user_id: w.from_parent_user_id,
            timestamp: w.timestamp,
            kind,
            content,
            context: w.context,
            referral: w.referral,
            errors: w.errors,
            group_id: w.group_id,
            identity: w.identity,
        }
    }
}

/// A number or a string holding one; WhatsApp documents strings and sometimes sends numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr<'a> {
    Int(i64),
    Float(f64),
    #[serde(borrow)]
    Str(std::borrow::Cow<'a, str>),
}

fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    opt_unix_seconds(d).map(Option::unwrap_or_default)
}

fn opt_unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<NumOrStr<'_>>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::Int(i)) => Ok(Some(i)),
        Some(NumOrStr::Float(f)) => Ok(Some(f as i64)),
        Some(NumOrStr::Str(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("timestamp {s:?} is not unix seconds"))),
    }
}

fn float_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Int(i) => Ok(i as f64),
        NumOrStr::Float(f) => Ok(f),
        NumOrStr::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| de::Error::custom(format!("{s:?} is not a number"))),
    }
}

fn float_or_string_default<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    float_or_string(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_messages_read_whole_repaired_or_as_unreadable() {
        let text = |body: &str| {
            format!(
                r#"{{"from":"1","id":"wamid.x","timestamp":"1","type":"text","text":{{"body":"{body}"}}}}"#
            )
        };
        assert!(matches!(read_message(&text("hi")), Reading::Whole(_)));
        // A lone surrogate, leading or trailing, becomes U+FFFD; a pair and an escaped
        // backslash stay as they are.
        for (raw, want) in [
            (r"a\ud800b", "a\u{fffd}b"),
            (r"a\udc00b", "a\u{fffd}b"),
            (r"\ud83d\ude00 \ud800", "\u{1f600} \u{fffd}"),
            (r"\\ud800 \ud800", "\\ud800 \u{fffd}"),
        ] {
            let Reading::Repaired(m) = read_message(&text(raw)) else {
                panic!("{raw} not repaired")
            };
            let Content::Text(t) = m.content else {
                panic!()
            };
            assert_eq!(t.body, want, "{raw}");
        }
        let location = r#"{"from":"1","id":"wamid.y","timestamp":"1","type":"location","location":{"latitude":"LATITUDE","longitude":"LONGITUDE"}}"#;
        let Reading::Unreadable { reason, words } = read_message(location) else {
            panic!("a placeholder number")
        };
        assert!(
            reason.contains("LATITUDE") || reason.contains("invalid"),
            "{reason}"
        );
        assert_eq!(words, None);
    }
}
