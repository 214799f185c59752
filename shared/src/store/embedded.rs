//! The embedded store for `baton-local`: a redb database file under `BATON_DATA_DIR`. Each batch is
//! one ACID write transaction, and redb runs one writer at a time, so the idempotency checks below
//! are race-free without conditional writes.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{ConversationReader, DeliveryLog, DeliveryStore, MessagePage, StoreError};
use crate::domain::*;
use crate::whatsapp::WaError;

/// Delivery id → metadata (JSON).
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// Delivery id → body bytes.
const BODIES: TableDefinition<&str, &[u8]> = TableDefinition::new("delivery_bodies");
/// `<received_at_ms:013>#<id>` → id, for deliveries that can be replayed.
const REPLAYABLE: TableDefinition<&str, &str> = TableDefinition::new("replayable_deliveries");
/// Conversation partition → conversation (JSON).
const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
/// `<partition>\0<wamid>` → message (JSON).
const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
/// `<partition>\0<order key>` → wamid: the conversation's timeline index.
const TIMELINE: TableDefinition<&str, &str> = TableDefinition::new("timeline");
/// `<partition>\0<wamid>` → status (JSON).
const STATUSES: TableDefinition<&str, &[u8]> = TableDefinition::new("statuses");

/// A redb-backed store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

#[derive(Serialize, Deserialize)]
struct DeliveryMeta {
    received_at_ms: i64,
    state: ParseState,
    problems: Vec<String>,
    errors: Vec<WaError>,
    ignored_fields: Vec<String>,
    message_count: u32,
    status_count: u32,
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded database: {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("embedded database: {e}"))
}

fn child(partition: &str, id: &str) -> String {
    format!("{partition}\0{id}")
}

impl EmbeddedStore {
    /// Opens (or creates) the database file `baton.redb` in `dir`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("baton.redb");
        let db = Database::create(&path)
            .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
        // Create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(failed)?;
        txn.open_table(DELIVERIES).map_err(failed)?;
        txn.open_table(BODIES).map_err(failed)?;
        txn.open_table(REPLAYABLE).map_err(failed)?;
        txn.open_table(CONVERSATIONS).map_err(failed)?;
        txn.open_table(MESSAGES).map_err(failed)?;
        txn.open_table(TIMELINE).map_err(failed)?;
        txn.open_table(STATUSES).map_err(failed)?;
        txn.commit().map_err(failed)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| failed(format!("worker stopped: {e}")))?
    }
}

fn write(db: &Database, batch: &DeliveryBatch) -> Result<WriteReport, StoreError> {
    let mut report = WriteReport {
        requests: 1,
        ..WriteReport::default()
    };
    let txn = db.begin_write().map_err(failed)?;
    {
        let d = &batch.delivery;
        let id = d.id.0.as_str();
        let mut deliveries = txn.open_table(DELIVERIES).map_err(failed)?;
        let mut replayable = txn.open_table(REPLAYABLE).map_err(failed)?;
        let old = match deliveries.get(id).map_err(failed)? {
            Some(v) => Some(serde_json::from_slice::<DeliveryMeta>(v.value()).map_err(corrupt)?),
            None => None,
        };
        let exists = old.is_some();
        // A redelivery leaves the stored delivery as it is; a replay updates what was understood.
        if !exists || batch.origin == BatchOrigin::Replay {
            report.delivery_new = !exists;
            let received_at_ms = old.map_or(d.received_at_ms, |m| m.received_at_ms);
            let meta = DeliveryMeta {
                received_at_ms,
                state: d.state,
                problems: d.problems.clone(),
                errors: d.errors.clone(),
                ignored_fields: d.ignored_fields.clone(),
                message_count: d.message_count,
                status_count: d.status_count,
            };
            let meta = serde_json::to_vec(&meta).map_err(corrupt)?;
            deliveries.insert(id, meta.as_slice()).map_err(failed)?;
            if !exists {
                txn.open_table(BODIES)
                    .map_err(failed)?
                    .insert(id, d.body.as_ref())
                    .map_err(failed)?;
            }
            let replay_key = format!("{:013}#{id}", received_at_ms.max(0));
            if d.state.replayable() {
                replayable.insert(replay_key.as_str(), id).map_err(failed)?;
            } else {
                replayable.remove(replay_key.as_str()).map_err(failed)?;
            }
        }

        let mut conversations = txn.open_table(CONVERSATIONS).map_err(failed)?;
        for touch in &batch.conversations {
            let partition = touch.key.partition();
            let old = match conversations.get(partition.as_str()).map_err(failed)? {
                Some(v) => {
                    Some(serde_json::from_slice::<Conversation>(v.value()).map_err(corrupt)?)
                }
                None => None,
            };
            let merged = merge_conversation(old, touch);
            let bytes = serde_json::to_vec(&merged).map_err(corrupt)?;
            conversations
                .insert(partition.as_str(), bytes.as_slice())
                .map_err(failed)?;
        }

        let mut messages = txn.open_table(MESSAGES).map_err(failed)?;
        let mut timeline = txn.open_table(TIMELINE).map_err(failed)?;
        for m in &batch.messages {
            let partition = m.conversation.partition();
            let key = child(&partition, &m.wamid);
            if messages.get(key.as_str()).map_err(failed)?.is_some() {
                report.messages_duplicate += 1;
                continue;
            }
            let bytes = serde_json::to_vec(m).map_err(corrupt)?;
            messages
                .insert(key.as_str(), bytes.as_slice())
                .map_err(failed)?;
            timeline
                .insert(child(&partition, &m.order_key()).as_str(), m.wamid.as_str())
                .map_err(failed)?;
            report.messages_new += 1;
        }

        let mut statuses = txn.open_table(STATUSES).map_err(failed)?;
        for s in &batch.statuses {
            let key = child(&s.conversation.partition(), &s.wamid);
            let stored_rank = match statuses.get(key.as_str()).map_err(failed)? {
                Some(v) => Some(
                    serde_json::from_slice::<StatusRecord>(v.value())
                        .map_err(corrupt)?
                        .rank,
                ),
                None => None,
            };
            if stored_rank.is_some_and(|r| r >= s.rank) {
                report.statuses_stale += 1;
                continue;
            }
            let bytes = serde_json::to_vec(s).map_err(corrupt)?;
            statuses
                .insert(key.as_str(), bytes.as_slice())
                .map_err(failed)?;
            report.statuses_applied += 1;
        }
    }
    txn.commit().map_err(failed)?;
    Ok(report)
}

/// Keeps the latest inbound time and the first known identity fields; a newer inbound message
/// refreshes the profile name.
fn merge_conversation(old: Option<Conversation>, touch: &Conversation) -> Conversation {
    let Some(mut c) = old else {
        return touch.clone();
    };
    let newer = match (c.last_inbound_at, touch.last_inbound_at) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => new > old,
    };
    if newer {
        c.last_inbound_at = touch.last_inbound_at;
        if touch.profile_name.is_some() {
            c.profile_name.clone_from(&touch.profile_name);
        }
        if touch.username.is_some() {
            c.username.clone_from(&touch.username);
        }
    }
    for (slot, value) in [
        (&mut c.wa_id, &touch.wa_id),
        (&mut c.user_id, &touch.user_id),
        (&mut c.username, &touch.username),
        (&mut c.profile_name, &touch.profile_name),
    ] {
        if slot.is_none() {
            slot.clone_from(value);
        }
    }
    c
}

#[async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn write_batch(&self, batch: &DeliveryBatch) -> Result<WriteReport, StoreError> {
        let batch = batch.clone();
        self.blocking(move |db| write(db, &batch)).await
    }
}

#[async_trait]
impl ConversationReader for EmbeddedStore {
    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        let partition = key.partition();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(CONVERSATIONS).map_err(failed)?;
            match table.get(partition.as_str()).map_err(failed)? {
                Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
                None => Ok(None),
            }
        })
        .await
    }

    async fn messages_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let partition = key.partition();
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let timeline = txn.open_table(TIMELINE).map_err(failed)?;
            let messages = txn.open_table(MESSAGES).map_err(failed)?;
            let start = child(&partition, after.as_deref().unwrap_or(""));
            // `\x01` sorts right after the `\0` separator: the end of this partition.
            let end = format!("{partition}\x01");
            let mut page = MessagePage::default();
            for entry in timeline
                .range(start.as_str()..end.as_str())
                .map_err(failed)?
            {
                let (k, wamid) = entry.map_err(failed)?;
                if after.is_some() && k.value() == start {
                    continue;
                }
                if page.messages.len() == limit {
                    page.next = page.messages.last().map(MessageRecord::order_key);
                    break;
                }
                let stored = messages
                    .get(child(&partition, wamid.value()).as_str())
                    .map_err(failed)?
                    .ok_or_else(|| {
                        corrupt(format!("timeline names missing message {}", wamid.value()))
                    })?;
                page.messages
                    .push(serde_json::from_slice(stored.value()).map_err(corrupt)?);
            }
            Ok(page)
        })
        .await
    }

    async fn status(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<StatusRecord>, StoreError> {
        let k = child(&key.partition(), wamid);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(STATUSES).map_err(failed)?;
            match table.get(k.as_str()).map_err(failed)? {
                Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
                None => Ok(None),
            }
        })
        .await
    }
}

#[async_trait]
impl DeliveryLog for EmbeddedStore {
    async fn delivery(&self, id: &DeliveryId) -> Result<Option<RawDelivery>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let deliveries = txn.open_table(DELIVERIES).map_err(failed)?;
            let Some(meta) = deliveries.get(id.0.as_str()).map_err(failed)? else {
                return Ok(None);
            };
            let meta: DeliveryMeta = serde_json::from_slice(meta.value()).map_err(corrupt)?;
            let bodies = txn.open_table(BODIES).map_err(failed)?;
            let body = bodies
                .get(id.0.as_str())
                .map_err(failed)?
                .ok_or_else(|| corrupt(format!("delivery {id} has no body")))?;
            Ok(Some(RawDelivery {
                body: Bytes::copy_from_slice(body.value()),
                id,
                received_at_ms: meta.received_at_ms,
                state: meta.state,
                problems: meta.problems,
                errors: meta.errors,
                ignored_fields: meta.ignored_fields,
                message_count: meta.message_count,
                status_count: meta.status_count,
            }))
        })
        .await
    }

    async fn replayable_deliveries(&self, limit: usize) -> Result<Vec<DeliveryId>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(REPLAYABLE).map_err(failed)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(failed)?.take(limit) {
                let (_, id) = entry.map_err(failed)?;
                out.push(DeliveryId(id.value().to_owned()));
            }
            Ok(out)
        })
        .await
    }
}
