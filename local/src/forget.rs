//! Deleting everything Baton stores about one customer: their conversations' items (messages,
//! statuses, agent events, media records, the conversation itself), their handoffs with the
//! HubSpot trails, the raw deliveries that carried their messages, and the media copies and
//! transcripts in the bucket. `baton-local forget-customer` runs it and prints the report.
//!
//! Retention does the same for everyone after `RETENTION_DAYS` (DynamoDB's TTL on `expires_at`
//! and the bucket's lifecycle rule); this is for a person who asks to be forgotten now. What
//! HubSpot holds (the contact, ticket, note and files) is deleted in HubSpot (its GDPR delete).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use baton_shared::domain::{ConversationKey, DeliveryId, HandoffRecord};
use baton_shared::media_keys::conversation_prefix;
use baton_shared::objects::ObjectStore;
use baton_shared::store::DynamoDbStore;

type Item = HashMap<String, AttributeValue>;

/// What was deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    /// The customer as given, masked.
    pub customer: String,
    pub conversations: u32,
    /// Table items deleted, by `item_type`.
    pub items: BTreeMap<String, u32>,
    pub handoffs: Vec<String>,
    /// Raw deliveries deleted whole because they carried the customer's messages (a delivery
    /// that also carried another customer's message loses its raw body; that message stays).
    pub deliveries: u32,
    /// Object keys deleted from the media bucket.
    pub objects: Vec<String>,
}

impl ForgetReport {
    pub fn items_total(&self) -> u32 {
        self.items.values().sum()
    }
}

fn s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The forms the customer may be stored under: as given, and digits only for a phone number
/// (`+1 650-555-1234` → `16505551234`, WhatsApp's `wa_id`).
fn identities(customer: &str) -> Vec<String> {
    let trimmed = customer.trim().to_owned();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let is_number = trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let mut out = vec![trimmed];
    if is_number && !digits.is_empty() && !out.contains(&digits) {
        out.push(digits);
    }
    out
}

/// Deletes everything stored about `customer` (a phone number in any format, a `wa_id`, or a
/// business-scoped user id) from the table and the bucket, and says what it deleted. Running it
/// again deletes nothing more.
pub async fn forget_customer(
    store: &DynamoDbStore,
    objects: &dyn ObjectStore,
    customer: &str,
) -> Result<ForgetReport, String> {
    let mut report = ForgetReport {
        customer: baton_shared::observe::mask_phone(customer),
        ..ForgetReport::default()
    };
    let ids = identities(customer);
    let mut values = vec![(":conv".to_owned(), AttributeValue::S("conversation".into()))];
    let mut clauses = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let v = format!(":id{i}");
        clauses.push(format!("#c = {v} OR #w = {v} OR #u = {v}"));
        values.push((v, AttributeValue::S(id.clone())));
    }
    let filter = format!("#t = :conv AND ({})", clauses.join(" OR "));
    let names = [
        ("#t", "item_type"),
        ("#c", "customer"),
        ("#w", "wa_id"),
        ("#u", "user_id"),
    ];
    let conversations = store.scan_all(&filter, &names, &values).await?;

    let mut doomed: Vec<Item> = Vec::new();
    let mut deliveries = BTreeSet::new();
    // Media copies live under their conversation's prefix; transcripts are named per handoff.
    let mut keys = BTreeSet::new();
    let mut partitions = Vec::new();
    for conv in &conversations {
        let (Some(pk), Some(pnid), Some(cust)) = (
            s(conv, "pk"),
            s(conv, "phone_number_id"),
            s(conv, "customer"),
        ) else {
            continue;
        };
        report.conversations += 1;
        let prefix = conversation_prefix(&ConversationKey::new(pnid, cust));
        keys.extend(objects.list(&prefix).await.map_err(|e| e.to_string())?);
        for item in store.partition(&pk).await? {
            if let Some(d) = s(&item, "delivery_id") {
                deliveries.insert(d);
            }
            doomed.push(item);
        }
        partitions.push(pk);
    }
    // The conversations' handoffs (with their ticket events, in the handoff's partition) and
    // ticket links, in one scan (at most 100 values per IN).
    for chunk in partitions.chunks(100) {
        let mut values = vec![
            (":h".to_owned(), AttributeValue::S("handoff".into())),
            (":l".to_owned(), AttributeValue::S("ticket_link".into())),
        ];
        values.extend(
            chunk
                .iter()
                .enumerate()
                .map(|(i, pk)| (format!(":p{i}"), AttributeValue::S(pk.clone()))),
        );
        let list: Vec<&str> = values[2..].iter().map(|(k, _)| k.as_str()).collect();
        let filter = format!("#t IN (:h, :l) AND #conv IN ({})", list.join(", "));
        let names = [("#t", "item_type"), ("#conv", "conversation")];
        for h in store.scan_all(&filter, &names, &values).await? {
            if s(&h, "item_type").as_deref() != Some("handoff") {
                doomed.push(h);
                continue;
            }
            if let Some(record) = s(&h, "record")
                && let Ok(r) = serde_json::from_str::<HandoffRecord>(&record)
            {
                keys.insert(r.transcript.key);
                report.handoffs.push(r.id);
            }
            match s(&h, "pk") {
                Some(pk) => doomed.extend(store.partition(&pk).await?),
                None => doomed.push(h),
            }
        }
    }
    for d in deliveries {
        let items = store
            .partition(&baton_shared::store::dynamodb::delivery_pk(&DeliveryId(d)))
            .await?;
        if !items.is_empty() {
            report.deliveries += 1;
        }
        doomed.extend(items);
    }
    for item in &doomed {
        let kind = s(item, "item_type").unwrap_or_else(|| "other".into());
        *report.items.entry(kind).or_default() += 1;
    }
    store.delete_items(&doomed).await?;

    for key in keys {
        if objects.delete(&key).await.map_err(|e| e.to_string())? {
            report.objects.push(key);
        }
    }
    report.handoffs.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_number_is_looked_up_as_given_and_as_digits() {
        assert_eq!(
            super::identities(" +1 650-555-1234 "),
            ["+1 650-555-1234", "16505551234"]
        );
        assert_eq!(super::identities("16505551234"), ["16505551234"]);
        assert_eq!(super::identities("US.1349120865"), ["US.1349120865"]);
    }
}
