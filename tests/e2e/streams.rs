//! What the table's stream carries (the handoff function will consume it): one INSERT per
//! message however often Meta delivers it, and a MODIFY only when a status really moves forward.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, ShardIteratorType};
use baton_testkit::bodies;
use serde_json::json;

use crate::support::*;

async fn read_stream(endpoint: &str, table: &str) -> Vec<(OperationType, String, String)> {
    let conf = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "test", "test", None, None, "t",
        ))
        .build();
    let client = aws_sdk_dynamodbstreams::Client::from_conf(conf);
    let streams = client
        .list_streams()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let arn = streams.streams()[0].stream_arn().unwrap().to_owned();
    let desc = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for shard in desc.stream_description().unwrap().shards() {
        let mut it = client
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let page = client
                .get_records()
                .shard_iterator(&it)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                let d = r.dynamodb().unwrap();
                let image: &HashMap<String, AttributeValue> =
                    d.new_image().or(d.old_image()).unwrap();
                let get = |k: &str| {
                    image
                        .get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                out.push((r.event_name().unwrap().clone(), get("item_type"), get("sk")));
            }
            match page.next_shard_iterator {
                Some(next) => it = next,
                None => break,
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_put_nothing_more_on_the_stream() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    let endpoint = dynamodb_endpoint().unwrap();
    let table = store.table().to_owned();
    let app = webhook(Arc::new(store));
    let p = unique("stream");
    let body = bodies::texts(
        &p,
        "16505550500",
        &[("wamid.s1", 10), ("wamid.s2", 11), ("wamid.s3", 12)],
    );
    for _ in 0..3 {
        call(&app, signed(body.clone())).await;
    }
    let send = || call(&app, signed(body.clone()));
    tokio::join!(send(), send(), send());
    for (i, status) in ["sent", "delivered", "sent", "read", "delivered", "read"]
        .iter()
        .enumerate()
    {
        let b = bodies::delivery(
            &p,
            serde_json::Value::Null,
            serde_json::Value::Null,
            json!([bodies::reply_status(
                "wamid.out1",
                "16505550500",
                status,
                100 + i as i64
            )]),
        );
        call(&app, signed(b)).await;
    }

    let records = read_stream(&endpoint, &table).await;
    let count = |op: OperationType, item: &str| {
        records
            .iter()
            .filter(|(o, t, _)| *o == op && t == item)
            .count()
    };
    let message_inserts: Vec<&str> = records
        .iter()
        .filter(|(o, t, _)| *o == OperationType::Insert && t == "message")
        .map(|(_, _, sk)| sk.as_str())
        .collect();
    assert_eq!(
        message_inserts,
        ["MSG#wamid.s1", "MSG#wamid.s2", "MSG#wamid.s3"],
        "{records:?}"
    );
    assert_eq!(count(OperationType::Modify, "message"), 0, "{records:?}");
    // Every body was read whole: its items stand for it, and no body is kept.
    assert_eq!(count(OperationType::Insert, "delivery"), 0, "{records:?}");
    assert_eq!(count(OperationType::Modify, "delivery"), 0, "{records:?}");
    // sent (insert), delivered, read (modify); the three stale ones write nothing.
    assert_eq!(
        (
            count(OperationType::Insert, "status"),
            count(OperationType::Modify, "status")
        ),
        (1, 2),
        "{records:?}"
    );
}
