//! Kinesis on LocalStack through the project's client: create, put, get.

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use tributary_tests::{aws_config, unique_name};

#[tokio::test]
async fn create_put_get_delete() {
    let kinesis = tributary_workers::connect::kinesis(&aws_config().await);
    let stream = unique_name("smoke");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");

    let mut status = None;
    for _ in 0..120 {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(&stream)
            .send()
            .await
            .expect("describe");
        status = summary
            .stream_description_summary()
            .map(|s| s.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        status,
        Some(StreamStatus::Active),
        "the stream becomes ACTIVE"
    );

    let records = [
        r#"{"ind":1,"country":"Fiji"}"#,
        r#"{"ind":2,"country":"Peru"}"#,
    ];
    for record in records {
        kinesis
            .put_record()
            .stream_name(&stream)
            .partition_key("user-1")
            .data(Blob::new(record))
            .send()
            .await
            .expect("put record");
    }

    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("list shards");
    let shard_id = shards.shards()[0].shard_id().to_owned();
    let iterator = kinesis
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("shard iterator");
    let got = kinesis
        .get_records()
        .shard_iterator(iterator.shard_iterator().expect("an iterator"))
        .send()
        .await
        .expect("get records");
    let data: Vec<String> = got
        .records()
        .iter()
        .map(|r| String::from_utf8(r.data().as_ref().to_vec()).expect("utf-8"))
        .collect();
    assert_eq!(data, records, "records come back in order, once each");

    kinesis
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .expect("delete stream");
}
