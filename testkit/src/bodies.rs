//! Body builders for synthetic but Meta-shaped deliveries.

use serde_json::{Value, json};

/// A `messages` change for one business number, with the given contacts, messages, statuses.
pub fn delivery(
    phone_number_id: &str,
    contacts: Value,
    messages: Value,
    statuses: Value,
) -> Vec<u8> {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    });
    if !contacts.is_null() {
        value["contacts"] = contacts;
    }
    if !messages.is_null() {
        value["messages"] = messages;
    }
    if !statuses.is_null() {
        value["statuses"] = statuses;
    }
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }))
    .expect("JSON serialises")
}

pub fn contact(wa_id: &str, name: &str) -> Value {
    json!([{"profile": {"name": name}, "wa_id": wa_id}])
}

pub fn text(wamid: &str, from: &str, timestamp: i64, body: &str) -> Value {
    json!({"from": from, "id": wamid, "timestamp": timestamp.to_string(), "type": "text", "text": {"body": body}})
}

pub fn status(wamid: &str, recipient: &str, status: &str, timestamp: i64) -> Value {
    json!({"id": wamid, "status": status, "timestamp": timestamp.to_string(), "recipient_id": recipient})
}

/// The status of a reply Baton sent for a rep: its callback data names the handoff and the reply,
/// which is what makes Baton store it (the AI agent's own messages' statuses are not stored).
pub fn reply_status(wamid: &str, recipient: &str, status: &str, timestamp: i64) -> Value {
    let mut v = self::status(wamid, recipient, status, timestamp);
    v["biz_opaque_callback_data"] = json!("baton|ho_0000000000000000|reply#1");
    v
}

/// A delivery of text messages `(wamid, timestamp)` from one customer.
pub fn texts<S: AsRef<str>>(phone_number_id: &str, wa_id: &str, messages: &[(S, i64)]) -> Vec<u8> {
    let msgs: Vec<Value> = messages
        .iter()
        .map(|(id, ts)| text(id.as_ref(), wa_id, *ts, &format!("message {}", id.as_ref())))
        .collect();
    delivery(
        phone_number_id,
        contact(wa_id, "Test Customer"),
        Value::Array(msgs),
        Value::Null,
    )
}

/// `n` message ids `<prefix><i>` with timestamps counting up from `first_timestamp`.
pub fn numbered(prefix: &str, n: usize, first_timestamp: i64) -> Vec<(String, i64)> {
    (0..n)
        .map(|i| (format!("{prefix}{i:04}"), first_timestamp + i as i64))
        .collect()
}
