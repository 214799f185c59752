//! The DynamoDB store: one table, keyed for idempotency on WhatsApp's own ids.
//!
//! | item | `pk` | `sk` | other keys |
//! |---|---|---|---|
//! | raw delivery | `DELIVERY#<sha256 of body>` | `DELIVERY` | `gsi1pk = REPLAY`, `gsi1sk = <received ms>#<id>` while replayable |
//! | further body parts | `DELIVERY#<sha256>` | `BODY#<nnn>` | |
//! | conversation | `CONV#<phone_number_id>#<customer>` | `META` | |
//! | inbound message | `CONV#…` | `MSG#<wamid>` | `lsi1sk = T#<timestamp>#<received ms>#<seq>#<wamid>` (timeline order) |
//! | outbound status | `CONV#…` | `OUT#<wamid>` | |
//!
//! A batch is written as single conditional writes, never a transaction (which costs twice the
//! write units): each item's own condition keeps it idempotent — messages and bodies only if
//! absent, statuses only to a higher rank, the reply window only forward — so a redelivery or a
//! concurrent duplicate stores nothing twice. The raw body is kept as an item only when the
//! items written cannot stand for it (unreadable, partial, refused), and before them.
//!
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, Put, ReturnConsumedCapacity,
    ScalarAttributeType, StreamSpecification, StreamViewType, Update,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

mod bulk;
mod handoff;
mod ticket;

pub use handoff::{change_from_image, change_from_item};
use handoff::{put_failed_condition, update_failed_condition};

use super::{
    AgentEventStore, ConversationReader, DeliveryLog, DeliveryStore, StoreError, TimelinePage,
};
use crate::domain::*;
use crate::whatsapp::WaError;

/// Bodies are split into parts that fit DynamoDB's 400 KB item limit beside their metadata.
const BODY_PART_BYTES: usize = 300_000;
/// Smaller bodies are stored as they are; larger ones deflated first.
const COMPRESS_ABOVE: usize = 4096;
const REPLAY_INDEX_KEY: &str = "REPLAY";

pub const LSI_TIMELINE: &str = "lsi1";
pub const GSI_REPLAY: &str = "gsi1";

/// Counts the HTTP requests a DynamoDB client sends, SDK retries included. Install it with
/// `aws_sdk_dynamodb::config::Builder::interceptor`.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl RequestCounter {
    /// The count so far, resetting it to zero.
    pub fn take(&self) -> u32 {
        self.0.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// The DynamoDB adapter of the store ports.
#[derive(Clone, Debug)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    /// Days an item is kept after its last write (`expires_at`, DynamoDB's TTL); `None` keeps
    /// items until deleted.
    retention_days: Option<u32>,
}

/// The attribute DynamoDB's TTL reads (template.yaml's `TimeToLiveSpecification`).
pub const EXPIRES_AT: &str = "expires_at";

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention_days: None,
        }
    }

    /// Stamps every item written with `expires_at` = now + `days` (`RETENTION_DAYS`).
    pub fn with_retention(mut self, days: Option<u32>) -> Self {
        self.retention_days = days.filter(|d| *d > 0);
        self
    }

    /// The `expires_at` value for an item written now, when a retention is set.
    pub(crate) fn expiry(&self) -> Option<AttributeValue> {
        self.retention_days
            .map(|d| n(crate::clock::now_ms() / 1000 + i64::from(d) * 86_400))
    }

    /// Builds a client from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env(table: impl Into<String>) -> Self {
        Self::from_config(&crate::retry::load_aws().await, table)
    }

    /// Builds a client from an SDK configuration loaded once at start-up.
    pub fn from_config(aws: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(aws), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as template.yaml declares it, when it does not exist yet (local
    /// emulators and tests; on AWS the stack owns the table).
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::describe_table::DescribeTableError::is_resource_not_found_exception) => {}
            Err(e) => return Err(sdk_error("DescribeTable", e)),
        }
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let built = (|| -> Result<_, aws_sdk_dynamodb::error::BuildError> {
            Ok((
                vec![
                    attr("pk")?,
                    attr("sk")?,
                    attr("lsi1sk")?,
                    attr("gsi1pk")?,
                    attr("gsi1sk")?,
                ],
                vec![key("pk", KeyType::Hash)?, key("sk", KeyType::Range)?],
                LocalSecondaryIndex::builder()
                    .index_name(LSI_TIMELINE)
                    .key_schema(key("pk", KeyType::Hash)?)
                    .key_schema(key("lsi1sk", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
                GlobalSecondaryIndex::builder()
                    .index_name(GSI_REPLAY)
                    .key_schema(key("gsi1pk", KeyType::Hash)?)
                    .key_schema(key("gsi1sk", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()?,
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            ))
        })();
        let (attrs, keys, lsi, gsi, stream) = built.map_err(StoreError::rejected_from)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(attrs))
            .set_key_schema(Some(keys))
            .local_secondary_indexes(lsi)
            .global_secondary_indexes(gsi)
            .stream_specification(stream)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it first.
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::create_table::CreateTableError::is_resource_in_use_exception) => {}
            Err(e) => return Err(sdk_error("CreateTable", e)),
        }
        for _ in 0..100 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeTable", e))?;
            if d.table()
                .and_then(|t| t.table_status())
                .map(aws_sdk_dynamodb::types::TableStatus::as_str)
                == Some("ACTIVE")
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(StoreError::unavailable(format!(
            "table {} did not become ACTIVE",
            self.table
        )))
    }
}

fn sdk_error<E>(operation: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &e {
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error() || is_throttle(se.err().code().unwrap_or_default())
        }
        // Timeouts, connection and response failures: the request may not have arrived.
        _ => true,
    };
    let message = match e.as_service_error() {
        Some(se) => format!(
            "{operation}: {} {}",
            se.code().unwrap_or("error"),
            se.message().unwrap_or_default()
        ),
        None => format!(
            "{operation}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        ),
    };
    let error = if retryable {
        StoreError::unavailable(message)
    } else {
        StoreError::rejected(message)
    };
    error.with_source(e)
}

fn is_throttle(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "TransactionInProgressException"
            | "InternalServerError"
            | "ServiceUnavailable"
    )
}

/// A Query's `Limit`: at least 1, and no more than one response holds anyway.
fn query_page(wanted: usize) -> i32 {
    wanted.clamp(1, 1000) as i32
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// What an action in a transaction stands for, to report on its outcome.
#[derive(Clone, Copy, Debug)]
enum Target {
    Delivery,
    BodyPart,
    Conversation,
    Message,
    Status,
}

struct Action {
    target: Target,
    /// The item's partition key: writes to one partition keep their order.
    partition: String,
    write: Conditional,
}

/// One conditional write.
enum Conditional {
    Put(Put),
    Update(Update),
}

impl Conditional {
    fn partition(&self) -> String {
        let pk = match self {
            Self::Put(p) => p.item.get("pk"),
            Self::Update(u) => u.key.get("pk"),
        };
        match pk {
            Some(AttributeValue::S(pk)) => pk.clone(),
            _ => String::new(),
        }
    }
}

/// An `UPDATE … SET` expression with every attribute name aliased (DynamoDB reserves many
/// common words such as `status` and `raw`).
#[derive(Default)]
struct UpdateExpr {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    size: usize,
}

impl UpdateExpr {
    fn name(&mut self, attr: &str) -> String {
        let alias = format!("#{attr}");
        self.names.insert(alias.clone(), attr.to_owned());
        alias
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let alias = format!(":v{}", self.values.len());
        self.size += match &v {
            AttributeValue::S(x) => x.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            _ => 16,
        };
        self.values.insert(alias.clone(), v);
        alias
    }

    fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.sets.push(format!("{name} = {value}"));
        self
    }

    fn set_if_absent(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.sets
            .push(format!("{name} = if_not_exists({name}, {value})"));
        self
    }

    /// Binds a value the condition refers to by `placeholder`.
    fn bind(&mut self, placeholder: &str, v: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_owned(), v);
        self
    }

    fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.name(attr);
        self.removes.push(name);
        self
    }

    fn expression(&self) -> String {
        let mut out = String::new();
        if !self.sets.is_empty() {
            out.push_str("SET ");
            out.push_str(&self.sets.join(", "));
        }
        if !self.removes.is_empty() {
            out.push_str(" REMOVE ");
            out.push_str(&self.removes.join(", "));
        }
        out
    }

    /// Conditions name attributes as `#attr`; each must also be registered with [`Self::name`].
    fn build(
        self,
        table: &str,
        pk: String,
        sk: &str,
        condition: Option<&str>,
    ) -> Result<Conditional, StoreError> {
        let update = Update::builder()
            .table_name(table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(self.expression())
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .build()
            .map_err(StoreError::rejected_from)?;
        Ok(Conditional::Update(update))
    }
}

fn put_if_absent(
    table: &str,
    mut item: HashMap<String, AttributeValue>,
    expiry: Option<&AttributeValue>,
) -> Result<Conditional, StoreError> {
    if let Some(v) = expiry {
        item.insert(EXPIRES_AT.to_owned(), v.clone());
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::rejected_from)?;
    Ok(Conditional::Put(put))
}

/// A stored message, as an item.
#[derive(Serialize, Deserialize)]
struct MessageItem {
    pk: String,
    sk: String,
    lsi1sk: String,
    item_type: String,
    phone_number_id: String,
    customer: String,
    wamid: String,
    ts: i64,
    kind: String,
    received_at_ms: i64,
    seq: u32,
    delivery_id: String,
    raw: String,
}

impl From<MessageItem> for MessageRecord {
    fn from(m: MessageItem) -> Self {
        MessageRecord {
            conversation: ConversationKey::new(m.phone_number_id, m.customer),
            wamid: m.wamid,
            timestamp: m.ts,
            kind: m.kind,
            received_at_ms: m.received_at_ms,
            seq: m.seq,
            delivery_id: DeliveryId(m.delivery_id),
            raw: m.raw,
        }
    }
}

#[derive(Deserialize)]
struct StatusItem {
    phone_number_id: String,
    customer: String,
    wamid: String,
    status: String,
    rank: u8,
    ts: i64,
    errors: String,
    received_at_ms: i64,
    delivery_id: String,
    raw: String,
}

#[derive(Deserialize)]
struct ConversationItem {
    phone_number_id: String,
    customer: String,
    #[serde(default)]
    display_phone_number: String,
    wa_id: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    profile_name: Option<String>,
    last_inbound_at: Option<i64>,
}

#[derive(Deserialize)]
struct DeliveryItem {
    received_at_ms: i64,
    state: String,
    problems: String,
    errors: String,
    ignored_fields: String,
    message_count: u32,
    status_count: u32,
    body_encoding: String,
    body_parts: u32,
}

pub fn delivery_pk(id: &DeliveryId) -> String {
    format!("DELIVERY#{id}")
}

fn json(v: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::rejected_from)
}

fn encode_body(body: &[u8]) -> (&'static str, Vec<u8>) {
    if body.len() <= COMPRESS_ABOVE {
        return ("identity", body.to_vec());
    }
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body).expect("writing to memory cannot fail");
    (
        "deflate",
        enc.finish().expect("writing to memory cannot fail"),
    )
}

fn decode_body(encoding: &str, stored: Vec<u8>) -> Result<Bytes, StoreError> {
    match encoding {
        "identity" => Ok(Bytes::from(stored)),
        "deflate" => {
            let mut out = Vec::with_capacity(stored.len() * 4);
            flate2::read::DeflateDecoder::new(stored.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| StoreError::corrupt(format!("delivery body does not inflate: {e}")))?;
            Ok(Bytes::from(out))
        }
        other => Err(StoreError::corrupt(format!(
            "unknown body encoding {other:?}"
        ))),
    }
}

impl DynamoDbStore {
    fn actions(&self, batch: &DeliveryBatch) -> Result<Vec<Action>, StoreError> {
        let t = self.table.as_str();
        let d = &batch.delivery;
        let expiry = self.expiry();
        let expiry = expiry.as_ref();
        let mut actions = Vec::with_capacity(
            2 + batch.conversations.len() + batch.messages.len() + batch.statuses.len(),
        );
        let mut push = |target, write: Conditional| {
            let partition = write.partition();
            actions.push(Action {
                target,
                partition,
                write,
            });
        };
        let pk = delivery_pk(&d.id);
        let replay_sk = format!("{:013}#{}", d.received_at_ms.max(0), d.id);

        match batch.origin {
            BatchOrigin::Webhook => {
                let (encoding, stored) = encode_body(&d.body);
                let parts: Vec<&[u8]> = if stored.is_empty() {
                    vec![&[][..]]
                } else {
                    stored.chunks(BODY_PART_BYTES).collect()
                };
                let mut item = HashMap::from([
                    ("pk".to_owned(), s(&pk)),
                    ("sk".to_owned(), s("DELIVERY")),
                    ("item_type".to_owned(), s("delivery")),
                    ("received_at_ms".to_owned(), n(d.received_at_ms)),
                    ("state".to_owned(), s(d.state.as_str())),
                    ("problems".to_owned(), s(json(&d.problems)?)),
                    ("errors".to_owned(), s(json(&d.errors)?)),
                    ("ignored_fields".to_owned(), s(json(&d.ignored_fields)?)),
                    ("message_count".to_owned(), n(d.message_count)),
                    ("status_count".to_owned(), n(d.status_count)),
                    ("body_size".to_owned(), n(d.body.len())),
                    ("body_encoding".to_owned(), s(encoding)),
                    ("body_parts".to_owned(), n(parts.len())),
                    ("body".to_owned(), AttributeValue::B(Blob::new(parts[0]))),
                ]);
                if d.state.replayable() {
                    item.insert("gsi1pk".to_owned(), s(REPLAY_INDEX_KEY));
                    item.insert("gsi1sk".to_owned(), s(&replay_sk));
                }
                push(Target::Delivery, put_if_absent(t, item, expiry)?);
                for (i, part) in parts.iter().enumerate().skip(1) {
                    let item = HashMap::from([
                        ("pk".to_owned(), s(&pk)),
                        ("sk".to_owned(), s(format!("BODY#{i:03}"))),
                        ("item_type".to_owned(), s("delivery_part")),
                        ("body".to_owned(), AttributeValue::B(Blob::new(*part))),
                    ]);
                    push(Target::BodyPart, put_if_absent(t, item, expiry)?);
                }
            }
            BatchOrigin::Replay => {
                let mut u = UpdateExpr::default();
                u.set("state", s(d.state.as_str()))
                    .set("problems", s(json(&d.problems)?))
                    .set("errors", s(json(&d.errors)?))
                    .set("ignored_fields", s(json(&d.ignored_fields)?))
                    .set("message_count", n(d.message_count))
                    .set("status_count", n(d.status_count));
                if d.state.replayable() {
                    u.set("gsi1pk", s(REPLAY_INDEX_KEY))
                        .set("gsi1sk", s(&replay_sk));
                } else {
                    u.remove("gsi1pk").remove("gsi1sk");
                }
                u.name("pk");
                push(
                    Target::Delivery,
                    u.build(t, pk, "DELIVERY", Some("attribute_exists(#pk)"))?,
                );
            }
        }

        for c in &batch.conversations {
            let mut u = UpdateExpr::default();
            if let Some(v) = expiry {
                // The conversation lives as long as it is active.
                u.set(EXPIRES_AT, v.clone());
            }
            u.set("item_type", s("conversation"))
                .set("phone_number_id", s(&c.key.phone_number_id))
                .set("customer", s(&c.key.customer))
                .set_if_absent("display_phone_number", s(&c.display_phone_number));
            for (attr, value) in [("wa_id", &c.wa_id), ("user_id", &c.user_id)] {
                if let Some(v) = value {
                    u.set_if_absent(attr, s(v));
                }
            }
            let condition = match c.last_inbound_at {
                Some(at) => {
                    // A newer message refreshes the profile; the window only moves forward.
                    for (attr, value) in
                        [("profile_name", &c.profile_name), ("username", &c.username)]
                    {
                        if let Some(v) = value {
                            u.set(attr, s(v));
                        }
                    }
                    u.set("last_inbound_at", n(at)).set(
                        "reply_window_closes_at",
                        n(ReplyWindow {
                            last_inbound_at: at,
                        }
                        .closes_at()),
                    );
                    u.bind(":at", n(at));
                    Some("attribute_not_exists(#last_inbound_at) OR #last_inbound_at < :at")
                }
                None => {
                    for (attr, value) in
                        [("profile_name", &c.profile_name), ("username", &c.username)]
                    {
                        if let Some(v) = value {
                            u.set_if_absent(attr, s(v));
                        }
                    }
                    None
                }
            };
            push(
                Target::Conversation,
                u.build(t, c.key.partition(), "META", condition)?,
            );
        }

        for m in &batch.messages {
            let item = MessageItem {
                pk: m.conversation.partition(),
                sk: format!("MSG#{}", m.wamid),
                lsi1sk: format!("T#{}", m.order_key()),
                item_type: "message".to_owned(),
                phone_number_id: m.conversation.phone_number_id.clone(),
                customer: m.conversation.customer.clone(),
                wamid: m.wamid.clone(),
                ts: m.timestamp,
                kind: m.kind.clone(),
                received_at_ms: m.received_at_ms,
                seq: m.seq,
                delivery_id: m.delivery_id.0.clone(),
                raw: m.raw.clone(),
            };
            let item = serde_dynamo::to_item(item).map_err(StoreError::rejected_from)?;
            push(Target::Message, put_if_absent(t, item, expiry)?);
        }

        for st in &batch.statuses {
            let mut u = UpdateExpr::default();
            if let Some(v) = expiry {
                u.set(EXPIRES_AT, v.clone());
            }
            u.set("item_type", s("status"))
                .set("phone_number_id", s(&st.conversation.phone_number_id))
                .set("customer", s(&st.conversation.customer))
                .set("wamid", s(&st.wamid))
                .set("status", s(&st.status))
                .set("rank", n(st.rank))
                .set("ts", n(st.timestamp))
                .set("errors", s(json(&st.errors)?))
                .set("received_at_ms", n(st.received_at_ms))
                .set("delivery_id", s(&st.delivery_id.0))
                .set("raw", s(&st.raw));
            u.bind(":rank", n(st.rank));
            let condition = "attribute_not_exists(#rank) OR #rank < :rank";
            push(
                Target::Status,
                u.build(
                    t,
                    st.conversation.partition(),
                    &format!("OUT#{}", st.wamid),
                    Some(condition),
                )?,
            );
        }
        Ok(actions)
    }

    /// Sends one action as a single conditional write (never a transaction: each item's own
    /// condition keeps it idempotent, at half a transaction's write units).
    async fn write_one(&self, action: Action, report: &mut WriteReport) -> Result<(), StoreError> {
        report.requests += 1;
        let outcome = match action.write {
            Conditional::Put(put) => self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map(|out| units(out.consumed_capacity()))
                .map_err(|e| (put_failed_condition(&e), sdk_error("PutItem", e))),
            Conditional::Update(update) => self
                .client
                .update_item()
                .table_name(update.table_name)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map(|out| units(out.consumed_capacity()))
                .map_err(|e| (update_failed_condition(&e), sdk_error("UpdateItem", e))),
        };
        match outcome {
            Ok(units) => {
                report.write_units += units;
                applied(report, action.target);
                Ok(())
            }
            Err((true, _)) => {
                already_done(report, action.target);
                Ok(())
            }
            Err((false, e)) => Err(e),
        }
    }
}

impl DynamoDbStore {
    /// The `item_type` items whose trail (`status_attr`) is parked or retrying: what a replay
    /// runs again.
    pub(crate) async fn scan_unfinished(
        &self,
        item_type: &str,
        status_attr: &str,
        projection: &str,
        limit: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let values = [
            (":t".to_owned(), s(item_type)),
            (":p".to_owned(), s(TrailStatus::Parked.as_str())),
            (":r".to_owned(), s(TrailStatus::Retrying.as_str())),
        ];
        self.scan_filtered(
            &format!("item_type = :t AND {status_attr} IN (:p, :r)"),
            &[],
            &values,
            Some(projection),
            limit,
        )
        .await
    }

    /// A strongly consistent read of one item.
    /// The items a scan's filter keeps, page after page, `limit` at most (`projection` names
    /// the attributes wanted, all when `None`).
    pub(crate) async fn scan_filtered(
        &self,
        filter: &str,
        names: &[(&str, &str)],
        values: &[(String, AttributeValue)],
        projection: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .consistent_read(true)
                .set_projection_expression(projection.map(str::to_owned))
                .set_exclusive_start_key(start.take());
            for (k, v) in names {
                req = req.expression_attribute_names(*k, *v);
            }
            for (k, v) in values {
                req = req.expression_attribute_values(k, v.clone());
            }
            let page = req.send().await.map_err(|e| sdk_error("Scan", e))?;
            for item in page.items() {
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(item.clone());
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn get_item(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }
}

/// The write units DynamoDB reported (`ReturnConsumedCapacity::Total`).
pub(crate) fn units<'a>(
    consumed: impl IntoIterator<Item = &'a aws_sdk_dynamodb::types::ConsumedCapacity>,
) -> u32 {
    consumed
        .into_iter()
        .filter_map(aws_sdk_dynamodb::types::ConsumedCapacity::capacity_units)
        .sum::<f64>()
        .round() as u32
}

fn applied(report: &mut WriteReport, target: Target) {
    match target {
        Target::Delivery => report.delivery_new = true,
        Target::Message => report.messages_new += 1,
        Target::Status => report.statuses_applied += 1,
        Target::BodyPart | Target::Conversation => {}
    }
}

fn already_done(report: &mut WriteReport, target: Target) {
    match target {
        Target::Message => report.messages_duplicate += 1,
        Target::Status => report.statuses_stale += 1,
        Target::Delivery | Target::BodyPart | Target::Conversation => {}
    }
}

#[async_trait]
impl DeliveryStore for DynamoDbStore {
    async fn write_batch(&self, batch: &DeliveryBatch) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        // The raw body is its own item only when the items cannot stand for it (unreadable,
        // partial, refused: what a replay reads; not WhatsApp's at all) or a replay updates it;
        // it goes first, so a failure after it loses nothing.
        let keep_body =
            batch.origin == BatchOrigin::Replay || batch.delivery.state != ParseState::Parsed;
        let mut conversations = Vec::new();
        let mut items = Vec::new();
        for action in self.actions(batch)? {
            match action.target {
                Target::Delivery | Target::BodyPart if keep_body => {
                    self.write_one(action, &mut report).await?;
                }
                Target::Delivery | Target::BodyPart => {}
                // Before the messages: the handoff function reads the reply window with them.
                Target::Conversation => conversations.push(action),
                Target::Message | Target::Status => items.push(action),
            }
        }
        // Conversations first, then their messages and statuses: one conversation's in the
        // delivery's order (the stream hands them on in the order they are written), the
        // conversations side by side.
        for group in [conversations, items] {
            let mut by_partition: Vec<(String, Vec<Action>)> = Vec::new();
            for action in group {
                match by_partition
                    .iter_mut()
                    .find(|(pk, _)| *pk == action.partition)
                {
                    Some((_, actions)) => actions.push(action),
                    None => by_partition.push((action.partition.clone(), vec![action])),
                }
            }
            let writes = by_partition.into_iter().map(|(_, actions)| async {
                let mut one = WriteReport::default();
                for action in actions {
                    self.write_one(action, &mut one).await?;
                }
                Ok::<_, StoreError>(one)
            });
            for one in futures_util::future::join_all(writes).await {
                report.add(&one?);
            }
        }
        // After the delivery itself: an answer lost here is a redelivery, which finds the body
        // stored and writes the events it missed.
        if !batch.agent_events.is_empty() {
            let events = self.write_agent_events(&batch.agent_events).await?;
            report.agent_events_new = events.events_new;
            report.write_units += events.write_units;
        }
        if !keep_body {
            report.settle_unkept_delivery();
        }
        if batch.origin == BatchOrigin::Replay {
            // A replay updates the delivery it came from; it was never new.
            report.delivery_new = false;
        }
        Ok(report)
    }
}

fn from_item<T: serde::de::DeserializeOwned>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(StoreError::corrupt_from)
}

#[async_trait]
impl ConversationReader for DynamoDbStore {
    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some(item) = self.get_item(key.partition(), "META").await? else {
            return Ok(None);
        };
        let c: ConversationItem = from_item(item)?;
        Ok(Some(Conversation {
            key: ConversationKey::new(c.phone_number_id, c.customer),
            display_phone_number: c.display_phone_number,
            wa_id: c.wa_id,
            user_id: c.user_id,
            username: c.username,
            profile_name: c.profile_name,
            last_inbound_at: c.last_inbound_at,
        }))
    }

    async fn timeline_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        let mut page = TimelinePage::default();
        let mut start_key = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LSI_TIMELINE)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(key.partition()))
                .limit(query_page(limit - page.entries.len()))
                .set_exclusive_start_key(start_key.take());
            q = match after {
                Some(cursor) => q
                    .key_condition_expression("pk = :pk AND lsi1sk > :after")
                    .expression_attribute_values(":after", s(format!("T#{cursor}"))),
                None => q
                    .key_condition_expression("pk = :pk AND begins_with(lsi1sk, :t)")
                    .expression_attribute_values(":t", s("T#")),
            };
            let out = q.send().await.map_err(|e| sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if !matches!(item.get("lsi1sk"), Some(AttributeValue::S(k)) if k.starts_with("T#"))
                {
                    return Ok(page);
                }
                match change_from_item(item)? {
                    Some(Change::Message(m)) => page.entries.push(TimelineEntry::Message(m)),
                    Some(Change::AgentEvent(e)) => page.entries.push(TimelineEntry::Agent(e)),
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(k) if page.entries.len() < limit => start_key = Some(k),
                Some(_) => {
                    page.next = page.entries.last().map(TimelineEntry::order_key);
                    return Ok(page);
                }
                None => return Ok(page),
            }
        }
    }

    async fn status(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<StatusRecord>, StoreError> {
        let Some(item) = self
            .get_item(key.partition(), &format!("OUT#{wamid}"))
            .await?
        else {
            return Ok(None);
        };
        let st: StatusItem = from_item(item)?;
        Ok(Some(StatusRecord {
            conversation: ConversationKey::new(st.phone_number_id, st.customer),
            wamid: st.wamid,
            status: st.status,
            rank: st.rank,
            timestamp: st.ts,
            errors: serde_json::from_str::<Vec<WaError>>(&st.errors)
                .map_err(StoreError::corrupt_from)?,
            received_at_ms: st.received_at_ms,
            delivery_id: DeliveryId(st.delivery_id),
            raw: st.raw,
        }))
    }
}

#[async_trait]
impl DeliveryLog for DynamoDbStore {
    async fn delivery(&self, id: &DeliveryId) -> Result<Option<RawDelivery>, StoreError> {
        let pk = delivery_pk(id);
        let Some(mut item) = self.get_item(pk.clone(), "DELIVERY").await? else {
            return Ok(None);
        };
        let first = match item.remove("body") {
            Some(AttributeValue::B(b)) => b.into_inner(),
            _ => return Err(StoreError::corrupt(format!("delivery {id} has no body"))),
        };
        let meta: DeliveryItem = from_item(item)?;
        let mut stored = first;
        if meta.body_parts > 1 {
            let mut start_key = None;
            let mut parts = Vec::new();
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :b)")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":b", s("BODY#"))
                    .consistent_read(true)
                    .set_exclusive_start_key(start_key.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error("Query", e))?;
                for mut part in out.items.unwrap_or_default() {
                    if let Some(AttributeValue::B(b)) = part.remove("body") {
                        parts.push(b.into_inner());
                    }
                }
                match out.last_evaluated_key {
                    Some(k) => start_key = Some(k),
                    None => break,
                }
            }
            if parts.len() + 1 != meta.body_parts as usize {
                return Err(StoreError::corrupt(format!(
                    "delivery {id} has {} of its {} body parts",
                    parts.len() + 1,
                    meta.body_parts
                )));
            }
            for p in parts {
                stored.extend_from_slice(&p);
            }
        }
        let corrupt = |e: serde_json::Error| StoreError::corrupt_from(e);
        Ok(Some(RawDelivery {
            id: id.clone(),
            received_at_ms: meta.received_at_ms,
            body: decode_body(&meta.body_encoding, stored)?,
            state: ParseState::parse(&meta.state).ok_or_else(|| {
                StoreError::corrupt(format!("unknown delivery state {:?}", meta.state))
            })?,
            problems: serde_json::from_str(&meta.problems).map_err(corrupt)?,
            errors: serde_json::from_str(&meta.errors).map_err(corrupt)?,
            ignored_fields: serde_json::from_str(&meta.ignored_fields).map_err(corrupt)?,
            message_count: meta.message_count,
            status_count: meta.status_count,
        }))
    }

    async fn replayable_deliveries(&self, limit: usize) -> Result<Vec<DeliveryId>, StoreError> {
        let mut out_ids = Vec::new();
        let mut start_key = None;
        while out_ids.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI_REPLAY)
                .key_condition_expression("gsi1pk = :r")
                .expression_attribute_values(":r", s(REPLAY_INDEX_KEY))
                .limit(query_page(limit - out_ids.len()))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(pk)) = item.get("pk")
                    && let Some(id) = pk.strip_prefix("DELIVERY#")
                {
                    out_ids.push(DeliveryId(id.to_owned()));
                }
            }
            match out.last_evaluated_key {
                Some(k) => start_key = Some(k),
                None => break,
            }
        }
        Ok(out_ids)
    }
}
