//! The sink's object store on LocalStack S3: a small PUT and a multipart upload under an
//! `s3://bucket/prefix` location, read back byte for byte, listed, and the newest object of a
//! partition found in the listing.

use tributary_tests::{aws_config, unique_name};
use tributary_workers::sink::keys::{Extension, SourcePartition, newest_for_partition};
use tributary_workers::sink::store::{LakeLocation, encode_json_lines, list_keys, put_object};

const MIB: usize = 1024 * 1024;

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .body
        .collect()
        .await
        .expect("the body")
        .to_vec()
}

#[tokio::test]
async fn small_and_multipart_objects_land_in_s3_and_recovery_finds_the_newest() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = unique_name("sink-store");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");

    let location = LakeLocation::parse(&format!("s3://{bucket}/raw/pin/")).expect("a location");
    assert_eq!(location.prefix, "raw/pin");
    let store = location.store.as_ref();
    let pin0 = SourcePartition::new("pin", "0").expect("a partition");
    let threshold = 5 * MIB;

    let records: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!(r#"{{"id":{i},"event":"view"}}"#).into_bytes())
        .collect();
    let small = encode_json_lines(&records, Extension::JsonGzip).expect("gzip");
    let small_key = pin0
        .object_key(
            &location.prefix,
            "dt=2024-02-29",
            0..=999,
            Extension::JsonGzip,
        )
        .expect("a key");
    put_object(store, &small_key, small.clone(), threshold)
        .await
        .expect("a single PUT");

    // 12 MiB with a 5 MiB threshold: three parts (5, 5 and 2 MiB).
    let large: Vec<u8> = (0..12 * MIB).map(|i| (i % 251) as u8).collect();
    let large_key = pin0
        .object_key(
            &location.prefix,
            "dt=2024-03-01",
            1000..=1999,
            Extension::Json,
        )
        .expect("a key");
    put_object(store, &large_key, large.clone().into(), threshold)
        .await
        .expect("a multipart upload");

    assert_eq!(get(&s3, &bucket, &small_key).await, small.to_vec());
    assert_eq!(get(&s3, &bucket, &large_key).await, large);

    // A retried flush overwrites the same key instead of adding an object.
    put_object(store, &large_key, large.clone().into(), threshold)
        .await
        .expect("the multipart upload again");
    assert_eq!(get(&s3, &bucket, &large_key).await, large);

    let keys = list_keys(store, &location.prefix).await.expect("a listing");
    assert_eq!(keys, [small_key.clone(), large_key.clone()]);
    let newest = newest_for_partition(keys.iter().map(String::as_str), "pin", "0")
        .expect("the newest object");
    assert_eq!(newest.key, large_key);
    assert_eq!((newest.first_offset, newest.last_offset), (1000, 1999));
    assert!(newest_for_partition(keys.iter().map(String::as_str), "pin", "1").is_none());
}
