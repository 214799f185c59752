//! Builders for the records the functions hand each other, and a benchmark's figures (time and
//! peak memory of a child process).

use baton_shared::domain::{
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

/// For a benchmark's child process: prints its time since `started` and its peak memory, for
/// [`child_figures`] to read.
pub fn print_child_figures(started: std::time::Instant) {
    println!("{} {}", started.elapsed().as_secs_f64(), peak_rss_kib());
}

/// Runs a benchmark's child process (which ends with [`print_child_figures`]) and returns its
/// seconds and peak memory in KiB; panics with its stderr when it fails.
pub fn child_figures(command: &mut std::process::Command) -> (f64, u64) {
    let out = command
        .output()
        .expect("start the benchmark's child process");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let secs = parts.next().and_then(|p| p.parse().ok());
    let kib = parts.next().and_then(|p| p.parse().ok());
    secs.zip(kib)
        .unwrap_or_else(|| panic!("the child printed no figures: {text}"))
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
            summary_by: None,
            model_reason: None,
        },
        transcript,
        media,
        reply_window_closes_at: Some(at + 86_400),
        created_at_ms: at * 1000,
        thread: None,
    }
}
