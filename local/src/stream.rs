//! Reading a DynamoDB table's stream the way Lambda's event source mapping does, for
//! `baton-local` on DynamoDB: every shard from its start (or where the last run stopped), records
//! handed over as the very `EventRecord`s Lambda would deliver, and a batch's failed record read
//! again, with those after it.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where to resume a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// After this sequence number (it was processed).
    After(String),
    /// At this sequence number (it failed and must be read again).
    At(String),
}

/// The records one shard had for a poll, in order.
#[derive(Debug)]
pub struct ShardBatch {
    pub shard: String,
    pub records: Vec<EventRecord>,
}

pub struct StreamReader {
    client: Client,
    stream_arn: String,
    positions: HashMap<String, Position>,
    /// Kept so a restart resumes; `None` keeps positions in memory only.
    file: Option<PathBuf>,
    iterators: HashMap<String, String>,
    /// Records per GetRecords call (Lambda's batch size).
    pub batch_size: i32,
}

impl StreamReader {
    /// Finds the table's latest stream.
    pub async fn open(
        aws: &aws_config::SdkConfig,
        table: &str,
        file: Option<PathBuf>,
    ) -> Result<Self, String> {
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        let desc = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable: {}", DisplayErrorContext(e)))?;
        let stream_arn = desc
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        let positions = match &file {
            Some(f) => std::fs::read_to_string(f)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            None => HashMap::new(),
        };
        Ok(Self {
            client: Client::new(aws),
            stream_arn,
            positions,
            file,
            iterators: HashMap::new(),
            batch_size: 100,
        })
    }

    /// The records that arrived since the last poll, a batch per shard that had any.
    pub async fn poll(&mut self) -> Result<Vec<ShardBatch>, String> {
        let desc = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| format!("DescribeStream: {}", DisplayErrorContext(e)))?;
        let shards: Vec<String> = desc
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        for shard in shards {
            let iterator = match self.iterators.remove(&shard) {
                Some(it) => it,
                None => {
                    let req = self
                        .client
                        .get_shard_iterator()
                        .stream_arn(&self.stream_arn)
                        .shard_id(&shard);
                    let req = match self.positions.get(&shard) {
                        Some(Position::After(seq)) => req
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(seq),
                        Some(Position::At(seq)) => req
                            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                            .sequence_number(seq),
                        None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                    };
                    let o = req
                        .send()
                        .await
                        .map_err(|e| format!("GetShardIterator: {}", DisplayErrorContext(e)))?;
                    match o.shard_iterator {
                        Some(it) => it,
                        None => continue,
                    }
                }
            };
            let page = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(self.batch_size)
                .send()
                .await
                .map_err(|e| format!("GetRecords: {}", DisplayErrorContext(e)))?;
            if let Some(next) = page.next_shard_iterator.clone() {
                self.iterators.insert(shard.clone(), next);
            }
            let records = page
                .records()
                .iter()
                .map(|r| lambda_record(r, &self.stream_arn))
                .collect::<Result<Vec<_>, _>>()?;
            if !records.is_empty() {
                out.push(ShardBatch { shard, records });
            }
        }
        Ok(out)
    }

    /// Marks `batch` as processed, except from `failed` (a sequence number) on, which the next
    /// poll reads again.
    pub fn settle(&mut self, batch: &ShardBatch, failed: Option<&str>) {
        let position = match failed {
            Some(seq) => {
                self.iterators.remove(&batch.shard);
                Position::At(seq.to_owned())
            }
            None => match batch
                .records
                .last()
                .and_then(|r| r.change.sequence_number.clone())
            {
                Some(seq) => Position::After(seq),
                None => return,
            },
        };
        self.positions.insert(batch.shard.clone(), position);
        if let Some(f) = &self.file
            && let Ok(text) = serde_json::to_string(&self.positions)
        {
            let tmp = f.with_extension("tmp");
            if std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, f))
                .is_err()
            {
                tracing::warn!(file = %f.display(), "could not save the stream positions");
            }
        }
    }
}

/// A DynamoDB Streams record as Lambda's event source mapping delivers it.
pub fn lambda_record(r: &Record, stream_arn: &str) -> Result<EventRecord, String> {
    let d = r.dynamodb().ok_or("a stream record without its data")?;
    let image = |m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        let item: serde_dynamo::Item = m.cloned().unwrap_or_default().into();
        serde_json::to_value(item).unwrap_or_default()
    };
    let value = json!({
        "eventID": r.event_id().unwrap_or_default(),
        "eventName": r.event_name().map(aws_sdk_dynamodbstreams::types::OperationType::as_str).unwrap_or_default(),
        "eventVersion": r.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region().unwrap_or("us-east-1"),
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": d.approximate_creation_date_time().map_or(0, aws_sdk_s3::primitives::DateTime::secs),
            "Keys": image(d.keys.as_ref()),
            "NewImage": image(d.new_image.as_ref()),
            "OldImage": image(d.old_image.as_ref()),
            "SequenceNumber": d.sequence_number().unwrap_or_default(),
            "SizeBytes": d.size_bytes().unwrap_or_default(),
            "StreamViewType": d.stream_view_type().map_or("NEW_AND_OLD_IMAGES", aws_sdk_dynamodbstreams::types::StreamViewType::as_str),
        }
    });
    serde_json::from_value(value).map_err(|e| format!("stream record in Lambda's shape: {e}"))
}
