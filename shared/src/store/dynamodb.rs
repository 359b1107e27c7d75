//! The DynamoDB adapter: one table, `pk` (S) + `sk` (S) as its primary key,
//! the body as a native map under `body`, the version under `v`, and the
//! expiry as epoch seconds under `expiresAt`, which is the table's TTL
//! attribute. TTL deletion is lazy, so every read also filters on expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    PutRequest, ReturnValue, ScalarAttributeType, TimeToLiveSpecification, WriteRequest,
};
use jiff::Timestamp;
use serde_json::Value;

use super::batch::{RetryPolicy, write_all};
use super::{
    Condition, Cursor, Item, ItemBatchWrite, ItemCounter, ItemDelete, ItemGet, ItemKey, ItemPut,
    ItemQuery, Order, Page, Query, SortKeyRange, StoreError, StoreResult, Stored, WriteOp,
    last_op_per_key,
};
use crate::clock::{Clock, SystemClock};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const BODY: &str = "body";
pub const VERSION: &str = "v";
/// The table's TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expiresAt";
/// A counter's value ([`ItemCounter`]), beside an empty body.
pub const COUNT: &str = "count";
/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_MAX: usize = 25;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
        }
    }

    /// The adapter a function uses: a client from the shared SDK configuration.
    pub fn from_sdk_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn now_seconds(&self) -> AttributeValue {
        AttributeValue::N(self.clock.now().as_second().to_string())
    }

    fn key_map(key: &ItemKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(key.pk.clone())),
            (SK.to_owned(), AttributeValue::S(key.sk.clone())),
        ])
    }

    /// The condition expression (and its values) for `condition`, phrased so
    /// that an expired item that DynamoDB has not deleted yet counts as absent.
    fn condition(
        &self,
        condition: Condition,
        values: &mut HashMap<String, AttributeValue>,
    ) -> Option<&'static str> {
        match condition {
            Condition::Always => None,
            Condition::IfAbsent => {
                values.insert(":now".into(), self.now_seconds());
                Some("attribute_not_exists(#pk) OR #exp <= :now")
            }
            Condition::IfVersion(v) => {
                values.insert(":now".into(), self.now_seconds());
                values.insert(":expected".into(), AttributeValue::N(v.to_string()));
                Some("#v = :expected AND (attribute_not_exists(#exp) OR #exp > :now)")
            }
        }
    }
}

fn condition_names(expression: Option<&str>) -> Option<HashMap<String, String>> {
    let expression = expression?;
    let mut names = HashMap::new();
    for (placeholder, name) in [("#pk", PK), ("#exp", EXPIRES_AT), ("#v", VERSION)] {
        if expression.contains(placeholder) {
            names.insert(placeholder.to_owned(), name.to_owned());
        }
    }
    Some(names)
}

/// Maps an SDK error onto the port's error, keeping the SDK error as source
/// so that a log shows the request id and the service's message.
fn classify<E>(err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => StoreError::Throttled(Box::new(err)),
        _ => StoreError::Unavailable(Box::new(err)),
    }
}

#[async_trait]
impl ItemGet for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table))]
    async fn get(&self, key: &ItemKey) -> StoreResult<Option<Stored>> {
        key.check()?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            // Reads that precede a conditional write must see the last write.
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(attributes) = out.item else {
            return Ok(None);
        };
        let stored = decode(&attributes)?;
        Ok(stored.item.is_live(self.clock.now()).then_some(stored))
    }
}

#[async_trait]
impl ItemPut for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table))]
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<u64> {
        item.check()?;
        let mut values = HashMap::from([
            (":body".to_owned(), json_to_attribute(&item.body)),
            (":one".to_owned(), AttributeValue::N("1".into())),
        ]);
        // UpdateItem rather than PutItem: ADD increments the version
        // atomically, whatever the condition.
        let update = match item.expires_at {
            Some(at) => {
                values.insert(":exp".into(), AttributeValue::N(at.as_second().to_string()));
                "SET #body = :body, #exp = :exp ADD #v :one"
            }
            None => "SET #body = :body REMOVE #exp ADD #v :one",
        };
        let condition = self.condition(condition, &mut values);
        let mut names = condition_names(condition).unwrap_or_default();
        names.extend([
            ("#body".to_owned(), BODY.to_owned()),
            ("#exp".to_owned(), EXPIRES_AT.to_owned()),
            ("#v".to_owned(), VERSION.to_owned()),
        ]);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&item.key)))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify)?;
        let attributes = out.attributes.unwrap_or_default();
        number(&attributes, VERSION).ok_or_else(|| StoreError::Corrupt {
            pk: item.key.pk,
            sk: item.key.sk,
            reason: "the update returned no version".into(),
        })
    }
}

#[async_trait]
impl ItemCounter for DynamoStore {
    /// One UpdateItem: `ADD` on the body's `count` is atomic on the server,
    /// and the condition holds the bound, so racing requests never pass it.
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table))]
    async fn add_within(
        &self,
        key: &ItemKey,
        delta: i64,
        max: u64,
        expires_at: Timestamp,
    ) -> StoreResult<Option<u64>> {
        key.check()?;
        if u64::try_from(delta).is_ok_and(|d| d > max) {
            return Ok(None);
        }
        let n = |v: i128| AttributeValue::N(v.to_string());
        let mut values = HashMap::from([
            (":delta".to_owned(), n(delta.into())),
            (":one".to_owned(), n(1)),
            (":exp".to_owned(), n(expires_at.as_second().into())),
            (":empty".to_owned(), AttributeValue::M(HashMap::new())),
        ]);
        // The count is a top-level attribute beside an empty body: ADD takes
        // no nested path, and a nested SET fails while the body is missing.
        let condition = if delta >= 0 {
            values.insert(":room".into(), n(i128::from(max) - i128::from(delta)));
            "attribute_not_exists(#count) OR #count <= :room"
        } else {
            values.insert(":need".into(), n(-i128::from(delta)));
            "#count >= :need"
        };
        let names = HashMap::from([
            ("#body".to_owned(), BODY.to_owned()),
            ("#count".to_owned(), COUNT.to_owned()),
            ("#exp".to_owned(), EXPIRES_AT.to_owned()),
            ("#v".to_owned(), VERSION.to_owned()),
        ]);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            .update_expression(
                "SET #body = if_not_exists(#body, :empty), #exp = if_not_exists(#exp, :exp) \
                 ADD #count :delta, #v :one",
            )
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let attributes = out.attributes.unwrap_or_default();
                let count = number(&attributes, COUNT).ok_or_else(|| StoreError::Corrupt {
                    pk: key.pk.clone(),
                    sk: key.sk.clone(),
                    reason: "the update returned no count".into(),
                })?;
                Ok(Some(count))
            }
            Err(err) => match classify(err) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }
}

#[async_trait]
impl ItemDelete for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table))]
    async fn delete(&self, key: &ItemKey, condition: Condition) -> StoreResult<()> {
        key.check()?;
        let mut values = HashMap::new();
        let expression = self.condition(condition, &mut values);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_names(condition_names(expression))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[async_trait]
impl ItemQuery for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table, pk = %query.pk))]
    async fn query(&self, query: Query) -> StoreResult<Page> {
        let start = query.check()?;
        let limit = query.page_size() as usize;
        let mut names = HashMap::from([
            ("#pk".to_owned(), PK.to_owned()),
            ("#exp".to_owned(), EXPIRES_AT.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":pk".to_owned(), AttributeValue::S(query.pk.clone())),
            (":now".to_owned(), self.now_seconds()),
        ]);
        let key_condition = match &query.range {
            SortKeyRange::All => "#pk = :pk",
            SortKeyRange::Prefix(prefix) => {
                names.insert("#sk".into(), SK.into());
                values.insert(":prefix".into(), AttributeValue::S(prefix.clone()));
                "#pk = :pk AND begins_with(#sk, :prefix)"
            }
            SortKeyRange::Between(from, to) => {
                names.insert("#sk".into(), SK.into());
                values.insert(":from".into(), AttributeValue::S(from.clone()));
                values.insert(":to".into(), AttributeValue::S(to.clone()));
                "#pk = :pk AND #sk BETWEEN :from AND :to"
            }
        };

        let mut items = Vec::with_capacity(limit.min(256));
        let mut exclusive_start = start.as_ref().map(Self::key_map);
        // NB: DynamoDB applies `Limit` before the expiry filter, so a page can
        // come back short; keep reading until the page is full or the
        // partition is exhausted, so callers see the same pages as from memory.
        let more = loop {
            let want = (limit - items.len()) as i32;
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(query.order == Order::Ascending)
                .limit(want)
                .set_exclusive_start_key(exclusive_start.take())
                .send()
                .await
                .map_err(classify)?;
            for attributes in out.items() {
                items.push(decode(attributes)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() < limit => exclusive_start = Some(last),
                Some(_) => break true,
                None => break false,
            }
        };
        let next =
            if more { items.last().map(|s: &Stored| Cursor::after(&s.item.key)) } else { None };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl ItemBatchWrite for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.table, ops = ops.len()))]
    async fn batch_write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        let ops = last_op_per_key(ops);
        let mut requests = Vec::with_capacity(ops.len());
        // Validate the whole batch before sending any chunk of it.
        for op in &ops {
            requests.push(match op {
                WriteOp::Put(item) => {
                    item.check()?;
                    let mut attributes = Self::key_map(&item.key);
                    attributes.insert(BODY.into(), json_to_attribute(&item.body));
                    attributes.insert(VERSION.into(), AttributeValue::N("1".into()));
                    if let Some(at) = item.expires_at {
                        attributes.insert(
                            EXPIRES_AT.into(),
                            AttributeValue::N(at.as_second().to_string()),
                        );
                    }
                    let put = PutRequest::builder()
                        .set_item(Some(attributes))
                        .build()
                        .map_err(build_error)?;
                    WriteRequest::builder().put_request(put).build()
                }
                WriteOp::Delete(key) => {
                    key.check()?;
                    let delete = DeleteRequest::builder()
                        .set_key(Some(Self::key_map(key)))
                        .build()
                        .map_err(build_error)?;
                    WriteRequest::builder().delete_request(delete).build()
                }
            });
        }
        write_all(requests, BATCH_WRITE_MAX, self.retry, |chunk| {
            let client = self.client.clone();
            let table = self.table.clone();
            async move {
                let out = client
                    .batch_write_item()
                    .request_items(&table, chunk)
                    .send()
                    .await
                    .map_err(classify)?;
                Ok(out
                    .unprocessed_items
                    .and_then(|mut by_table| by_table.remove(&table))
                    .unwrap_or_default())
            }
        })
        .await
    }
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Creates the table with the layout this adapter expects (on-demand, TTL on
/// `expiresAt`) and waits until it is usable. For tests and the local server;
/// in AWS the SAM template owns the table.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(build_error)
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .send()
        .await
        .map_err(classify)?;
    for _ in 0..100 {
        let described = client.describe_table().table_name(table).send().await.map_err(classify)?;
        let active = described
            .table
            .and_then(|t| t.table_status)
            .is_some_and(|s| s == aws_sdk_dynamodb::types::TableStatus::Active);
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}

fn number(attributes: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    attributes.get(name)?.as_n().ok()?.parse().ok()
}

fn decode(attributes: &HashMap<String, AttributeValue>) -> StoreResult<Stored> {
    let text = |name: &str| attributes.get(name).and_then(|v| v.as_s().ok()).cloned();
    let pk = text(PK).unwrap_or_default();
    let sk = text(SK).unwrap_or_default();
    let corrupt = |reason: String| StoreError::Corrupt { pk: pk.clone(), sk: sk.clone(), reason };
    if pk.is_empty() || sk.is_empty() {
        return Err(corrupt("no string key".into()));
    }
    let body = match attributes.get(BODY) {
        Some(value) => attribute_to_json(value).map_err(corrupt)?,
        None => return Err(corrupt("no body".into())),
    };
    let version = number(attributes, VERSION).ok_or_else(|| corrupt("no version".into()))?;
    let expires_at = match attributes.get(EXPIRES_AT) {
        None => None,
        Some(value) => {
            let seconds: i64 = value
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("expiresAt is not a whole number".into()))?;
            Some(Timestamp::from_second(seconds).map_err(|e| corrupt(e.to_string()))?)
        }
    };
    Ok(Stored { item: Item { key: ItemKey { pk, sk }, body, expires_at }, version })
}

/// JSON → DynamoDB's native types, so items stay readable in the console.
pub fn json_to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(json_to_attribute).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), json_to_attribute(v))).collect())
        }
    }
}

pub fn attribute_to_json(value: &AttributeValue) -> Result<Value, String> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => parse_number(n)?,
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(values) => {
            Value::Array(values.iter().map(attribute_to_json).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), attribute_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        AttributeValue::Ss(values) => {
            Value::Array(values.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(values) => {
            Value::Array(values.iter().map(|n| parse_number(n)).collect::<Result<_, _>>()?)
        }
        other => return Err(format!("unsupported attribute type {other:?}")),
    })
}

fn parse_number(n: &str) -> Result<Value, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(Value::from(u));
    }
    n.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("{n:?} is not a JSON number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let value = serde_json::json!({
            "name": "payments", "replicas": 3, "ratio": 0.5, "big": u64::MAX, "neg": -7,
            "ready": true, "none": null, "images": ["a:1", "b:2"], "nested": {"empty": {}, "list": []}
        });
        assert_eq!(attribute_to_json(&json_to_attribute(&value)).unwrap(), value);
    }

    #[test]
    fn items_without_the_written_shape_are_reported_corrupt() {
        let mut attributes = DynamoStore::key_map(&ItemKey::new("p", "s"));
        assert!(matches!(decode(&attributes), Err(StoreError::Corrupt { .. })));
        attributes.insert(BODY.into(), AttributeValue::S("x".into()));
        attributes.insert(VERSION.into(), AttributeValue::N("2".into()));
        attributes.insert(EXPIRES_AT.into(), AttributeValue::S("soon".into()));
        assert!(matches!(decode(&attributes), Err(StoreError::Corrupt { .. })));
        attributes.insert(EXPIRES_AT.into(), AttributeValue::N("1700000000".into()));
        let stored = decode(&attributes).unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(stored.item.expires_at.unwrap().as_second(), 1_700_000_000);
    }
}
