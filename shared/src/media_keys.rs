//! Names for the customer's files: object keys in the bucket (hashes, never a phone number), safe
//! file names, default names for files WhatsApp sends without one, and URL components. The handoff
//! function writes under these keys; the webhook's session page, the HubSpot function and
//! forget-customer read them back.

use sha2::{Digest, Sha256};

use crate::domain::ConversationKey;

/// The object key for a message's file: hashes of the conversation and the message (no phone
/// number in keys or logs) and a safe file name.
pub fn object_key(conversation: &ConversationKey, wamid: &str, filename: &str) -> String {
    let msg = hex::encode(&Sha256::digest(wamid.as_bytes())[..8]);
    format!(
        "{}{msg}/{}",
        conversation_prefix(conversation),
        safe_name(filename, 120)
    )
}

/// Where all of a conversation's media copies are: `media/<hash of the conversation>/`.
pub fn conversation_prefix(conversation: &ConversationKey) -> String {
    let conv = hex::encode(&Sha256::digest(conversation.partition().as_bytes())[..8]);
    format!("media/{conv}/")
}

/// `name` with `a-z0-9._-` only (anything else becomes `_`, no leading or trailing dot), keeping
/// its last `max_chars` characters so the extension survives: the same in every key, folder
/// listing and URL.
pub fn safe_name(name: &str, max_chars: usize) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('.');
    let mut out: String = trimmed
        .chars()
        .rev()
        .take(max_chars)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if out.is_empty() {
        out = "file".into();
    }
    out
}

/// A file name for media WhatsApp sends without one: `image.jpg`, `voice-note.ogg`.
pub fn default_filename(kind: &str, mime: Option<&str>, voice: bool) -> String {
    let essence = mime
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ext = match essence.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "audio/ogg" => "ogg",
        "audio/opus" => "opus",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/m4a" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/zip" => "zip",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    };
    let stem = if voice { "voice-note" } else { kind };
    format!("{stem}.{ext}")
}

/// `s` percent-encoded as one URL path segment or query value (everything but RFC 3986's
/// unreserved characters).
pub fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_free_of_the_number() {
        let conv = ConversationKey::new("106540352242922", "16505551234");
        let a = object_key(&conv, "wamid.ABC", "Invoice (May).pdf");
        assert_eq!(a, object_key(&conv, "wamid.ABC", "Invoice (May).pdf"));
        assert!(
            a.starts_with("media/") && a.ends_with("/Invoice__May_.pdf"),
            "{a}"
        );
        assert!(!a.contains("16505551234"));
        assert_ne!(a, object_key(&conv, "wamid.ABD", "Invoice (May).pdf"));
        assert_eq!(safe_name("../../etc/passwd", 120), "_.._etc_passwd");
    }

    #[test]
    fn default_names_follow_the_mime_type() {
        assert_eq!(
            default_filename("audio", Some("audio/ogg; codecs=opus"), true),
            "voice-note.ogg"
        );
        assert_eq!(
            default_filename("image", Some("image/jpeg"), false),
            "image.jpg"
        );
        assert_eq!(
            default_filename("sticker", Some("image/webp"), false),
            "sticker.webp"
        );
        assert_eq!(default_filename("document", None, false), "document.bin");
    }
}
