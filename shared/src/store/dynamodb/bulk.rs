//! Bulk reads and deletions for maintenance commands (`baton-local forget-customer`): every item
//! a scan keeps, every item of a partition, and batched deletes. The functions never use them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use super::DynamoDbStore;

type Item = HashMap<String, AttributeValue>;

impl DynamoDbStore {
    /// Every item the scan's filter keeps, all pages.
    pub async fn scan_all(
        &self,
        filter: &str,
        names: &[(&str, &str)],
        values: &[(String, AttributeValue)],
    ) -> Result<Vec<Item>, String> {
        self.scan_filtered(filter, names, values, None, usize::MAX)
            .await
            .map_err(|e| e.to_string())
    }

    /// Every item of one partition, all pages.
    pub async fn partition(&self, pk: &str) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| format!("Query: {e:?}"))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes the items (by `pk` and `sk`), 25 per request, retrying what DynamoDB leaves
    /// unprocessed.
    pub async fn delete_items(&self, items: &[Item]) -> Result<(), String> {
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for item in chunk {
                let key: Item = ["pk", "sk"]
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| e.to_string())?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut attempt = 0u32;
            while !requests.is_empty() {
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), requests)
                    .send()
                    .await
                    .map_err(|e| format!("BatchWriteItem: {e:?}"))?;
                requests = out
                    .unprocessed_items()
                    .and_then(|u| u.get(self.table()).cloned())
                    .unwrap_or_default();
                attempt += 1;
                if attempt > 8 && !requests.is_empty() {
                    return Err(format!(
                        "DynamoDB left {} deletions unprocessed after {attempt} attempts; run the command again",
                        requests.len()
                    ));
                }
                if !requests.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(())
    }
}
