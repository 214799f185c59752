//! The records the handoff function writes: one handoff per open conversation episode, and one
//! media copy per customer file.

use serde::{Deserialize, Serialize};

use super::records::{AgentEventRecord, ConversationKey, MessageRecord};

/// Why a handoff was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// The AI agent sent a handoff event.
    AgentRequest,
    /// The customer asked for a person.
    CustomerAsked,
    /// A configured keyword appeared in the customer's message.
    Keyword,
    /// The agent marked this many events in a row as failures.
    AgentFailures,
    /// Meta's Conversation Routing passed the thread to Baton (`control_passed`).
    ControlPassed,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentRequest => "agent_request",
            Self::CustomerAsked => "customer_asked",
            Self::Keyword => "keyword",
            Self::AgentFailures => "agent_failures",
            Self::ControlPassed => "control_passed",
        }
    }
}

/// The event that opened a handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// The wamid or agent event id that fired it.
    pub source_id: String,
    /// Unix seconds of that message or event.
    pub at: i64,
    /// What matched: the phrase, keyword or failure count.
    pub detail: String,
    /// The language whose phrase table matched (BCP-47), if any.
    pub language: Option<String>,
}

/// The escalation reason the rep reads first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// A short machine-friendly category (the agent's, or Baton's: `customer_request`,
    /// `keyword`, `agent_failures`).
    pub category: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "negative" => Self::Negative,
            "neutral" => Self::Neutral,
            "positive" => Self::Positive,
            _ => return None,
        })
    }
}

/// Where an insight came from: the agent's own value wins over the LLM's, which wins over
/// Baton's built-in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Agent,
    Llm,
    /// A model on Amazon Bedrock in the team's account.
    Bedrock,
    Builtin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// From -1 (most negative) to 1 (most positive).
    pub score: f64,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// BCP-47 code of the customer's language; `None` when there was too little text.
    pub language: Option<String>,
    pub language_source: Source,
    pub sentiment: Sentiment,
    pub summary: String,
    pub summary_source: Source,
    /// What wrote the summary, for the note ("Amazon Bedrock (model)", "the AI agent", or the
    /// built-in one and why no model did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_by: Option<String>,
    /// The model's one-sentence reason a person is needed, beside Baton's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_reason: Option<String>,
}

/// Where the rendered transcript was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptRef {
    /// Object key in the media bucket (or under the local data directory).
    pub key: String,
    pub bytes: u64,
    pub messages: u32,
    pub agent_events: u32,
    /// The order key of the last timeline entry the transcript holds: later customer messages
    /// are follow-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_key: Option<String>,
}

/// Who the customer is, as WhatsApp told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub profile_name: Option<String>,
    /// The business number the customer wrote to.
    pub display_phone_number: String,
}

impl Customer {
    /// What the transcript and the session page call the customer: their WhatsApp profile
    /// name, else their username, else "customer".
    pub fn name(&self) -> String {
        self.profile_name
            .clone()
            .or_else(|| self.username.clone())
            .unwrap_or_else(|| "customer".into())
    }

    /// How to reach them: `+<number>`, else the business-scoped user id, else the
    /// conversation's customer key.
    pub fn address(&self, key: &ConversationKey) -> String {
        self.wa_id
            .as_deref()
            .map(|w| format!("+{}", w.trim_start_matches('+')))
            .or_else(|| self.user_id.clone())
            .unwrap_or_else(|| key.customer.clone())
    }
}

/// The state of one customer file's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Copied,
    /// Copying failed; `retryable` says whether another attempt could succeed.
    Failed,
    /// Still being copied when the handoff (or follow-up) stopped waiting for it: the file follows
    /// on the ticket when it lands. Only in handoff records and follow-ups, never stored alone.
    Pending,
}

/// One file the customer sent and its copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub conversation: ConversationKey,
    pub wamid: String,
    /// image, audio, video, document or sticker.
    pub kind: String,
    pub media_id: String,
    pub state: MediaState,
    /// Deterministic object key; set once copied.
    pub key: Option<String>,
    pub content_type: Option<String>,
    /// The document's original name, or one made from the kind and type.
    pub filename: String,
    pub bytes: Option<u64>,
    /// What Meta said the file's SHA-256 is (base64), and whether the bytes matched it.
    pub sha256_expected: Option<String>,
    pub sha256_matches: Option<bool>,
    pub error: Option<String>,
    pub retryable: bool,
    pub attempts: u32,
    pub updated_at_ms: i64,
}

/// One handoff: everything the rep needs, written once per conversation episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffRecord {
    pub id: String,
    pub conversation: ConversationKey,
    pub episode: u32,
    pub trigger: Trigger,
    pub reason: Reason,
    pub customer: Customer,
    pub insights: Insights,
    pub transcript: TranscriptRef,
    pub media: Vec<MediaRecord>,
    /// Unix seconds when the 24-hour reply window closes; `None` when the customer never wrote.
    pub reply_window_closes_at: Option<i64>,
    pub created_at_ms: i64,
    /// Who owned the WhatsApp thread when the handoff was made (Meta's Conversation Routing);
    /// `None` when routing never showed in the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadOwner>,
}

/// Who owns the customer's WhatsApp thread under Meta's Conversation Routing, as far as Baton
/// knows: Meta tells an app when a thread is passed to it or taken from it, never what it did
/// itself, so Baton keeps track of its own moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadOwner {
    /// The primary responder: the AI agent.
    Primary,
    /// Baton, as the business's escalation partner.
    Baton,
    /// Another partner took it (`control_taken`).
    Other,
    /// Nobody: released, or idle after 24 hours without a customer message.
    Idle,
}

impl ThreadOwner {
    pub const ALL: [Self; 4] = [Self::Primary, Self::Baton, Self::Other, Self::Idle];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Baton => "baton",
            Self::Other => "other",
            Self::Idle => "idle",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Primary => "the AI agent (the primary responder)",
            Self::Baton => "Baton (the escalation partner)",
            Self::Other => "another partner",
            Self::Idle => "nobody (idle)",
        }
    }
}

impl HandoffRecord {
    /// The handoff id of a conversation's episode: stable, so every retry names the same handoff,
    /// and free of the customer's number.
    pub fn id_for(key: &ConversationKey, episode: u32) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}#{episode}", key.partition()).as_bytes());
        format!("ho_{}", hex::encode(&digest[..12]))
    }
}

/// What a conversation's handoff claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub episode: u32,
    /// The trigger (`source_id`) that opened the episode.
    pub trigger: String,
    /// True when this call opened the episode.
    pub opened: bool,
}

/// A record the store produced, as the stream (or the embedded change feed) carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Message(MessageRecord),
    AgentEvent(AgentEventRecord),
    Handoff(Box<HandoffRecord>),
    TicketEvent(Box<super::TicketEvent>),
}
