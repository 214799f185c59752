//! The embedded store for `baton-local`: a redb database file under `BATON_DATA_DIR`. Each batch is
//! one ACID write transaction, and redb runs one writer at a time, so the idempotency checks below
//! are race-free without conditional writes.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use baton_shared::domain::*;
use baton_shared::store::{
    AgentEventStore, ConversationReader, DeliveryLog, DeliveryStore, HandoffStore, StoreError,
    TicketStore, TimelinePage, TrailStore,
};
use baton_shared::whatsapp::WaError;

/// Delivery id → metadata (JSON).
const DELIVERIES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("deliveries");
/// Delivery id → body bytes.
const BODIES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("delivery_bodies");
/// `<received_at_ms:013>#<id>` → id, for deliveries that can be replayed.
const REPLAYABLE: TableDefinition<'static, &str, &str> =
    TableDefinition::new("replayable_deliveries");
/// Conversation partition → conversation (JSON).
const CONVERSATIONS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("conversations");
/// `<partition>\0<wamid>` → message (JSON).
const MESSAGES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("messages");
/// `<partition>\0<order key>` → wamid: the conversation's timeline index.
const TIMELINE: TableDefinition<'static, &str, &str> = TableDefinition::new("timeline");
/// `<partition>\0<wamid>` → status (JSON).
const STATUSES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("statuses");
/// `<partition>\0<event id>` → agent event (JSON); in the timeline as `evt:<event id>`.
const AGENT_EVENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("agent_events");
/// Conversation partition → handoff episode and agent failure run (JSON).
const EPISODES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("episodes");
/// `<partition>\0<wamid>` → media copy (JSON).
const MEDIA: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("media");
/// Handoff id → handoff (JSON).
const HANDOFFS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("handoffs");
/// Handoff id → HubSpot status trail (JSON).
const TRAILS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("hubspot_trails");
/// `<handoff id>\0<event id>` → ticket event (JSON).
const TICKET_EVENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("ticket_events");
/// `<handoff id>\0<event id>` → the progress made on it (JSON).
const EVENT_TRAILS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("ticket_event_trails");
/// HubSpot ticket id → its handoff (JSON).
const TICKETS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("ticket_links");
/// Sequence number → change (JSON): what a DynamoDB stream would carry, in order.
const CHANGES: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("changes");
/// Consumer name → last change it processed.
const CURSORS: TableDefinition<'static, &str, u64> = TableDefinition::new("cursors");

/// Timeline values naming an agent event start with this; others are wamids.
const EVENT_REF: &str = "evt:";

/// A redb-backed store; cheap to clone.
#[derive(Clone)]
pub struct RedbStore {
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
    StoreError::unavailable(format!("embedded database: {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("embedded database: {e}"))
}

fn child(partition: &str, id: &str) -> String {
    format!("{partition}\0{id}")
}

impl RedbStore {
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
        txn.open_table(AGENT_EVENTS).map_err(failed)?;
        txn.open_table(EPISODES).map_err(failed)?;
        txn.open_table(MEDIA).map_err(failed)?;
        txn.open_table(HANDOFFS).map_err(failed)?;
        txn.open_table(TRAILS).map_err(failed)?;
        txn.open_table(TICKET_EVENTS).map_err(failed)?;
        txn.open_table(EVENT_TRAILS).map_err(failed)?;
        txn.open_table(TICKETS).map_err(failed)?;
        txn.open_table(CHANGES).map_err(failed)?;
        txn.open_table(CURSORS).map_err(failed)?;
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

    /// The JSON value under `key` in `table`, read in its own transaction.
    async fn get_json<T>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
    ) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(table).map_err(failed)?;
            read_json(&table, &key)
        })
        .await
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
        // The body is kept only when the items cannot stand for it, as in DynamoDB. A redelivery
        // leaves the stored delivery as it is; a replay updates what was understood.
        let keep_body = batch.origin == BatchOrigin::Replay || d.state != ParseState::Parsed;
        if keep_body && (!exists || batch.origin == BatchOrigin::Replay) {
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
            append_change(&txn, &Change::Message(m.clone()))?;
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
impl DeliveryStore for RedbStore {
    async fn write_batch(&self, batch: &DeliveryBatch) -> Result<WriteReport, StoreError> {
        let events = batch.agent_events.clone();
        let batch = batch.clone();
        let kept =
            batch.origin == BatchOrigin::Replay || batch.delivery.state != ParseState::Parsed;
        let mut report = self.blocking(move |db| write(db, &batch)).await?;
        if !events.is_empty() {
            report.agent_events_new = self.write_agent_events(&events).await?.events_new;
        }
        if !kept {
            report.settle_unkept_delivery();
        }
        Ok(report)
    }
}

#[async_trait]
impl ConversationReader for RedbStore {
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

    async fn timeline_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        let partition = key.partition();
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let timeline = txn.open_table(TIMELINE).map_err(failed)?;
            let messages = txn.open_table(MESSAGES).map_err(failed)?;
            let events = txn.open_table(AGENT_EVENTS).map_err(failed)?;
            let start = child(&partition, after.as_deref().unwrap_or(""));
            let end = format!("{partition}\x01");
            let mut page = TimelinePage::default();
            for entry in timeline
                .range(start.as_str()..end.as_str())
                .map_err(failed)?
            {
                let (k, reference) = entry.map_err(failed)?;
                if after.is_some() && k.value() == start {
                    continue;
                }
                if page.entries.len() == limit {
                    page.next = page.entries.last().map(TimelineEntry::order_key);
                    break;
                }
                let reference = reference.value();
                let entry = match reference.strip_prefix(EVENT_REF) {
                    Some(id) => TimelineEntry::Agent(
                        read_json(&events, &child(&partition, id))?.ok_or_else(|| {
                            corrupt(format!("timeline names missing agent event {id}"))
                        })?,
                    ),
                    None => TimelineEntry::Message(
                        read_json(&messages, &child(&partition, reference))?.ok_or_else(|| {
                            corrupt(format!("timeline names missing message {reference}"))
                        })?,
                    ),
                };
                page.entries.push(entry);
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
impl DeliveryLog for RedbStore {
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

fn append_change(txn: &redb::WriteTransaction, change: &Change) -> Result<(), StoreError> {
    let mut changes = txn.open_table(CHANGES).map_err(failed)?;
    let next = changes
        .last()
        .map_err(failed)?
        .map_or(1, |(k, _)| k.value() + 1);
    let bytes = serde_json::to_vec(change).map_err(corrupt)?;
    changes.insert(next, bytes.as_slice()).map_err(failed)?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(failed)? {
        Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

/// A conversation's handoff episode and the agent's run of failures.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Episode {
    episodes: u32,
    open_episode: Option<u32>,
    open_trigger: Option<String>,
    agent_streak: u32,
    agent_streak_key: Option<String>,
}

impl RedbStore {
    /// Changes after `cursor`, oldest first, `limit` at most: the embedded stand-in for a
    /// DynamoDB stream.
    pub async fn changes_after(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Change)>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(CHANGES).map_err(failed)?;
            let mut out = Vec::new();
            for entry in table.range(cursor + 1..).map_err(failed)?.take(limit) {
                let (k, v) = entry.map_err(failed)?;
                out.push((
                    k.value(),
                    serde_json::from_slice(v.value()).map_err(corrupt)?,
                ));
            }
            Ok(out)
        })
        .await
    }

    /// Where consumer `name` is in the change feed (0 before the first change).
    pub async fn cursor(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(CURSORS).map_err(failed)?;
            Ok(table
                .get(name.as_str())
                .map_err(failed)?
                .map_or(0, |v| v.value()))
        })
        .await
    }

    pub async fn save_cursor(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            txn.open_table(CURSORS)
                .map_err(failed)?
                .insert(name.as_str(), position)
                .map_err(failed)?;
            txn.commit().map_err(failed)
        })
        .await
    }

    /// Runs `f` on the conversation's episode state in one write transaction.
    async fn with_episode<T, F>(&self, key: &ConversationKey, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Episode) -> T + Send + 'static,
    {
        let partition = key.partition();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            let out = {
                let mut table = txn.open_table(EPISODES).map_err(failed)?;
                let mut episode: Episode = read_json(&table, &partition)?.unwrap_or_default();
                let out = f(&mut episode);
                let bytes = serde_json::to_vec(&episode).map_err(corrupt)?;
                table
                    .insert(partition.as_str(), bytes.as_slice())
                    .map_err(failed)?;
                out
            };
            txn.commit().map_err(failed)?;
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl AgentEventStore for RedbStore {
    async fn write_agent_events(
        &self,
        events: &[AgentEventRecord],
    ) -> Result<AgentWriteReport, StoreError> {
        let events = events.to_vec();
        self.blocking(move |db| {
            let mut report = AgentWriteReport::default();
            let txn = db.begin_write().map_err(failed)?;
            {
                let mut table = txn.open_table(AGENT_EVENTS).map_err(failed)?;
                let mut timeline = txn.open_table(TIMELINE).map_err(failed)?;
                let mut conversations = txn.open_table(CONVERSATIONS).map_err(failed)?;
                for e in &events {
                    let partition = e.conversation.partition();
                    let key = child(&partition, &e.event_id);
                    if table.get(key.as_str()).map_err(failed)?.is_some() {
                        report.events_duplicate += 1;
                        continue;
                    }
                    if conversations
                        .get(partition.as_str())
                        .map_err(failed)?
                        .is_none()
                    {
                        let c = Conversation {
                            key: e.conversation.clone(),
                            display_phone_number: String::new(),
                            wa_id: None,
                            user_id: None,
                            username: None,
                            profile_name: None,
                            last_inbound_at: None,
                        };
                        let bytes = serde_json::to_vec(&c).map_err(corrupt)?;
                        conversations
                            .insert(partition.as_str(), bytes.as_slice())
                            .map_err(failed)?;
                    }
                    let bytes = serde_json::to_vec(e).map_err(corrupt)?;
                    table
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(failed)?;
                    let reference = format!("{EVENT_REF}{}", e.event_id);
                    timeline
                        .insert(
                            child(&partition, &e.order_key()).as_str(),
                            reference.as_str(),
                        )
                        .map_err(failed)?;
                    append_change(&txn, &Change::AgentEvent(e.clone()))?;
                    report.events_new += 1;
                }
            }
            txn.commit().map_err(failed)?;
            Ok(report)
        })
        .await
    }
}

#[async_trait]
impl HandoffStore for RedbStore {
    async fn agent_outcome(
        &self,
        key: &ConversationKey,
        order_key: &str,
        failed: bool,
    ) -> Result<u32, StoreError> {
        let order_key = order_key.to_owned();
        self.with_episode(key, move |e| {
            if e.agent_streak_key
                .as_deref()
                .is_none_or(|k| k < order_key.as_str())
            {
                e.agent_streak = if failed { e.agent_streak + 1 } else { 0 };
                e.agent_streak_key = Some(order_key);
            }
            e.agent_streak
        })
        .await
    }

    async fn open_episode(&self, key: &ConversationKey) -> Result<Option<u32>, StoreError> {
        Ok(self
            .get_json::<Episode>(EPISODES, key.partition())
            .await?
            .and_then(|e| e.open_episode))
    }

    async fn claim_handoff(
        &self,
        key: &ConversationKey,
        trigger: &str,
    ) -> Result<Claim, StoreError> {
        let trigger = trigger.to_owned();
        self.with_episode(key, move |e| match e.open_episode {
            Some(open) => Claim {
                episode: open,
                trigger: e.open_trigger.clone().unwrap_or_default(),
                opened: false,
            },
            None => {
                e.episodes += 1;
                e.open_episode = Some(e.episodes);
                e.open_trigger = Some(trigger.clone());
                Claim {
                    episode: e.episodes,
                    trigger,
                    opened: true,
                }
            }
        })
        .await
    }

    async fn media(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<MediaRecord>, StoreError> {
        self.get_json(MEDIA, child(&key.partition(), wamid)).await
    }

    async fn save_media(&self, record: &MediaRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.blocking(move |db| {
            let k = child(&record.conversation.partition(), &record.wamid);
            let txn = db.begin_write().map_err(failed)?;
            {
                let mut table = txn.open_table(MEDIA).map_err(failed)?;
                let stored: Option<MediaRecord> = read_json(&table, &k)?;
                if stored.is_none_or(|s| s.state != MediaState::Copied) {
                    let bytes = serde_json::to_vec(&record).map_err(corrupt)?;
                    table.insert(k.as_str(), bytes.as_slice()).map_err(failed)?;
                }
            }
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError> {
        self.get_json(HANDOFFS, id.to_owned()).await
    }

    async fn save_handoff(&self, record: &HandoffRecord) -> Result<bool, StoreError> {
        let record = record.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            let new = {
                let mut table = txn.open_table(HANDOFFS).map_err(failed)?;
                if table.get(record.id.as_str()).map_err(failed)?.is_some() {
                    false
                } else {
                    let bytes = serde_json::to_vec(&record).map_err(corrupt)?;
                    table
                        .insert(record.id.as_str(), bytes.as_slice())
                        .map_err(failed)?;
                    true
                }
            };
            if new {
                append_change(&txn, &Change::Handoff(Box::new(record)))?;
            }
            txn.commit().map_err(failed)?;
            Ok(new)
        })
        .await
    }
}

#[async_trait]
impl TrailStore for RedbStore {
    async fn trail(&self, handoff_id: &str) -> Result<Option<HubspotTrail>, StoreError> {
        self.get_json(TRAILS, handoff_id.to_owned()).await
    }

    async fn save_trail(&self, handoff_id: &str, trail: &HubspotTrail) -> Result<(), StoreError> {
        let id = handoff_id.to_owned();
        let bytes = serde_json::to_vec(trail).map_err(corrupt)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            {
                if txn
                    .open_table(HANDOFFS)
                    .map_err(failed)?
                    .get(id.as_str())
                    .map_err(failed)?
                    .is_none()
                {
                    return Err(StoreError::rejected(format!("no handoff {id}")));
                }
                let mut table = txn.open_table(TRAILS).map_err(failed)?;
                table
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(failed)?;
            }
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn unfinished_handoffs(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(TRAILS).map_err(failed)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(failed)? {
                let (k, v) = entry.map_err(failed)?;
                let trail: HubspotTrail = serde_json::from_slice(v.value()).map_err(corrupt)?;
                if matches!(trail.status, TrailStatus::Parked | TrailStatus::Retrying) {
                    out.push(k.value().to_owned());
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl TicketStore for RedbStore {
    async fn save_ticket_event(&self, event: &TicketEvent) -> Result<bool, StoreError> {
        let event = event.clone();
        self.blocking(move |db| {
            let k = child(&event.handoff_id, &event.id);
            let txn = db.begin_write().map_err(failed)?;
            let new = {
                let mut table = txn.open_table(TICKET_EVENTS).map_err(failed)?;
                if table.get(k.as_str()).map_err(failed)?.is_some() {
                    false
                } else {
                    let bytes = serde_json::to_vec(&event).map_err(corrupt)?;
                    table.insert(k.as_str(), bytes.as_slice()).map_err(failed)?;
                    true
                }
            };
            if new {
                append_change(&txn, &Change::TicketEvent(Box::new(event)))?;
            }
            txn.commit().map_err(failed)?;
            Ok(new)
        })
        .await
    }

    async fn ticket_event(
        &self,
        handoff_id: &str,
        id: &str,
    ) -> Result<Option<(TicketEvent, EventTrail)>, StoreError> {
        let k = child(handoff_id, id);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let events = txn.open_table(TICKET_EVENTS).map_err(failed)?;
            let Some(event) = read_json::<TicketEvent>(&events, &k)? else {
                return Ok(None);
            };
            let trails = txn.open_table(EVENT_TRAILS).map_err(failed)?;
            Ok(Some((event, read_json(&trails, &k)?.unwrap_or_default())))
        })
        .await
    }

    async fn ticket_events(
        &self,
        handoff_id: &str,
    ) -> Result<Vec<(TicketEvent, EventTrail)>, StoreError> {
        let prefix = child(handoff_id, "");
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let events = txn.open_table(TICKET_EVENTS).map_err(failed)?;
            let trails = txn.open_table(EVENT_TRAILS).map_err(failed)?;
            let mut out = Vec::new();
            for entry in events.range(prefix.as_str()..).map_err(failed)? {
                let (k, v) = entry.map_err(failed)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                let event: TicketEvent = serde_json::from_slice(v.value()).map_err(corrupt)?;
                let trail = read_json(&trails, k.value())?.unwrap_or_default();
                out.push((event, trail));
            }
            Ok(out)
        })
        .await
    }

    async fn save_event_trail(
        &self,
        handoff_id: &str,
        id: &str,
        trail: &EventTrail,
    ) -> Result<(), StoreError> {
        let k = child(handoff_id, id);
        let bytes = serde_json::to_vec(trail).map_err(corrupt)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            {
                if txn
                    .open_table(TICKET_EVENTS)
                    .map_err(failed)?
                    .get(k.as_str())
                    .map_err(failed)?
                    .is_none()
                {
                    return Err(StoreError::rejected(format!("no ticket event {k}")));
                }
                let mut table = txn.open_table(EVENT_TRAILS).map_err(failed)?;
                table.insert(k.as_str(), bytes.as_slice()).map_err(failed)?;
            }
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn unfinished_events(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
            let table = txn.open_table(EVENT_TRAILS).map_err(failed)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(failed)? {
                let (k, v) = entry.map_err(failed)?;
                let trail: EventTrail = serde_json::from_slice(v.value()).map_err(corrupt)?;
                if matches!(trail.status, TrailStatus::Parked | TrailStatus::Retrying)
                    && let Some((handoff, id)) = k.value().split_once('\0')
                {
                    out.push((handoff.to_owned(), id.to_owned()));
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn link_ticket(&self, link: &TicketLink) -> Result<(), StoreError> {
        let id = link.ticket_id.clone();
        let bytes = serde_json::to_vec(link).map_err(corrupt)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            {
                let mut table = txn.open_table(TICKETS).map_err(failed)?;
                table
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(failed)?;
            }
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn ticket_link(&self, ticket_id: &str) -> Result<Option<TicketLink>, StoreError> {
        self.get_json(TICKETS, ticket_id.to_owned()).await
    }

    async fn close_episode(&self, key: &ConversationKey, episode: u32) -> Result<bool, StoreError> {
        self.with_episode(key, move |e| {
            if e.open_episode == Some(episode) {
                e.open_episode = None;
                e.open_trigger = None;
                true
            } else {
                false
            }
        })
        .await
    }
}
