//! Helpers for the tests and benchmarks of the crates that build on this one (feature
//! `test-support`).

use crate::domain::{
    ConversationKey, Customer, HandoffRecord, Insights, MediaRecord, MediaState, Reason, Sentiment,
    SentimentLabel, Source, TranscriptRef, Trigger, TriggerKind,
};

/// This process's peak resident memory so far (`VmHWM` in `/proc/self/status`), in KiB; 0 where
/// the figure is not available.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A customer's file the handoff function copied to `object_key` in the media bucket.
pub fn copied_file(
    conversation: &ConversationKey,
    wamid: &str,
    object_key: &str,
    filename: &str,
    content_type: &str,
    bytes: u64,
) -> MediaRecord {
    MediaRecord {
        conversation: conversation.clone(),
        wamid: wamid.to_owned(),
        kind: if content_type.starts_with("image/") {
            "image"
        } else {
            "document"
        }
        .into(),
        media_id: format!("media-{wamid}"),
        state: MediaState::Copied,
        key: Some(object_key.to_owned()),
        content_type: Some(content_type.to_owned()),
        filename: filename.to_owned(),
        bytes: Some(bytes),
        sha256_expected: None,
        sha256_matches: Some(true),
        error: None,
        retryable: false,
        attempts: 1,
        updated_at_ms: 0,
    }
}

/// A handoff record as the handoff function writes it when a customer asks for a person at
/// `at` (unix seconds): English, negative, the reply window open for 24 hours. Tests change
/// the fields they are about.
pub fn handoff_record(
    conversation: ConversationKey,
    episode: u32,
    customer: Customer,
    transcript: TranscriptRef,
    media: Vec<MediaRecord>,
    at: i64,
) -> HandoffRecord {
    HandoffRecord {
        id: HandoffRecord::id_for(&conversation, episode),
        conversation,
        episode,
        trigger: Trigger {
            kind: TriggerKind::CustomerAsked,
            source_id: "wamid.x".into(),
            at,
            detail: "human".into(),
            language: Some("en".into()),
        },
        reason: Reason {
            category: "customer_request".into(),
            text: "The customer asked for a person".into(),
        },
        customer,
        insights: Insights {
            language: Some("en".into()),
            language_source: Source::Builtin,
            sentiment: Sentiment {
                label: SentimentLabel::Negative,
                score: -0.5,
                source: Source::Builtin,
            },
            summary: "Order arrived broken.".into(),
            summary_source: Source::Builtin,
        },
        transcript,
        media,
        reply_window_closes_at: Some(at + 86_400),
        created_at_ms: at * 1000,
    }
}
