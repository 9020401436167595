//! The sweep against a mocked EC2 (`aws-smithy-mocks`): the paths moto cannot produce, such as
//! an image in state `failed` or a snapshot DeregisterImage could not delete for want of
//! permissions, and the order of the crash-safe steps.

use super::*;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::delete_snapshot::{DeleteSnapshotError, DeleteSnapshotOutput};
use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::{DescribeSnapshotsInput, DescribeSnapshotsOutput};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, DeleteSnapshotReturnCode, EbsBlockDevice, Image, ImageState, Snapshot,
    SnapshotReturnCodes, SnapshotState, Tag,
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

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn snapshot(id: &str, tags: Vec<Tag>) -> Snapshot {
    Snapshot::builder()
        .snapshot_id(id)
        .state(SnapshotState::Completed)
        .set_tags(Some(tags))
        .build()
}

/// The describe by id that checks whose the snapshots an image would claim are (the listing
/// filters on our `P:managed-by` instead).
fn by_id(req: &DescribeSnapshotsInput) -> bool {
    req.filters()
        .iter()
        .any(|f| f.name() == Some("snapshot-id"))
}

fn ids_asked(req: &DescribeSnapshotsInput) -> Vec<String> {
    req.filters()
        .iter()
        .filter(|f| f.name() == Some("snapshot-id"))
        .flat_map(|f| f.values().to_vec())
        .collect()
}

/// What DeregisterImage with DeleteAssociatedSnapshots answers for each snapshot.
fn answered(results: &[(&str, SnapshotReturnCodes)]) -> DeregisterImageOutput {
    DeregisterImageOutput::builder()
        .r#return(true)
        .set_delete_snapshot_results(Some(
            results
                .iter()
                .map(|(id, code)| {
                    DeleteSnapshotReturnCode::builder()
                        .snapshot_id(*id)
                        .return_code(code.clone())
                        .build()
                })
                .collect(),
        ))
        .build()
}

fn keep_none() -> Config {
    Config {
        keep_last: 0,
        ..Config::default()
    }
}

/// The report of an invocation that failed (it carries the whole report).
fn failed_report(err: Error) -> (usize, Value) {
    let Error::SomeFailed { failed, result } = err else {
        panic!("{err:?}")
    };
    (failed, serde_json::from_str(&result).unwrap())
}

type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

#[tokio::test]
async fn a_failed_image_is_deleted_at_once_in_the_crash_safe_order() {
    // GIVEN a failed image (moto cannot make one) with two snapshots: snap-1 ours and tagged,
    // snap-2 with no tag at all (made before tag specifications, say)
    let log: Log = Arc::default();
    let (l0, l1, l2) = (log.clone(), log.clone(), log.clone());
    let describe_images = mock!(Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(image("ami-f", ImageState::Failed, &["snap-1", "snap-2"]))
            .build()
    });
    let listing = mock!(Client::describe_snapshots)
        .match_requests(|req| !by_id(req))
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot("snap-1", ours("2026-12-01T03:00:00Z")))
                .build()
        });
    let whose = mock!(Client::describe_snapshots)
        .match_requests(by_id)
        .then_compute_output(move |req| {
            record(&l0, format!("describe {:?}", ids_asked(req)));
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot("snap-2", vec![]))
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
        record(
            &l2,
            format!(
                "deregister {} delete_associated_snapshots={:?}",
                req.image_id().unwrap_or(""),
                req.delete_associated_snapshots()
            ),
        );
        answered(&[
            ("snap-1", SnapshotReturnCodes::Success),
            ("snap-2", SnapshotReturnCodes::Success),
        ])
    });
    let delete =
        mock!(Client::delete_snapshot).then_output(|| DeleteSnapshotOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &describe_images,
            &listing,
            &whose,
            &create_tags,
            &deregister,
            &delete
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

    // THEN the untagged snapshot was found to be no one else's, tagged ours, and only then the
    // image deregistered together with both snapshots: one call, no DeleteSnapshot
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "describe [\"snap-2\"]",
            "tag [\"snap-2\"] backup:managed-by=ec2-backup,backup:expires-at=2026-11-25T03:00:00Z",
            "deregister ami-f delete_associated_snapshots=Some(true)",
        ]
    );
    assert_eq!(delete.num_calls(), 0);
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
async fn each_snapshot_the_one_call_answers_for_is_reported_on_its_own() {
    // GIVEN an expired image of ours with five snapshots, all tagged ours, and DeregisterImage
    // answering: one deleted, one refused for want of permissions, one server error, one
    // skipped (another AMI lists it), and one not answered for at all
    let listed = [
        "snap-ok",
        "snap-perm",
        "snap-err",
        "snap-skip",
        "snap-quiet",
    ];
    let describe_images = mock!(Client::describe_images).then_output(move || {
        let mut i = image("ami-1", ImageState::Available, &listed);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots).then_output(move || {
        DescribeSnapshotsOutput::builder()
            .set_snapshots(Some(
                listed
                    .iter()
                    .map(|s| snapshot(s, ours("2026-11-20T03:00:00Z")))
                    .collect(),
            ))
            .build()
    });
    let deregister = mock!(Client::deregister_image)
        .match_requests(|req| req.delete_associated_snapshots() == Some(true))
        .then_output(|| {
            answered(&[
                ("snap-ok", SnapshotReturnCodes::Success),
                ("snap-perm", SnapshotReturnCodes::ErrorMissingPermissions),
                ("snap-err", SnapshotReturnCodes::ErrorCodeInternalError),
                ("snap-skip", SnapshotReturnCodes::WarnSkipped),
            ])
        });
    let delete = mock!(Client::delete_snapshot)
        .match_requests(|req| req.snapshot_id() == Some("snap-quiet"))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe_images, &listing, &deregister, &delete]
    );

    // WHEN a sweep runs
    let err = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .unwrap_err();

    // THEN the image is gone; each snapshot is reported as EC2 answered for it, the one it did
    // not answer for is deleted on its own, and the invocation fails for the two it could not
    // delete (ours and expired: the next run deletes them as orphans)
    let (failed, result) = failed_report(err);
    assert_eq!(failed, 2);
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!(delete.num_calls(), 1);
    let home = &result["regions"]["us-east-1"];
    assert_eq!(
        home["deregistered"],
        json!([{"id": "ami-1", "source": "i-1", "reason": "expired"}])
    );
    assert_eq!(
        home["deleted_snapshots"],
        json!([
            {"id": "snap-ok", "source": "i-1", "image": "ami-1", "reason": "expired"},
            {"id": "snap-quiet", "source": "i-1", "image": "ami-1", "reason": "expired"}
        ])
    );
    assert_eq!(
        home["kept"],
        json!([{"id": "snap-skip", "source": "i-1", "reason": "in-use"}])
    );
    let failures: Vec<(&str, &str)> = home["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failures,
        [
            ("snap-err", "internal-error"),
            ("snap-perm", "missing-permissions")
        ]
    );
    assert!(
        home["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ami-1 was deregistered but its snapshot snap-err was not deleted"),
        "{home}"
    );
}

#[tokio::test]
async fn an_image_already_gone_has_its_snapshots_deleted_one_by_one() {
    // GIVEN an expired image of ours with two snapshots, deregistered by someone else just
    // before the one call, and one of its snapshots already gone too
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image("ami-1", ImageState::Available, &["snap-1", "snap-2"]);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots).then_output(|| {
        DescribeSnapshotsOutput::builder()
            .snapshots(snapshot("snap-1", ours("2026-11-20T03:00:00Z")))
            .snapshots(snapshot("snap-2", ours("2026-11-20T03:00:00Z")))
            .build()
    });
    let deregister = mock!(Client::deregister_image).then_error(|| {
        aws_sdk_ec2::operation::deregister_image::DeregisterImageError::generic(
            ErrorMetadata::builder()
                .code("InvalidAMIID.NotFound")
                .build(),
        )
    });
    let delete_ok = mock!(Client::delete_snapshot)
        .match_requests(|req| req.snapshot_id() == Some("snap-1"))
        .then_output(|| DeleteSnapshotOutput::builder().build());
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
            &listing,
            &deregister,
            &delete_ok,
            &delete_gone
        ]
    );

    // WHEN a sweep runs
    let result = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .expect("nothing failed");

    // THEN the image counts as deregistered, and each snapshot is deleted on its own (gone
    // counts as done)
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!((delete_ok.num_calls(), delete_gone.num_calls()), (1, 1));
    let home = &result["regions"]["us-east-1"];
    assert_eq!(ids(home, "deregistered"), ["ami-1"]);
    assert_eq!(ids(home, "deleted_snapshots"), ["snap-1", "snap-2"]);
    assert_eq!(home["failed"], json!([]));
}

#[tokio::test]
async fn an_image_with_a_held_snapshot_is_deregistered_alone_then_its_other_snapshots_deleted() {
    // GIVEN an expired image of ours with two snapshots, one of them on hold
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image("ami-1", ImageState::Available, &["snap-a", "snap-held"]);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots).then_output(|| {
        let mut held = ours("2026-11-20T03:00:00Z");
        held.push(tag("backup:hold", "true"));
        DescribeSnapshotsOutput::builder()
            .snapshots(snapshot("snap-a", ours("2026-11-20T03:00:00Z")))
            .snapshots(snapshot("snap-held", held))
            .build()
    });
    let deregister = mock!(Client::deregister_image)
        .match_requests(|req| req.delete_associated_snapshots().is_none())
        .then_output(|| DeregisterImageOutput::builder().r#return(true).build());
    let delete = mock!(Client::delete_snapshot)
        .match_requests(|req| req.snapshot_id() == Some("snap-a"))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe_images, &listing, &deregister, &delete]
    );

    // WHEN a sweep runs
    let result = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .expect("nothing failed");

    // THEN DeleteAssociatedSnapshots was not used (it would delete the held snapshot too): the
    // image went alone, then its other snapshot; the held one stays
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!(delete.num_calls(), 1);
    let home = &result["regions"]["us-east-1"];
    assert_eq!(
        home["deleted_snapshots"],
        json!([{"id": "snap-a", "source": "i-1", "image": "ami-1", "reason": "expired"}])
    );
    assert_eq!(
        home["kept"],
        json!([{"id": "snap-held", "source": "i-1", "reason": "hold"}])
    );
}

#[tokio::test]
async fn a_snapshot_someone_else_manages_is_neither_claimed_nor_deleted() {
    // GIVEN an expired image of ours whose two snapshots carry no tag of ours: one none at
    // all, the other another deployment's P:managed-by
    let log: Log = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image(
            "ami-1",
            ImageState::Available,
            &["snap-bare", "snap-theirs"],
        );
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots)
        .match_requests(|req| !by_id(req))
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let whose = mock!(Client::describe_snapshots)
        .match_requests(by_id)
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot("snap-bare", vec![]))
                .snapshots(snapshot(
                    "snap-theirs",
                    vec![tag("backup:managed-by", "team-b")],
                ))
                .build()
        });
    let create_tags = mock!(Client::create_tags).then_compute_output(move |req| {
        record(&l1, format!("tag {:?}", req.resources()));
        CreateTagsOutput::builder().build()
    });
    let deregister =
        mock!(Client::deregister_image).then_output(|| DeregisterImageOutput::builder().build());
    let delete = mock!(Client::delete_snapshot).then_compute_output(move |req| {
        record(&l2, format!("delete {}", req.snapshot_id().unwrap_or("")));
        DeleteSnapshotOutput::builder().build()
    });
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &describe_images,
            &listing,
            &whose,
            &create_tags,
            &deregister,
            &delete
        ]
    );

    // WHEN a sweep runs
    let result = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .expect("nothing failed");

    // THEN only the untagged snapshot was claimed and deleted; the image went alone (not in one
    // call: that would delete the other deployment's snapshot too); theirs is not even reported
    let log = log.lock().unwrap().clone();
    assert_eq!(log, ["tag [\"snap-bare\"]", "delete snap-bare"]);
    assert_eq!(
        deregister.num_calls(),
        1,
        "deregistered without DeleteAssociatedSnapshots"
    );
    let home = &result["regions"]["us-east-1"];
    assert_eq!(ids(home, "deregistered"), ["ami-1"]);
    assert_eq!(ids(home, "deleted_snapshots"), ["snap-bare"]);
    assert_eq!(home["kept"], json!([]));
}

fn ids(region: &Value, list: &str) -> Vec<String> {
    region[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_image_whose_snapshots_cannot_be_told_apart_stays_registered() {
    // GIVEN an expired image of ours whose snapshot carries no tag of ours, and the describe
    // that tells whose it is refused
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image("ami-1", ImageState::Available, &["snap-x"]);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots)
        .match_requests(|req| !by_id(req))
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let whose = mock!(Client::describe_snapshots)
        .match_requests(by_id)
        .then_error(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsError::generic(
                ErrorMetadata::builder().code("InternalError").build(),
            )
        });
    let create_tags =
        mock!(Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let deregister =
        mock!(Client::deregister_image).then_output(|| DeregisterImageOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &describe_images,
            &listing,
            &whose,
            &create_tags,
            &deregister
        ]
    );

    // WHEN a sweep runs
    let err = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .unwrap_err();

    // THEN nothing was tagged or deregistered, and the image is reported failed
    assert_eq!(create_tags.num_calls(), 0);
    assert_eq!(deregister.num_calls(), 0);
    let (failed, result) = failed_report(err);
    assert_eq!(failed, 1);
    let home = &result["regions"]["us-east-1"];
    assert_eq!(home["failed"][0]["id"], "ami-1");
    assert_eq!(home["failed"][0]["code"], "InternalError");
}

#[tokio::test]
async fn a_failed_tagging_leaves_the_image_registered_and_is_reported() {
    // GIVEN an expired image whose snapshot lacks our tags (and is no one else's), and
    // CreateTags refused
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let mut i = image("ami-1", ImageState::Available, &["snap-x"]);
        i.tags = Some(ours("2026-11-20T03:00:00Z"));
        DescribeImagesOutput::builder().images(i).build()
    });
    let listing = mock!(Client::describe_snapshots)
        .match_requests(|req| !by_id(req))
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let whose = mock!(Client::describe_snapshots)
        .match_requests(by_id)
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot("snap-x", vec![]))
                .build()
        });
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
            &listing,
            &whose,
            &create_tags,
            &deregister
        ]
    );

    // WHEN a sweep runs
    let err = handle(&keep_none(), &clients(client), None, &json!({}), now())
        .await
        .unwrap_err();

    // THEN nothing was deregistered and the image is reported failed with the AWS code
    assert_eq!(deregister.num_calls(), 0);
    let (failed, result) = failed_report(err);
    assert_eq!(failed, 1);
    let home = &result["regions"]["us-east-1"];
    assert_eq!(home["failed"][0]["id"], "ami-1");
    assert_eq!(home["failed"][0]["code"], "UnauthorizedOperation");
    assert_eq!(home["deregistered"], json!([]));
}

#[tokio::test]
async fn the_one_call_is_paced_on_deregister_images_bucket_and_takes_no_delete_snapshot_token() {
    // GIVEN three expired images of two snapshots each, DeregisterImage paced at 2 a second
    // after a burst of 1, DeleteSnapshot at one token per 1,000 s, and 2.75 s to go (a 2 s
    // margin)
    let describe_images = mock!(Client::describe_images).then_output(|| {
        let images = (1..=3).map(|n| {
            let mut i = image(
                &format!("ami-{n}"),
                ImageState::Available,
                &[&format!("snap-{n}a"), &format!("snap-{n}b")],
            );
            i.tags = Some(ours("2026-11-20T03:00:00Z"));
            i
        });
        DescribeImagesOutput::builder()
            .set_images(Some(images.collect()))
            .build()
    });
    let listing = mock!(Client::describe_snapshots).then_output(|| {
        let snapshots = (1..=3).flat_map(|n| {
            ["a", "b"].map(|x| snapshot(&format!("snap-{n}{x}"), ours("2026-11-20T03:00:00Z")))
        });
        DescribeSnapshotsOutput::builder()
            .set_snapshots(Some(snapshots.collect()))
            .build()
    });
    let deregister = mock!(Client::deregister_image).then_compute_output(|req| {
        let id = req.image_id().unwrap_or("").replace("ami-", "snap-");
        answered(&[
            (&format!("{id}a"), SnapshotReturnCodes::Success),
            (&format!("{id}b"), SnapshotReturnCodes::Success),
        ])
    });
    let delete =
        mock!(Client::delete_snapshot).then_output(|| DeleteSnapshotOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe_images, &listing, &deregister, &delete]
    );
    let limits =
        crate::pacing::RateLimits::parse("DeregisterImage=2/1,DeleteSnapshot=0.001/1").unwrap();
    let home = Region::parse("us-east-1").unwrap();
    let clients = Clients::new(home, move |r| {
        Ec2::new(client.clone(), r.clone()).paced(&limits)
    });
    let t0 = std::time::Instant::now();
    let deadline = crate::pacing::Deadline::new(t0 + std::time::Duration::from_millis(2750), t0);

    // WHEN a sweep runs
    let result = handle(
        &keep_none(),
        &clients.until(deadline),
        None,
        &json!({}),
        now(),
    )
    .await
    .expect("nothing failed");

    // THEN the first two images went at 0 s and 0.5 s, each with its two snapshots in its one
    // call; the third, due at 1 s, could only leave within the margin and is left for the next
    // run. DeleteSnapshot's bucket was never drawn on (a second token would take 1,000 s)
    let home = &result["regions"]["us-east-1"];
    assert_eq!(ids(home, "deregistered"), ["ami-1", "ami-2"], "{home}");
    assert_eq!(ids(home, "deleted_snapshots").len(), 4, "{home}");
    assert_eq!(home["remaining"], 1, "{home}");
    assert_eq!(deregister.num_calls(), 2);
    assert_eq!(delete.num_calls(), 0);
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
            regions: None,
            attempt: 0
        }
    );
    assert_eq!(
        parse_expire_request(&json!({})).unwrap(),
        ExpireRequest {
            event_id: None,
            dry_run: false,
            regions: None,
            attempt: 0
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

#[test]
fn a_continuation_sweeps_each_region_it_names_once_and_must_name_one() {
    let r = |name: &str| Region::parse(name).unwrap();
    let work = ExpireWork {
        regions: vec![r("us-west-2"), r("us-east-1"), r("us-west-2")],
        attempt: 3,
    };
    let checked = work.check().unwrap();
    assert_eq!(checked.regions, vec![r("us-west-2"), r("us-east-1")]);
    assert_eq!(checked.attempt, 3);
    let none = ExpireWork {
        regions: Vec::new(),
        attempt: 0,
    };
    let err = none.check().unwrap_err().to_string();
    assert!(err.contains("naming no region"), "{err}");
}
