//! What the rep reads: the ticket's subject and description, and the handoff note's HTML. Pure.

use baton_shared::domain::{HandoffRecord, MediaState};
use baton_shared::handoff::transcript::utc;

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

/// The longest prefix of `s` within `max` UTF-16 units, cut at a line end where one is close.
fn prefix_within(s: &str, max: usize) -> &str {
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        end = i + c.len_utf8();
    }
    let cut = &s[..end];
    match cut.rfind('\n') {
        Some(nl) if end - nl < 2_000 => &s[..nl + 1],
        _ => cut,
    }
}

pub fn display_name(record: &HandoffRecord) -> String {
    let c = &record.customer;
    c.profile_name
        .as_deref()
        .or(c.username.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| c.wa_id.as_ref().map(|w| format!("+{w}")))
        .or_else(|| c.user_id.clone())
        .unwrap_or_else(|| "WhatsApp customer".into())
}

pub fn subject(record: &HandoffRecord) -> String {
    let reason: String = record.reason.text.chars().take(120).collect();
    let ellipsis = if record.reason.text.chars().count() > 120 {
        "…"
    } else {
        ""
    };
    format!("WhatsApp: {} — {reason}{ellipsis}", display_name(record))
}

/// The ticket description: the summary, then the transcript; cut with a marker when the whole
/// would pass HubSpot's limit. Returns the text and whether it was cut.
pub fn ticket_content(record: &HandoffRecord, transcript: &str) -> (String, bool) {
    let head = format!(
        "WhatsApp handoff — {}\nReason: {}\nSummary: {}\n\n",
        display_name(record),
        record.reason.text,
        record.insights.summary
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
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// The marker that identifies a handoff's note, so a retry finds the note it already posted.
pub fn note_marker(handoff_id: &str) -> String {
    format!("Baton handoff {handoff_id}")
}

/// The handoff note's HTML. `attached` names the uploaded files; `session` is the signed link.
pub fn note_body(
    record: &HandoffRecord,
    attached: &[String],
    transcript_attached: bool,
    session: Option<&str>,
) -> String {
    let i = &record.insights;
    let mut html = String::new();
    html.push_str(&format!(
        "<p><strong>WhatsApp handoff</strong> — {}</p>",
        escape(&display_name(record))
    ));
    html.push_str(&format!(
        "<p><strong>Escalation reason</strong> ({}): {}</p>",
        escape(&record.reason.category),
        escape(&record.reason.text)
    ));
    html.push_str(&format!(
        "<p><strong>AI summary</strong>: {}</p>",
        escape(&i.summary)
    ));
    html.push_str(&format!(
        "<p><strong>Sentiment</strong>: {} ({:+.2}) · <strong>Language</strong>: {}</p>",
        i.sentiment.label.as_str(),
        i.sentiment.score,
        escape(i.language.as_deref().unwrap_or("unknown"))
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
    if !attached.is_empty() || transcript_attached {
        let mut names: Vec<String> = attached.iter().map(|n| escape(n)).collect();
        if transcript_attached {
            names.push(escape(&transcript_file_name(&record.id)));
        }
        html.push_str(&format!(
            "<p><strong>Attached</strong>: {}</p>",
            names.join(", ")
        ));
    }
    let missing: Vec<String> = record
        .media
        .iter()
        .filter(|m| m.state != MediaState::Copied)
        .map(|m| {
            format!(
                "{} ({}): {}",
                escape(&m.filename),
                escape(&m.kind),
                escape(m.error.as_deref().unwrap_or("not copied"))
            )
        })
        .collect();
    if !missing.is_empty() {
        html.push_str(&format!(
            "<p><strong>Files the customer sent that could not be copied</strong>: {}</p>",
            missing.join("; ")
        ));
    }
    html.push_str(&format!(
        "<p><small>{}</small></p>",
        note_marker(&record.id)
    ));
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

    #[test]
    fn customer_text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
