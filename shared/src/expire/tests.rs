//! The sweep against a mocked EC2 (`aws-smithy-mocks`): the paths moto cannot produce, such as
//! an image in state `failed`, and the order of the crash-safe steps.

use super::*;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::delete_snapshot::{DeleteSnapshotError, DeleteSnapshotOutput};
use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Image, ImageState, Snapshot, SnapshotState, Tag,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::json;
use std::sync::{Arc, Mutex};

fn now() -> DateTime<Utc> {
    crate::tags::parse_time("2026-11-25T03:00:00Z").unwrap()
}

fn ours(expires: &str) -> Vec<Tag> {
    [
        ("backup:managed-by", "ec2-backup"),
        ("backup:kind", "image"),
        ("backup:source", "i-1"),
        ("backup:created-at", "2026-11-24T03:00:00Z"),
        ("backup:expires-at", expires),
    ]
    .iter()
    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
    .collect()
}

fn image(id: &str, state: ImageState, snapshots: &[&str]) -> Image {
    Image::builder()
        .image_id(id)
        .state(state)
        .set_tags(Some(ours("2026-12-01T03:00:00Z")))
        .set_block_device_mappings(Some(
            snapshots
                .iter()
                .map(|s| {
                    BlockDeviceMapping::builder()
                        .device_name("/dev/xvda")
                        .ebs(EbsBlockDevice::builder().snapshot_id(*s).build())
                        .build()
                })
                .collect(),
        ))
        .build()
}

fn clients(client: Client) -> Clients {
    let home = Region::parse("us-east-1").unwrap();
    Clients::new(home, move |r| Ec2::new(client.clone(), r.clone()))
}

type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

#[tokio::test]
async fn a_failed_image_is_deleted_at_once_in_the_crash_safe_order() {
    // GIVEN a failed image (moto cannot make one) with two snapshots: snap-1 ours and tagged,
    // snap-2 without our tags, and EC2 answering snap-2's delete as already gone
    let log: Log = Arc::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let describe_images = mock!(Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(image("ami-f", ImageState::Failed, &["snap-1", "snap-2"]))
            .build()
    });
    let describe_snapshots = mock!(Client::describe_snapshots).then_output(|| {
        DescribeSnapshotsOutput::builder()
            .snapshots(
                Snapshot::builder()
                    .snapshot_id("snap-1")
                    .state(SnapshotState::Completed)
                    .set_tags(Some(ours("2026-12-01T03:00:00Z")))
                    .build(),
            )
            .build()
    });
    let create_tags = mock!(Client::create_tags).then_compute_output(move |req| {
        let tags: Vec<String> = req
            .tags()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        record(&l1, format!("tag {:?} {}", req.resources(), tags.join(",")));
        CreateTagsOutput::builder().build()
    });
    let deregister = mock!(Client::deregister_image).then_compute_output(move |req| {
        record(&l2, format!("deregister {}", req.image_id().unwrap_or("")));
        DeregisterImageOutput::builder().build()
    });
    let delete_ok = mock!(Client::delete_snapshot)
        .match_requests(|req| req.snapshot_id() == Some("snap-1"))
        .then_compute_output(move |req| {
            record(&l3, format!("delete {}", req.snapshot_id().unwrap_or("")));
            DeleteSnapshotOutput::builder().build()
        });
    let delete_gone = mock!(Client::delete_snapshot)
        .match_requests(|req| req.snapshot_id() == Some("snap-2"))
        .then_error(|| {
            DeleteSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("InvalidSnapshot.NotFound")
                    .build(),
            )
        });
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &describe_images,
            &describe_snapshots,
            &create_tags,
            &deregister,
            &delete_ok,
            &delete_gone
        ]
    );

    // WHEN a sweep runs
    let result = handle(
        &Config::default(),
        &clients(client),
        None,
        &json!({}),
        now(),
    )
    .await
    .expect("nothing failed");

    // THEN the untagged snapshot was tagged first, then the image deregistered, then the
    // snapshots deleted (gone counts as done)
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "tag [\"snap-2\"] backup:managed-by=ec2-backup,backup:expires-at=2026-11-25T03:00:00Z",
            "deregister ami-f",
            "delete snap-1",
        ]
    );
    assert_eq!(delete_gone.num_calls(), 1);
    let home = &result["regions"]["us-east-1"];
    assert_eq!(
        home["deregistered"],
        json!([{"id": "ami-f", "source": "i-1", "reason": "failed"}])
    );
    assert_eq!(
        home["deleted_snapshots"],
        json!([
            {"id": "snap-1", "source": "i-1", "image": "ami-f", "reason": "failed"},
            {"id": "snap-2", "source": "i-1", "image": "ami-f", "reason": "failed"}
        ])
    );
    assert_eq!(home["kept"], json!([]));
    assert_eq!(home["failed"], json!([]));
    assert_eq!(result["dry_run"], json!(false));
}

#[tokio::test]
async fn a_failed_tagging_leaves_the_image_registered_and_is_reported() {
    // GIVEN an expired image whose snapshot lacks our tags, and CreateTags refused
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image("ami-1", ImageState::Available, &["snap-x"]);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let describe_snapshots = mock!(Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let create_tags = mock!(Client::create_tags).then_error(|| {
        aws_sdk_ec2::operation::create_tags::CreateTagsError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("no")
                .build(),
        )
    });
    let deregister =
        mock!(Client::deregister_image).then_output(|| DeregisterImageOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &describe_images,
            &describe_snapshots,
            &create_tags,
            &deregister
        ]
    );
    let config = Config {
        keep_last: 0,
        ..Config::default()
    };

    // WHEN a sweep runs
    let err = handle(&config, &clients(client), None, &json!({}), now())
        .await
        .unwrap_err();

    // THEN nothing was deregistered and the image is reported failed with the AWS code
    assert_eq!(deregister.num_calls(), 0);
    let Error::SomeFailed { failed, result } = err else {
        panic!("{err:?}")
    };
    assert_eq!(failed, 1);
    let result: Value = serde_json::from_str(&result).unwrap();
    let home = &result["regions"]["us-east-1"];
    assert_eq!(home["failed"][0]["id"], "ami-1");
    assert_eq!(home["failed"][0]["code"], "UnauthorizedOperation");
    assert_eq!(home["deregistered"], json!([]));
}

#[test]
fn payloads() {
    let scheduled = json!({"version": "0", "id": "e-1", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-25T03:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {}});
    assert_eq!(
        parse_expire_request(&scheduled).unwrap(),
        ExpireRequest {
            event_id: Some("e-1".into()),
            dry_run: false,
            regions: None
        }
    );
    assert_eq!(
        parse_expire_request(&json!({})).unwrap(),
        ExpireRequest {
            event_id: None,
            dry_run: false,
            regions: None
        }
    );
    assert!(
        parse_expire_request(&json!({"dry_run": true}))
            .unwrap()
            .dry_run
    );
    assert!(
        !parse_expire_request(&json!({"dry_run": false}))
            .unwrap()
            .dry_run
    );
    for (payload, want) in [
        (json!({"dry_run": "yes"}), "dry_run must be true or false"),
        (json!({"force": true}), "unknown fields"),
        (json!([1]), "got [1]"),
        (json!("sweep"), "got \"sweep\""),
        (
            json!({"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {}}),
            "detail-type \"EC2 AMI State Change\"",
        ),
        (json!({"detail-type": "Scheduled Event"}), "does not parse"),
    ] {
        let err = parse_expire_request(&payload).unwrap_err().to_string();
        assert!(err.contains(want), "{payload}: {err}");
        assert!(
            err.contains("Scheduled Event") || err.contains("does not parse"),
            "{err}"
        );
    }
}
