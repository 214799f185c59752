//! The DynamoDB store's ticket events (in the handoff's partition, so the stream hands them to
//! the HubSpot function in order after the handoff itself), ticket links and episode ends.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | ticket event | `HANDOFF#<handoff id>` | `EV#<event id>` | `record` (JSON), `progress` (JSON), `progress_status` |
//! | ticket link | `TICKET#<ticket id>` | `TICKET` | `record` (JSON) |

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::handoff::{SetItemAttr, json, json_attr, put_failed_condition};
use super::{DynamoDbStore, EXPIRES_AT, n, s, sdk_error};
use crate::domain::{ConversationKey, EventTrail, TicketEvent, TicketLink};
use crate::store::{StoreError, TicketStore};

fn event_key(handoff_id: &str, id: &str) -> (String, String) {
    (format!("HANDOFF#{handoff_id}"), format!("EV#{id}"))
}

fn with_trail(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<(TicketEvent, EventTrail), StoreError> {
    let event = json_attr(item, "record")?;
    let trail = if item.contains_key("progress") {
        json_attr(item, "progress")?
    } else {
        EventTrail::default()
    };
    Ok((event, trail))
}

#[async_trait]
impl TicketStore for DynamoDbStore {
    async fn save_ticket_event(&self, event: &TicketEvent) -> Result<bool, StoreError> {
        let (pk, sk) = event_key(&event.handoff_id, &event.id);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("item_type", s("ticket_event"))
            .item("handoff_id", s(&event.handoff_id))
            .item("event_kind", s(event.kind.as_str()))
            .item("received_at_ms", n(event.received_at_ms))
            .item("record", json(event)?)
            .set_item_attr(EXPIRES_AT, self.expiry())
            .condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if put_failed_condition(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn ticket_event(
        &self,
        handoff_id: &str,
        id: &str,
    ) -> Result<Option<(TicketEvent, EventTrail)>, StoreError> {
        let (pk, sk) = event_key(handoff_id, id);
        match self.get_item(pk, &sk).await? {
            Some(item) => with_trail(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn ticket_events(
        &self,
        handoff_id: &str,
    ) -> Result<Vec<(TicketEvent, EventTrail)>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :ev)")
                .expression_attribute_values(":pk", s(format!("HANDOFF#{handoff_id}")))
                .expression_attribute_values(":ev", s("EV#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in page.items() {
                out.push(with_trail(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn save_event_trail(
        &self,
        handoff_id: &str,
        id: &str,
        trail: &EventTrail,
    ) -> Result<(), StoreError> {
        let (pk, sk) = event_key(handoff_id, id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET progress = :j, progress_status = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":j", json(trail)?)
            .expression_attribute_values(":s", s(trail.status.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Err(StoreError::rejected(format!(
                    "no event {id} on handoff {handoff_id}"
                )))
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn unfinished_events(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let items = self
            .scan_unfinished("ticket_event", "progress_status", "handoff_id, sk", limit)
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| match (item.get("handoff_id"), item.get("sk")) {
                (Some(AttributeValue::S(h)), Some(AttributeValue::S(sk))) => {
                    Some((h.clone(), sk.strip_prefix("EV#")?.to_owned()))
                }
                _ => None,
            })
            .collect())
    }

    async fn link_ticket(&self, link: &TicketLink) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("TICKET#{}", link.ticket_id)))
            .item("sk", s("TICKET"))
            .item("item_type", s("ticket_link"))
            .item("handoff_id", s(&link.handoff_id))
            .item("conversation", s(link.conversation.partition()))
            .item("record", json(link)?)
            .set_item_attr(EXPIRES_AT, self.expiry());
        put.send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutItem", e))
    }

    async fn ticket_link(&self, ticket_id: &str) -> Result<Option<TicketLink>, StoreError> {
        match self
            .get_item(format!("TICKET#{ticket_id}"), "TICKET")
            .await?
        {
            Some(item) => json_attr(&item, "record").map(Some),
            None => Ok(None),
        }
    }

    async fn close_episode(&self, key: &ConversationKey, episode: u32) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.partition()))
            .key("sk", s("META"))
            .update_expression("REMOVE open_episode, open_trigger")
            .condition_expression("open_episode = :e")
            .expression_attribute_values(":e", n(episode))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }
}
