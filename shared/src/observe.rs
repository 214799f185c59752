//! Observability: correlation ids that name a message or a customer without revealing them, and
//! CloudWatch metrics in the Embedded Metric Format (EMF).
//!
//! Logs are JSON lines from the Lambda runtime's tracing subscriber (template.yaml sets
//! `LogFormat: JSON`). A message is named in logs by [`message_ref`], never by its wamid: a wamid
//! is base64 that contains the customer's phone number. Phone numbers go through [`mask_phone`].
//! One handoff is named by its id (`ho_…`, a hash) in every function's logs.
//!
//! Metrics are counted in-process with [`count`] and written by [`flush`] as one EMF line on
//! stdout at the end of each invocation; CloudWatch Logs turns it into metrics in the namespace
//! `BATON_METRICS_NAMESPACE` (default `Baton`) with the dimension `Function`. Nothing is written
//! outside Lambda (no `AWS_LAMBDA_FUNCTION_NAME`) unless `BATON_EMF=1`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// The namespace variable; template.yaml sets it per stack.
pub const METRICS_NAMESPACE: &str = "BATON_METRICS_NAMESPACE";
const DEFAULT_NAMESPACE: &str = "Baton";

/// Metric names, one place for all functions (the README's Observability table lists them).
pub mod metric {
    /// Signed webhook deliveries stored (`Deliveries`), refused (bad or missing signature, too
    /// large) and seen before.
    pub const DELIVERIES: &str = "Deliveries";
    pub const DELIVERIES_REFUSED: &str = "DeliveriesRefused";
    pub const DUPLICATE_DELIVERIES: &str = "DuplicateDeliveries";
    pub const MESSAGES_NEW: &str = "MessagesNew";
    pub const MESSAGES_DUPLICATE: &str = "MessagesDuplicate";
    /// Stored messages the transcript could only read in part (repaired, or shown as unreadable).
    pub const MESSAGES_UNREADABLE: &str = "MessagesUnreadable";
    pub const AGENT_EVENTS: &str = "AgentEvents";
    pub const SESSION_PAGES: &str = "SessionPageViews";
    pub const SESSION_PAGES_REFUSED: &str = "SessionPagesRefused";
    pub const HANDOFFS: &str = "Handoffs";
    pub const MEDIA_COPIED: &str = "MediaCopied";
    pub const MEDIA_FAILED: &str = "MediaFailed";
    pub const HUBSPOT_CALLS: &str = "HubspotCalls";
    pub const HUBSPOT_RETRIES: &str = "HubspotRetries";
    pub const HUBSPOT_FAILURES: &str = "HubspotFailures";
    pub const HANDOFFS_DELIVERED: &str = "HandoffsDelivered";
    pub const HANDOFFS_PARKED: &str = "HandoffsParked";
    /// Customer messages passed on to an open handoff's ticket.
    pub const FOLLOW_UPS: &str = "FollowUps";
    /// Reps' replies and ticket stage changes received from HubSpot.
    pub const HUBSPOT_EVENTS: &str = "HubspotEvents";
    pub const TICKET_EVENTS_DONE: &str = "TicketEventsDone";
    pub const TICKET_EVENTS_PARKED: &str = "TicketEventsParked";
}

static COUNTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// Adds `n` to the metric `name` for this invocation.
pub fn count(name: &'static str, n: u64) {
    if n == 0 {
        return;
    }
    let mut counts = COUNTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *counts.entry(name).or_default() += n;
}

/// Takes the counts so far.
fn take() -> BTreeMap<&'static str, u64> {
    std::mem::take(
        &mut *COUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// One EMF line for `counts` under `namespace`, dimension `Function` = `function`.
pub fn emf_line(
    namespace: &str,
    function: &str,
    counts: &BTreeMap<&'static str, u64>,
    now_ms: i64,
) -> String {
    let metrics: Vec<serde_json::Value> = counts
        .keys()
        .map(|name| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function"]],
                "Metrics": metrics,
            }]
        },
        "Function": function,
    });
    for (name, value) in counts {
        doc[*name] = serde_json::json!(value);
    }
    doc.to_string()
}

fn enabled() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("BATON_EMF").is_ok_and(|v| v == "1")
}

/// Writes this invocation's counts as one EMF line on stdout (in Lambda), and resets them.
pub fn flush(function: &str) {
    let counts = take();
    if counts.is_empty() || !enabled() {
        return;
    }
    let namespace =
        std::env::var(METRICS_NAMESPACE).unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    let line = emf_line(&namespace, function, &counts, crate::clock::now_ms());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A message's correlation id: `m_` and 12 hex digits of the SHA-256 of its wamid. Stable across
/// the three functions, so one message can be followed through the logs.
pub fn message_ref(wamid: &str) -> String {
    format!("m_{}", hex::encode(&Sha256::digest(wamid.as_bytes())[..6]))
}

/// A phone number (or WhatsApp id) as logs may show it: the country code's first digits and the
/// last two, the rest masked (`+16*******34`). Anything that is not a number is reduced to a
/// hash (`id_…`).
pub fn mask_phone(s: &str) -> String {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let looks_like_number = !digits.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !looks_like_number {
        return format!("id_{}", hex::encode(&Sha256::digest(s.as_bytes())[..4]));
    }
    if digits.len() <= 4 {
        return format!("+{}", "*".repeat(digits.len()));
    }
    let (head, tail) = (&digits[..2], &digits[digits.len() - 2..]);
    format!("+{head}{}{tail}", "*".repeat(digits.len() - 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_wamids_never_appear_in_what_logs_show() {
        assert_eq!(mask_phone("+16505551234"), "+16*******34");
        assert_eq!(mask_phone("16505551234"), "+16*******34");
        assert_eq!(mask_phone("123"), "+***");
        let bsuid = mask_phone("US.13491208655302741918");
        assert!(
            bsuid.starts_with("id_") && !bsuid.contains("1349"),
            "{bsuid}"
        );
        let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
        let r = message_ref(wamid);
        assert_eq!(r.len(), 14);
        assert_eq!(r, message_ref(wamid), "stable");
        assert_ne!(r, message_ref("wamid.other"));
    }

    #[test]
    fn counts_become_one_emf_document() {
        let mut counts = BTreeMap::new();
        counts.insert(metric::DELIVERIES, 2);
        counts.insert(metric::MESSAGES_NEW, 3);
        let line = emf_line("Baton/prod", "webhook", &counts, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Baton/prod");
        assert_eq!(cw["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(
            cw["Metrics"],
            serde_json::json!([
                {"Name": "Deliveries", "Unit": "Count"},
                {"Name": "MessagesNew", "Unit": "Count"}
            ])
        );
        assert_eq!(v["Function"], "webhook");
        assert_eq!(v["Deliveries"], 2);
        assert_eq!(v["MessagesNew"], 3);
    }
}
