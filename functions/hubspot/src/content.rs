//! What the rep reads: the ticket's subject and description, and the handoff note's HTML. Pure.

use baton_shared::domain::{HandoffRecord, MediaRecord, MediaState, ThreadOwner};
use baton_shared::transcript::utc;

/// HubSpot's limit on a multi-line text property such as `content` and `hs_note_body`.
pub const MAX_TEXT: usize = 65_536;

/// The file name the full transcript is attached under when the ticket's copy is cut.
pub fn transcript_file_name(handoff_id: &str) -> String {
    format!("transcript-{handoff_id}.txt")
}

/// Length as HubSpot may count it: UTF-16 code units (never fewer than characters).
fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Budgets, in UTF-16 units, for the text the agent or the customer controls, so the ticket's
/// `content` and the note's `hs_note_body` stay within [`MAX_TEXT`] however long an agent's
/// summary or reason is, or however many files a customer sent: a property over the limit would
/// be a validation error, and the handoff would park on every replay.
const NAME_BUDGET: usize = 300;
const REASON_BUDGET: usize = 3_000;
const SUMMARY_BUDGET: usize = 20_000;
/// Each list in the note (files attached, files missing), escaped.
const LIST_BUDGET: usize = 12_000;
const LIST_ITEM_BUDGET: usize = 1_000;

/// The longest prefix of `s` within `max` UTF-16 units.
fn chars_within(s: &str, max: usize) -> &str {
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// The longest prefix of `s` within `max` UTF-16 units, cut at a line end where one is close.
fn prefix_within(s: &str, max: usize) -> &str {
    let cut = chars_within(s, max);
    match cut.rfind('\n') {
        Some(nl) if cut.len() - nl < 2_000 => &s[..nl + 1],
        _ => cut,
    }
}

/// `s` when it fits `max` UTF-16 units, else its longest prefix that fits with a closing "…".
fn clip(s: &str, max: usize) -> String {
    if units(s) <= max {
        s.to_owned()
    } else {
        format!("{}…", chars_within(s, max.saturating_sub(1)))
    }
}

/// `s` escaped for HTML within `max` UTF-16 units of output, closed with "…" when cut.
fn escape_within(s: &str, max: usize) -> String {
    let whole = escape(s);
    if units(&whole) <= max {
        return whole;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        used += units(&piece);
        if used > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
    }
    out.push('…');
    out
}

/// Escaped items joined by `sep` within [`LIST_BUDGET`]; the items that don't fit are counted.
fn list_within(items: &[String], sep: &str) -> String {
    let mut out = String::new();
    for (n, item) in items.iter().enumerate() {
        let piece = escape_within(item, LIST_ITEM_BUDGET);
        let rest = items.len() - n - 1;
        // Room for this item, its separator and, if more follow, the closing count.
        let tail = if rest > 0 { 40 } else { 0 };
        if units(&out) + units(sep) + units(&piece) + tail > LIST_BUDGET {
            out.push_str(&format!("{sep}… and {} more", items.len() - n));
            return out;
        }
        if n > 0 {
            out.push_str(sep);
        }
        out.push_str(&piece);
    }
    out
}

pub fn display_name(record: &HandoffRecord) -> String {
    let c = &record.customer;
    let name = c
        .profile_name
        .as_deref()
        .or(c.username.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| c.wa_id.as_ref().map(|w| format!("+{w}")))
        .or_else(|| c.user_id.clone())
        .unwrap_or_else(|| "WhatsApp customer".into());
    clip(&name, NAME_BUDGET)
}

pub fn subject(record: &HandoffRecord) -> String {
    format!(
        "WhatsApp: {} — {}",
        clip(&display_name(record), 80),
        clip(&record.reason.text, 120)
    )
}

/// The ticket description: the summary, then the transcript; cut with a marker when the whole
/// would pass HubSpot's limit. Returns the text and whether it was cut.
pub fn ticket_content(record: &HandoffRecord, transcript: &str) -> (String, bool) {
    let head = format!(
        "WhatsApp handoff — {}\nReason: {}\nSummary: {}\n\n",
        display_name(record),
        clip(&record.reason.text, REASON_BUDGET),
        clip(&record.insights.summary, SUMMARY_BUDGET)
    );
    let whole = format!("{head}{transcript}");
    if units(&whole) <= MAX_TEXT {
        return (whole, false);
    }
    let marker = format!(
        "\n[… transcript cut here: HubSpot's {MAX_TEXT}-character limit. The full transcript is attached to the handoff note as {} …]",
        transcript_file_name(&record.id)
    );
    let room = MAX_TEXT.saturating_sub(units(&head) + units(&marker));
    let kept = prefix_within(transcript, room);
    (format!("{head}{kept}{marker}"), true)
}

fn escape(s: &str) -> String {
    baton_shared::html::escape(s).replace('\n', "<br>")
}

/// The marker that identifies a handoff's note, so a retry finds the note it already posted.
pub fn note_marker(handoff_id: &str) -> String {
    format!("Baton handoff {handoff_id}")
}

/// The handoff note's HTML. `attached` names the uploaded files, `not_attached` the files
/// HubSpot refused or that are gone, with the reason; `session` is the signed link.
pub fn note_body(
    record: &HandoffRecord,
    attached: &[String],
    not_attached: &[(String, String)],
    session: Option<&str>,
    contact_problem: Option<&str>,
) -> String {
    let i = &record.insights;
    let mut html = String::new();
    html.push_str(&format!(
        "<p><strong>WhatsApp handoff</strong> — {}</p>",
        escape_within(&display_name(record), NAME_BUDGET)
    ));
    if let Some(why) = contact_problem {
        html.push_str(&format!(
            "<p><strong>No contact linked</strong>: {}</p>",
            escape_within(why, REASON_BUDGET)
        ));
    }
    html.push_str(&format!(
        "<p><strong>Escalation reason</strong> ({}): {}</p>",
        escape_within(&record.reason.category, 200),
        escape_within(&record.reason.text, REASON_BUDGET)
    ));
    if let Some(why) = &i.model_reason {
        html.push_str(&format!(
            "<p><strong>Why a person, in the model's words</strong>: {}</p>",
            escape_within(why, REASON_BUDGET)
        ));
    }
    html.push_str(&format!(
        "<p><strong>AI summary</strong>: {}</p>",
        escape_within(&i.summary, SUMMARY_BUDGET)
    ));
    if let Some(by) = &i.summary_by {
        html.push_str(&format!(
            "<p><em>Summary by {}</em></p>",
            escape_within(by, REASON_BUDGET)
        ));
    }
    html.push_str(&format!(
        "<p><strong>Sentiment</strong>: {} ({:+.2}) · <strong>Language</strong>: {}</p>",
        i.sentiment.label.as_str(),
        i.sentiment.score,
        escape_within(i.language.as_deref().unwrap_or("unknown"), 100)
    ));
    match record.reply_window_closes_at {
        Some(at) => html.push_str(&format!(
            "<p><strong>Reply window</strong>: free-form WhatsApp replies until {} (24 hours after the customer's last message); after that only approved templates.</p>",
            utc(at)
        )),
        None => html.push_str(
            "<p><strong>Reply window</strong>: closed — the customer has not written; only approved templates can be sent.</p>",
        ),
    }
    if let Some(link) = session {
        html.push_str(&format!(
            "<p><strong>Session</strong>: <a href=\"{}\">the whole conversation, the AI's reasoning and tool calls, and the media</a></p>",
            escape(link)
        ));
    }
    if !attached.is_empty() {
        html.push_str(&format!(
            "<p><strong>Attached</strong>: {}</p>",
            list_within(attached, ", ")
        ));
    }
    let missing: Vec<String> = record
        .media
        .iter()
        .filter(|m| m.state != MediaState::Copied)
        .map(|m| format!("{} ({}): {}", m.filename, m.kind, not_copied(m)))
        .chain(
            not_attached
                .iter()
                .map(|(name, why)| format!("{name}: not attached: {why}")),
        )
        .collect();
    if !missing.is_empty() {
        html.push_str(&format!(
            "<p><strong>Files not attached</strong>: {}</p>",
            list_within(&missing, "; ")
        ));
    }
    marked(html, &note_marker(&record.id))
}

/// The marker that identifies a ticket event's note (never the handoff note's marker, which a
/// handoff's retry looks for): the handoff and a hash of the event id (which may hold a wamid).
pub fn event_marker(handoff_id: &str, event_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(event_id.as_bytes());
    format!(
        "Baton ticket event {handoff_id}/{}",
        hex::encode(&digest[..8])
    )
}

/// The budget for a rep's reply or a customer's follow-up quoted in a note.
const QUOTE_BUDGET: usize = 20_000;

fn quote(text: &str) -> String {
    format!(
        "<blockquote>{}</blockquote>",
        escape_within(text, QUOTE_BUDGET)
    )
}

/// `html` with the marker a retry looks for, in small print at the end.
pub fn marked(mut html: String, marker: &str) -> String {
    html.push_str(&format!("<p><small>{marker}</small></p>"));
    html
}

/// A customer message after the handoff: who, when, what, its file, and the reply window it
/// opened.
pub fn follow_up_note(
    record: &HandoffRecord,
    at: i64,
    text: &str,
    file: Option<(&str, Result<(), &str>)>,
    window_closes_at: Option<i64>,
) -> String {
    let mut html = format!(
        "<p><strong>WhatsApp follow-up</strong> from {} at {}</p>{}",
        escape_within(&display_name(record), NAME_BUDGET),
        utc(at),
        quote(text)
    );
    match file {
        Some((name, Ok(()))) => html.push_str(&format!(
            "<p><strong>Attached</strong>: {}</p>",
            escape_within(name, LIST_ITEM_BUDGET)
        )),
        Some((name, Err(why))) => html.push_str(&format!(
            "<p><strong>File not attached</strong>: {}: {}</p>",
            escape_within(name, LIST_ITEM_BUDGET),
            escape_within(why, LIST_ITEM_BUDGET)
        )),
        None => {}
    }
    if let Some(closes) = window_closes_at {
        html.push_str(&format!(
            "<p><strong>Reply window</strong>: open until {}</p>",
            utc(closes)
        ));
    }
    html
}

/// Why a customer's file is not attached (yet).
pub fn not_copied(m: &MediaRecord) -> String {
    match m.state {
        MediaState::Pending => {
            "still being copied from WhatsApp: it follows on the ticket when it lands".to_owned()
        }
        _ => format!(
            "not copied from WhatsApp: {}",
            m.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

/// The note for a file that followed the ticket: attached now, or why not.
pub fn file_landed_note(
    record: &HandoffRecord,
    media: &MediaRecord,
    outcome: Result<(), &str>,
) -> String {
    let name = escape_within(&media.filename, LIST_ITEM_BUDGET);
    let from = escape_within(&display_name(record), NAME_BUDGET);
    match outcome {
        Ok(()) => format!(
            "<p><strong>File from WhatsApp</strong> ({}) sent by {from}, still being copied when the ticket was written, is now attached: {name}</p>",
            escape(&media.kind)
        ),
        Err(why) => format!(
            "<p><strong>File not attached</strong>: {name} ({}) sent by {from}: {}</p>",
            escape(&media.kind),
            escape_within(why, LIST_ITEM_BUDGET)
        ),
    }
}

/// How a rep's reply went.
pub enum ReplyOutcome<'a> {
    Text,
    Template {
        name: &'a str,
        window_closed_at: Option<i64>,
    },
    NotSent {
        why: &'a str,
    },
    /// Sent or not, nobody knows: not sent again.
    Unknown {
        why: &'a str,
    },
}

/// The note that tells the rep what became of their reply.
pub fn reply_note(text: &str, outcome: ReplyOutcome<'_>) -> String {
    let head = match outcome {
        ReplyOutcome::Text => {
            "<p><strong>✓ Sent on WhatsApp</strong> (inside the 24-hour reply window). Baton cleared the reply field for your next answer.</p>".to_owned()
        }
        ReplyOutcome::Template {
            name,
            window_closed_at,
        } => format!(
            "<p><strong>✓ Template “{}” sent on WhatsApp</strong> instead of your text: the 24-hour reply window {}. Free-form replies work again once the customer answers.</p>",
            escape_within(name, 512),
            match window_closed_at {
                Some(t) => format!("closed at {}", utc(t)),
                None => "never opened (the customer has not written)".to_owned(),
            }
        ),
        ReplyOutcome::NotSent { why } => format!(
            "<p><strong>⚠ Not sent on WhatsApp</strong>: {}</p>",
            escape_within(why, LIST_ITEM_BUDGET)
        ),
        ReplyOutcome::Unknown { why } => format!(
            "<p><strong>⚠ Not known whether this reached WhatsApp</strong>: {}</p>",
            escape_within(why, LIST_ITEM_BUDGET)
        ),
    };
    format!("{head}{}", quote(text))
}

/// The note that says another partner took the customer's WhatsApp thread.
pub fn thread_taken_note(text: &str) -> String {
    format!(
        "<p><strong>⚠ WhatsApp thread taken</strong>: Meta's Conversation Routing says {}. Until it comes back, the customer's messages go to that partner; a reply from this ticket takes the thread back (Baton is the escalation partner).</p>",
        escape_within(text, LIST_ITEM_BUDGET)
    )
}

/// What the reply note adds when the reply took the thread from its owner.
pub fn took_thread(from: ThreadOwner) -> String {
    format!(
        "<p><strong>WhatsApp thread taken over</strong> from {}: under Meta's Conversation Routing a reply from the escalation partner takes the thread, so the customer's messages now come to Baton until the ticket closes.</p>",
        from.describe()
    )
}

/// The note that tells the rep WhatsApp did not deliver their reply.
pub fn failure_note(reply: Option<&str>, errors: &str, advice: &str) -> String {
    let mut html = format!(
        "<p><strong>⚠ WhatsApp did not deliver your reply</strong>: {}</p><p>{}</p>",
        escape_within(errors, LIST_ITEM_BUDGET),
        escape_within(advice, LIST_ITEM_BUDGET)
    );
    if let Some(text) = reply {
        html.push_str(&quote(text));
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_within_the_limit_counting_utf16() {
        let s = "ab\u{1F600}cd";
        assert_eq!(prefix_within(s, 3), "ab");
        assert_eq!(prefix_within(s, 4), "ab\u{1F600}");
        let long = "line\n".repeat(20);
        assert_eq!(prefix_within(&long, 12), "line\nline\n");
    }

    /// A handoff whose `media` files all failed to copy, with markup in their names.
    fn record(summary: &str, reason: &str, media: usize) -> HandoffRecord {
        use baton_shared::domain::{ConversationKey, Customer, TranscriptRef};
        use baton_testkit::fixtures::{copied_file, handoff_record};
        let key = ConversationKey::new("pnid", "34600000001");
        let media = (0..media)
            .map(|i| {
                let name = format!("\"><img src=x onerror=alert({i})> photo-{i}.jpg");
                let mut m = copied_file(&key, &format!("wamid.{i}"), "", &name, "image/jpeg", 0);
                m.state = MediaState::Failed;
                m.key = None;
                m.error = Some("Graph API said: \"media id not found\" & gave up".repeat(5));
                m
            })
            .collect();
        let customer = Customer {
            wa_id: Some("34600000001".into()),
            profile_name: Some("Ana".into()),
            ..Default::default()
        };
        let transcript = TranscriptRef {
            key: "transcripts/x.txt".into(),
            bytes: 0,
            messages: 0,
            agent_events: 0,
            last_order_key: None,
        };
        let mut r = handoff_record(key, 1, customer, transcript, media, 0);
        r.reason.text = reason.into();
        r.insights.summary = summary.into();
        r
    }

    #[test]
    fn the_note_says_what_wrote_the_summary_and_the_models_reason_escaped() {
        let mut r = record("Order 48213 arrived broken.", "asked for a person", 0);
        r.insights.summary_by = Some("Amazon Bedrock (us.amazon.nova-lite-v1:0)".into());
        r.insights.model_reason = Some("Second broken delivery <b>again</b>.".into());
        let note = note_body(&r, &[], &[], None, None);
        assert!(
            note.contains("<p><em>Summary by Amazon Bedrock (us.amazon.nova-lite-v1:0)</em></p>"),
            "{note}"
        );
        assert!(note.contains("<strong>Why a person, in the model's words</strong>: Second broken delivery &lt;b&gt;again&lt;/b&gt;."), "{note}");
        r.insights.summary_by = None;
        r.insights.model_reason = None;
        let note = note_body(&r, &[], &[], None, None);
        assert!(!note.contains("Summary by") && !note.contains("model's words"));
    }

    #[test]
    fn an_agents_huge_summary_and_hundreds_of_files_stay_within_the_limits() {
        // Quotes escape to six characters each: the worst case for the note.
        let summary = "\"".repeat(100_000);
        let reason = "<".repeat(50_000);
        let r = record(&summary, &reason, 400);
        let attached: Vec<String> = (0..400).map(|i| format!("{i:040}-scan.pdf")).collect();
        let note = note_body(
            &r,
            &attached,
            &[],
            Some("https://x.test/sessions/a?t=1.ab"),
            None,
        );
        assert!(units(&note) <= MAX_TEXT, "note is {} units", units(&note));
        assert!(
            note.contains("&quot;&quot;…</p>"),
            "summary closes with an ellipsis"
        );
        assert!(
            note.contains("… and "),
            "lists say how many files they leave out"
        );
        assert!(note.ends_with(&format!("<p><small>{}</small></p>", note_marker(&r.id))));
        assert!(note.contains("Session</strong>: <a href=\"https://x.test/sessions/a?t=1.ab\""));
        assert!(!note.contains("<img"), "file names are escaped");

        let transcript = "Customer: hola\n".repeat(10_000);
        let (content, cut) = ticket_content(&r, &transcript);
        assert!(cut);
        assert!(
            units(&content) <= MAX_TEXT,
            "content is {} units",
            units(&content)
        );
        assert!(
            content.contains("Customer: hola\n"),
            "the transcript keeps most of the room"
        );
        assert!(units(&content) - units(&content.replace("Customer: hola\n", "")) > 30_000);
        let subject = subject(&r);
        assert_eq!(
            subject.chars().count(),
            "WhatsApp: Ana — ".chars().count() + 120
        );
    }

    #[test]
    fn ordinary_text_is_not_clipped() {
        let r = record(
            "Order 48213 arrived broken.",
            "The customer asked for a person",
            2,
        );
        let note = note_body(
            &r,
            &["a.jpg".into()],
            &[("b.mov".into(), "HubSpot refused <it>".into())],
            None,
            Some("contact: HubSpot refused the request (400): \"lead_source\" <required>"),
        );
        assert!(note.contains(
            "<strong>No contact linked</strong>: contact: HubSpot refused the request (400): &quot;lead_source&quot; &lt;required&gt;</p>"
        ));
        assert!(note.contains("<strong>AI summary</strong>: Order 48213 arrived broken.</p>"));
        assert!(note.contains("<strong>Attached</strong>: a.jpg</p>"));
        assert!(note.contains("photo-0.jpg (image): not copied from WhatsApp: Graph API said"));
        assert!(note.contains("; b.mov: not attached: HubSpot refused &lt;it&gt;</p>"));
        assert!(note.contains("; &quot;&gt;&lt;img src=x onerror=alert(1)&gt; photo-1.jpg"));
        assert!(!note.contains("…"));
        assert_eq!(
            subject(&r),
            "WhatsApp: Ana — The customer asked for a person"
        );
    }

    #[test]
    fn customer_text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
