//! S3 on LocalStack through the project's client: bucket, multipart upload, get.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tributary_tests::{aws_config, unique_name};

#[tokio::test]
async fn multipart_put_then_get_returns_the_same_bytes() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = unique_name("smoke");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");

    // Two parts: S3 requires every part but the last to be at least 5 MiB.
    let first: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let second = b"the last part may be small".to_vec();
    let key = "raw/pin/pin+0+0+99.json";
    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("start upload");
    let upload_id = upload.upload_id().expect("an upload id");
    let mut parts = Vec::new();
    for (number, body) in [(1, first.clone()), (2, second.clone())] {
        let part = s3
            .upload_part()
            .bucket(&bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete upload");

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("get object");
    let body = object.body.collect().await.expect("read body").into_bytes();
    let mut expected = first;
    expected.extend_from_slice(&second);
    assert_eq!(body.len(), expected.len());
    assert!(
        body.as_ref() == expected.as_slice(),
        "the object holds exactly the uploaded parts"
    );

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("raw/pin/")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key]);

    s3.delete_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("delete object");
    s3.delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("delete bucket");
}
