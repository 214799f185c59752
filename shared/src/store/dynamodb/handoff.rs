//! The DynamoDB store's agent events and handoff items.
//!
//! | item | `pk` | `sk` | other keys |
//! |---|---|---|---|
//! | agent event | `CONV#…` | `EVT#<event id>` | `lsi1sk = T#<timestamp>#<received ms>#<seq>#~<event id>` |
//! | media copy | `CONV#…` | `MEDIA#<wamid>` | |
//! | handoff | `HANDOFF#<id>` | `HANDOFF` | |
//! | ticket event (see [`super::ticket`]) | `HANDOFF#<id>` | `EV#<event id>` | |
//! | ticket link | `TICKET#<ticket id>` | `TICKET` | |
//!
//! The conversation item (`META`) also holds the handoff episode (`open_episode`,
//! `open_trigger`, `episodes`) and the agent's failure run (`agent_streak`, `agent_streak_key`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use serde::{Deserialize, Serialize};

use super::{DynamoDbStore, EXPIRES_AT, MessageItem, from_item, n, s, sdk_error, units};

/// Adds an attribute to a PutItem only when it has a value.
pub(super) trait SetItemAttr: Sized {
    fn set_item_attr(self, name: &str, value: Option<AttributeValue>) -> Self;
}

impl SetItemAttr for aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    fn set_item_attr(self, name: &str, value: Option<AttributeValue>) -> Self {
        match value {
            Some(v) => self.item(name, v),
            None => self,
        }
    }
}
use crate::domain::*;
use crate::store::{AgentEventStore, HandoffStore, StoreError, TrailStore};

#[derive(Serialize, Deserialize)]
pub(super) struct AgentEventItem {
    pk: String,
    sk: String,
    lsi1sk: String,
    item_type: String,
    phone_number_id: String,
    customer: String,
    event_id: String,
    kind: AgentEventKind,
    ts: i64,
    received_at_ms: i64,
    seq: u32,
    failed: bool,
    raw: String,
}

impl AgentEventItem {
    pub(super) fn from_record(e: &AgentEventRecord) -> Self {
        Self {
            pk: e.conversation.partition(),
            sk: format!("EVT#{}", e.event_id),
            lsi1sk: format!("T#{}", e.order_key()),
            item_type: "agent_event".into(),
            phone_number_id: e.conversation.phone_number_id.clone(),
            customer: e.conversation.customer.clone(),
            event_id: e.event_id.clone(),
            kind: e.kind,
            ts: e.timestamp,
            received_at_ms: e.received_at_ms,
            seq: e.seq,
            failed: e.failed,
            raw: e.raw.clone(),
        }
    }
}

impl From<AgentEventItem> for AgentEventRecord {
    fn from(i: AgentEventItem) -> Self {
        AgentEventRecord {
            conversation: ConversationKey::new(i.phone_number_id, i.customer),
            event_id: i.event_id,
            kind: i.kind,
            timestamp: i.ts,
            received_at_ms: i.received_at_ms,
            seq: i.seq,
            failed: i.failed,
            raw: i.raw,
        }
    }
}

/// Reads a stream image or a stored item as a timeline entry or handoff, by `item_type`.
pub fn change_from_item(
    item: HashMap<String, AttributeValue>,
) -> Result<Option<Change>, StoreError> {
    let kind = match item.get("item_type") {
        Some(AttributeValue::S(k)) => k.clone(),
        _ => return Ok(None),
    };
    Ok(match kind.as_str() {
        "message" => Some(Change::Message(from_item::<MessageItem>(item)?.into())),
        "agent_event" => Some(Change::AgentEvent(
            from_item::<AgentEventItem>(item)?.into(),
        )),
        "handoff" => Some(Change::Handoff(Box::new(json_attr(&item, "record")?))),
        "ticket_event" => Some(Change::TicketEvent(Box::new(json_attr(&item, "record")?))),
        _ => None,
    })
}

pub(super) fn json_attr<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(j)) => {
            serde_json::from_str(j).map_err(|e| StoreError::corrupt(format!("{name}: {e}")))
        }
        _ => Err(StoreError::corrupt(format!("item has no {name} attribute"))),
    }
}

pub(super) fn json(v: &impl Serialize) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(v)
        .map(s)
        .map_err(StoreError::rejected_from)
}

pub(super) fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(super) fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The item after a conditional `UpdateItem` asked for `ALL_NEW` (and `ALL_OLD` on a failed
/// condition), and whether the update applied.
pub(super) fn item_after_update(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<(HashMap<String, AttributeValue>, bool), StoreError> {
    match result {
        Ok(out) => Ok((out.attributes.unwrap_or_default(), true)),
        Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
            match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    Ok((c.item.unwrap_or_default(), false))
                }
                _ => Ok((HashMap::new(), false)),
            }
        }
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

pub(super) fn put_failed_condition(
    e: &SdkError<PutItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception())
}

pub(super) fn update_failed_condition(
    e: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception())
}

#[async_trait]
impl AgentEventStore for DynamoDbStore {
    async fn write_agent_events(
        &self,
        events: &[AgentEventRecord],
    ) -> Result<AgentWriteReport, StoreError> {
        let mut report = AgentWriteReport::default();
        let mut touched: Vec<&ConversationKey> = Vec::new();
        for e in events {
            if !touched.contains(&&e.conversation) {
                touched.push(&e.conversation);
                // The conversation may start with the agent: make sure it exists. A read costs a
                // tenth of a write, and the customer almost always wrote first.
                if !self.conversation_exists(&e.conversation).await? {
                    let out = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .key("pk", s(e.conversation.partition()))
                        .key("sk", s("META"))
                        .update_expression("SET item_type = :t, phone_number_id = if_not_exists(phone_number_id, :p), customer = if_not_exists(customer, :c)")
                        .expression_attribute_values(":t", s("conversation"))
                        .expression_attribute_values(":p", s(&e.conversation.phone_number_id))
                        .expression_attribute_values(":c", s(&e.conversation.customer))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await
                        .map_err(|err| sdk_error("UpdateItem", err))?;
                    report.write_units += units(out.consumed_capacity());
                }
            }
            let mut item: HashMap<String, AttributeValue> =
                serde_dynamo::to_item(AgentEventItem::from_record(e))
                    .map_err(StoreError::rejected_from)?;
            if let Some(v) = self.expiry() {
                item.insert(EXPIRES_AT.to_owned(), v);
            }
            match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
            {
                Ok(out) => {
                    report.events_new += 1;
                    report.write_units += units(out.consumed_capacity());
                }
                Err(err) if put_failed_condition(&err) => report.events_duplicate += 1,
                Err(err) => return Err(sdk_error("PutItem", err)),
            }
        }
        Ok(report)
    }
}

impl DynamoDbStore {
    /// Whether the conversation's item exists (an eventually consistent read of its key: half a
    /// read unit, where an update would cost a whole write unit).
    async fn conversation_exists(&self, key: &ConversationKey) -> Result<bool, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key.partition()))
            .key("sk", s("META"))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|err| sdk_error("GetItem", err))?
            .item
            .is_some())
    }
}

#[async_trait]
impl HandoffStore for DynamoDbStore {
    async fn agent_outcome(
        &self,
        key: &ConversationKey,
        order_key: &str,
        failed: bool,
    ) -> Result<u32, StoreError> {
        // A success with no run to end changes nothing: a read (a fifth of a write's price)
        // spares the write that most agent events would otherwise cost.
        if !failed
            && self
                .get_item(key.partition(), "META")
                .await?
                .and_then(|item| number(&item, "agent_streak"))
                .unwrap_or(0)
                == 0
        {
            return Ok(0);
        }
        // A success sets the run to 0 + 0, a failure adds 1.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.partition()))
            .key("sk", s("META"))
            .update_expression(if failed {
                "SET agent_streak = if_not_exists(agent_streak, :zero) + :step, agent_streak_key = :k"
            } else {
                "SET agent_streak = :zero + :step, agent_streak_key = :k"
            })
            .condition_expression("attribute_not_exists(agent_streak_key) OR agent_streak_key < :k")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":step", n(u8::from(failed)))
            .expression_attribute_values(":k", s(order_key))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let (item, _) = item_after_update(result)?;
        Ok(number(&item, "agent_streak").unwrap_or(0).max(0) as u32)
    }

    async fn open_episode(&self, key: &ConversationKey) -> Result<Option<u32>, StoreError> {
        Ok(self
            .get_item(key.partition(), "META")
            .await?
            .and_then(|item| number(&item, "open_episode"))
            .map(|e| e.max(0) as u32))
    }

    async fn claim_handoff(
        &self,
        key: &ConversationKey,
        trigger: &str,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.partition()))
            .key("sk", s("META"))
            .update_expression(
                "SET open_episode = if_not_exists(episodes, :zero) + :one, episodes = if_not_exists(episodes, :zero) + :one, open_trigger = :t, item_type = :ct, phone_number_id = if_not_exists(phone_number_id, :p), customer = if_not_exists(customer, :c)",
            )
            .condition_expression("attribute_not_exists(open_episode)")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":t", s(trigger))
            .expression_attribute_values(":ct", s("conversation"))
            .expression_attribute_values(":p", s(&key.phone_number_id))
            .expression_attribute_values(":c", s(&key.customer))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let (item, opened) = item_after_update(result)?;
        Ok(Claim {
            episode: number(&item, "open_episode").unwrap_or(0).max(0) as u32,
            trigger: string(&item, "open_trigger").unwrap_or_default(),
            opened,
        })
    }

    async fn media(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<MediaRecord>, StoreError> {
        match self
            .get_item(key.partition(), &format!("MEDIA#{wamid}"))
            .await?
        {
            Some(item) => json_attr(&item, "record").map(Some),
            None => Ok(None),
        }
    }

    async fn save_media(&self, record: &MediaRecord) -> Result<(), StoreError> {
        let state = match record.state {
            MediaState::Copied => "copied",
            MediaState::Failed => "failed",
            MediaState::Pending => "pending",
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(record.conversation.partition()))
            .item("sk", s(format!("MEDIA#{}", record.wamid)))
            .item("item_type", s("media"))
            .item("state", s(state))
            .item("record", json(record)?)
            .set_item_attr(EXPIRES_AT, self.expiry())
            .condition_expression("attribute_not_exists(pk) OR #state <> :copied")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":copied", s("copied"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if put_failed_condition(&e) => Ok(()),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError> {
        match self.get_item(format!("HANDOFF#{id}"), "HANDOFF").await? {
            Some(item) => json_attr(&item, "record").map(Some),
            None => Ok(None),
        }
    }

    async fn save_handoff(&self, record: &HandoffRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("HANDOFF#{}", record.id)))
            .item("sk", s("HANDOFF"))
            .item("item_type", s("handoff"))
            .item("handoff_id", s(&record.id))
            .item("conversation", s(record.conversation.partition()))
            .item("episode", n(record.episode))
            .item("created_at_ms", n(record.created_at_ms))
            .item("record", json(record)?)
            .set_item_attr(EXPIRES_AT, self.expiry())
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if put_failed_condition(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}

/// The trail lives on the handoff item (`hubspot`, JSON), with `hubspot_status` beside it for
/// the replay's scan. Updates are MODIFY records, which the HubSpot function's filter ignores.
#[async_trait]
impl TrailStore for DynamoDbStore {
    async fn trail(&self, handoff_id: &str) -> Result<Option<HubspotTrail>, StoreError> {
        match self
            .get_item(format!("HANDOFF#{handoff_id}"), "HANDOFF")
            .await?
        {
            Some(item) if item.contains_key("hubspot") => json_attr(&item, "hubspot").map(Some),
            _ => Ok(None),
        }
    }

    async fn save_trail(&self, handoff_id: &str, trail: &HubspotTrail) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("HANDOFF#{handoff_id}")))
            .key("sk", s("HANDOFF"))
            .update_expression("SET hubspot = :j, hubspot_status = :s, hubspot_updated_ms = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":j", json(trail)?)
            .expression_attribute_values(":s", s(trail.status.as_str()))
            .expression_attribute_values(":t", n(trail.updated_at_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Err(StoreError::rejected(format!("no handoff {handoff_id}")))
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn unfinished_handoffs(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let items = self
            .scan_unfinished("handoff", "hubspot_status", "handoff_id", limit)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| string(i, "handoff_id"))
            .collect())
    }
}

/// Reads a stream record's image (as Lambda's DynamoDB event carries it) as a change.
pub fn change_from_image(image: serde_dynamo::Item) -> Result<Option<Change>, StoreError> {
    change_from_item(image.into())
}
