//! create-image against the moto server: which instances get an AMI, with which tags, and how
//! duplicates, bad input and failures are reported.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::create::ResourceKind::Instance;
use shared::tags::{format_time, parse_time};

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T03:00:00Z").unwrap()
}

/// The moto server for one test, its EC2 stamps (see [`Moto::set_clock`]) a day after `now()`:
/// after every instant these tests make a backup at, as AWS stamps a backup a little after the
/// `P:created-at` its function wrote. Then the tests pass whatever the machine's clock says.
async fn start() -> Moto {
    let moto = Moto::start().await;
    moto.set_clock(now() + TimeDelta::days(1));
    moto
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

async fn sweep(moto: &Moto, config: &Config, at: DateTime<Utc>) -> Value {
    handle(Instance, config, &moto.ec2(HOME), &scheduled_at(at), at)
        .await
        .expect("sweep succeeds")
}

async fn managed_images(moto: &Moto) -> Vec<aws_sdk_ec2::types::Image> {
    moto.images(HOME)
        .await
        .into_iter()
        .filter(|i| {
            tag_map(i.tags())
                .get("backup:managed-by")
                .map(String::as_str)
                == Some("ec2-backup")
        })
        .collect()
}

#[tokio::test]
async fn a_sweep_backs_up_opted_in_running_and_stopped_instances_only() {
    // GIVEN tagged instances running and stopped, with different spellings of the key,
    // and instances that do not opt in
    let moto = start().await;
    let web = moto
        .instance(
            HOME,
            &[("Backup", "true"), ("Name", "web-01"), ("CostCenter", "42")],
            1,
        )
        .await;
    let stopped = moto.instance(HOME, &[("backup", "YES")], 0).await;
    moto.stop(HOME, &stopped).await;
    let declined = moto.instance(HOME, &[("Backup", "false")], 0).await;
    let _untagged = moto.instance(HOME, &[("Name", "scratch")], 0).await;
    let gone = moto.instance(HOME, &[("Backup", "true")], 0).await;
    moto.terminate(HOME, &gone).await;

    // WHEN the schedule fires
    let report = sweep(&moto, &config(), now()).await;

    // THEN exactly the opted-in running and stopped instances have an AMI
    let mut expected = vec![web.clone(), stopped.clone()];
    expected.sort();
    assert_eq!(sources(&report, "created"), expected);
    assert_eq!(sources(&report, "skipped"), vec![declined.clone()]);
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not opt in")
    );
    assert_eq!(report["failed"], json!([]));

    let images = managed_images(&moto).await;
    assert_eq!(images.len(), 2);
    let image = images
        .iter()
        .find(|i| tag_map(i.tags())["backup:source"] == web)
        .expect("AMI of web-01");
    assert_eq!(
        image.name().unwrap(),
        format!("web-01-{web}-20261125T0300Z")
    );
    let tags = tag_map(image.tags());
    let want = [
        ("backup:managed-by", "ec2-backup"),
        ("backup:kind", "image"),
        ("backup:source", web.as_str()),
        ("backup:source-region", HOME),
        ("backup:created-at", "2026-11-25T03:00:00Z"),
        ("backup:expires-at", "2026-12-02T03:00:00Z"),
        ("backup:copy-to", DR),
        ("backup:copy-retention", "7d"),
        ("Name", "web-01"),
        ("CostCenter", "42"),
    ];
    for (k, v) in want {
        assert_eq!(
            tags.get(k).map(String::as_str),
            Some(v),
            "tag {k} of {tags:?}"
        );
    }
    assert!(
        !tags.contains_key("Backup"),
        "the opt-in tag is not carried: {tags:?}"
    );

    // The image's snapshots (root and data volume) carry the same tags, from the same call.
    let snapshot_ids: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    assert_eq!(snapshot_ids.len(), 2, "one snapshot per volume");
    let snapshots: Vec<_> = moto
        .snapshots(HOME)
        .await
        .into_iter()
        .filter(|s| snapshot_ids.contains(&s.snapshot_id().unwrap().to_string()))
        .collect();
    assert_eq!(
        snapshots.len(),
        2,
        "the image's snapshots are listed: {snapshot_ids:?}"
    );
    for snapshot in &snapshots {
        let st = tag_map(snapshot.tags());
        assert_eq!(st.get("backup:source"), Some(&web));
        assert_eq!(
            st.get("backup:expires-at").map(String::as_str),
            Some("2026-12-02T03:00:00Z")
        );
    }

    // The source instance is never tagged by us (a Tag Change event would fire again).
    let source_tags = moto.instance_tags(HOME, &web).await;
    assert_eq!(source_tags.len(), 3, "{source_tags:?}");
}

#[tokio::test]
async fn a_sweep_costs_a_few_paginated_describes_and_one_call_per_backup() {
    // GIVEN 12 opted-in instances, read in pages of 5 (EC2's smallest page)
    let moto = start().await;
    for _ in 0..12 {
        moto.instance(HOME, &[("Backup", "on")], 0).await;
    }
    let ec2 = moto.ec2(HOME).with_page_size(5);
    moto.reset_calls();

    // WHEN the schedule fires twice
    let first = handle(
        Instance,
        &config(),
        &ec2,
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await
    .unwrap();
    let calls = moto.calls_in(HOME);

    // THEN every page was read, each backup cost one CreateImage, and no CreateTags was needed
    assert_eq!(first["created"].as_array().unwrap().len(), 12);
    assert_eq!(calls.get("DescribeInstances"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("DescribeImages"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("CreateImage"), Some(&12), "{calls:?}");
    assert_eq!(calls.get("CreateTags"), None, "{calls:?}");
    moto.assert_calls_allowed("create-image");

    // AND the second sweep sees all 12 AMIs across 3 pages of DescribeImages, and makes none
    moto.reset_calls();
    let second = handle(
        Instance,
        &config(),
        &ec2,
        &event("scheduled-event.json", &[]),
        now() + TimeDelta::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(second["created"], json!([]));
    assert_eq!(second["skipped"].as_array().unwrap().len(), 12);
    let calls = moto.calls_in(HOME);
    assert_eq!(calls.get("DescribeImages"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("CreateImage"), None, "{calls:?}");
}

#[tokio::test]
async fn the_interval_decides_when_the_next_sweep_backs_up_again() {
    let moto = start().await;
    let daily = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let hourly = moto
        .instance(HOME, &[("Backup", "true"), ("backup:interval", "1h")], 0)
        .await;
    sweep(&moto, &config(), now()).await;

    // Two hours later only the hourly instance is due.
    let later = sweep(&moto, &config(), now() + TimeDelta::hours(2)).await;
    assert_eq!(sources(&later, "created"), vec![hourly.clone()]);
    assert_eq!(sources(&later, "skipped"), vec![daily.clone()]);
    assert!(
        later["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("younger than the 1d interval"),
        "{later}"
    );

    // Moving the daily backup's clock back a day (as if made yesterday) makes it due.
    let image = managed_images(&moto)
        .await
        .into_iter()
        .find(|i| tag_map(i.tags())["backup:source"] == daily)
        .unwrap();
    moto.set_tags(
        HOME,
        image.image_id().unwrap(),
        &[(
            "backup:created-at",
            &format_time(now() - TimeDelta::hours(23)),
        )],
    )
    .await;
    let next = sweep(&moto, &config(), now() + TimeDelta::hours(2)).await;
    assert_eq!(sources(&next, "created"), vec![daily]);
}

#[tokio::test]
async fn a_tag_change_backs_up_at_once_and_a_duplicate_event_makes_no_second_ami() {
    let moto = start().await;
    let id = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let e = event("tag-change-instance.json", &[("i-0123456789abcdef0", &id)]);
    let ec2 = moto.ec2(HOME);

    let first = handle(Instance, &config(), &ec2, &e, now()).await.unwrap();
    assert_eq!(sources(&first, "created"), vec![id.clone()]);

    // The same event delivered again, and a schedule at the same moment.
    let again = handle(Instance, &config(), &ec2, &e, now() + TimeDelta::seconds(2))
        .await
        .unwrap();
    let schedule = sweep(&moto, &config(), now() + TimeDelta::seconds(3)).await;
    assert_eq!(again["created"], json!([]));
    assert_eq!(schedule["created"], json!([]));
    assert_eq!(sources(&again, "skipped"), vec![id.clone()]);
    assert_eq!(managed_images(&moto).await.len(), 1);
}

#[tokio::test]
async fn racing_invocations_in_the_same_minute_make_one_ami() {
    // Two invocations that both looked before either created: the AMI name (which holds the
    // minute) is taken by the first, and the second reports a skip, not a failure.
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let payload = json!({"instance_ids": [id]});
    let ec2 = moto.ec2(HOME);
    let config = config();
    let (a, b) = tokio::join!(
        handle(Instance, &config, &ec2, &payload, now()),
        handle(
            Instance,
            &config,
            &ec2,
            &payload,
            now() + TimeDelta::seconds(20)
        ),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let created = a["created"].as_array().unwrap().len() + b["created"].as_array().unwrap().len();
    assert_eq!(created, 1, "{a} {b}");
    let skipped = [&a, &b]
        .iter()
        .flat_map(|r| r["skipped"].as_array().unwrap().clone())
        .collect::<Vec<_>>();
    // Whichever way the two interleave: the name collides, or the second sees the first's AMI.
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("already exists") || reason.contains("already made by this request"),
        "{skipped:?}"
    );
    assert_eq!(managed_images(&moto).await.len(), 1);
}

#[tokio::test]
async fn the_same_event_racing_itself_a_minute_apart_makes_one_ami() {
    // Two deliveries of one Tag Change, handled at once on different minutes of the clock: the
    // AMI name carries the event's own time, so the second collides even when neither saw the
    // other's AMI.
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let e = event("tag-change-instance.json", &[("i-0123456789abcdef0", &id)]);
    let ec2 = moto.ec2(HOME);
    let config = config();
    let (a, b) = tokio::join!(
        handle(Instance, &config, &ec2, &e, now()),
        handle(Instance, &config, &ec2, &e, now() + TimeDelta::seconds(90)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let created = a["created"].as_array().unwrap().len() + b["created"].as_array().unwrap().len();
    assert_eq!(created, 1, "{a} {b}");
    let images = managed_images(&moto).await;
    assert_eq!(images.len(), 1);
    assert!(
        images[0].name().unwrap().ends_with("-20261125T0258Z"),
        "{:?}",
        images[0].name()
    );
}

#[tokio::test]
async fn a_tag_change_that_opts_out_does_nothing() {
    let moto = start().await;
    let id = moto
        .instance(HOME, &[("Name", "web-01"), ("backup:retention", "14d")], 0)
        .await;
    let e = event(
        "tag-change-instance-removed.json",
        &[("i-0123456789abcdef0", &id)],
    );
    let report = handle(Instance, &config(), &moto.ec2(HOME), &e, now())
        .await
        .unwrap();
    assert_eq!(report["created"], json!([]));
    assert_eq!(sources(&report, "skipped"), vec![id]);
    assert_eq!(report["skipped"][0]["reason"], "no backup tag");
    assert!(managed_images(&moto).await.is_empty());
}

#[tokio::test]
async fn a_tag_change_from_another_region_is_skipped() {
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let e = event(
        "tag-change-instance.json",
        &[
            ("i-0123456789abcdef0", &id),
            ("\"region\": \"us-east-1\"", "\"region\": \"eu-west-1\""),
        ],
    );
    let report = handle(Instance, &config(), &moto.ec2(HOME), &e, now())
        .await
        .unwrap();
    assert_eq!(report["created"], json!([]));
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("eu-west-1")
    );
}

#[tokio::test]
async fn on_demand_ignores_the_interval_but_not_the_opt_in() {
    let moto = start().await;
    let tagged = moto.instance(HOME, &[("Backup", "1")], 0).await;
    let untagged = moto.instance(HOME, &[], 0).await;
    sweep(&moto, &config(), now()).await;

    let payload = json!({"instance_ids": [tagged, untagged]});
    let report = handle(
        Instance,
        &config(),
        &moto.ec2(HOME),
        &payload,
        now() + TimeDelta::minutes(5),
    )
    .await
    .unwrap();
    assert_eq!(sources(&report, "created"), vec![tagged]);
    assert_eq!(sources(&report, "skipped"), vec![untagged]);
    assert_eq!(managed_images(&moto).await.len(), 2);
}

#[tokio::test]
async fn a_missing_instance_fails_alone_and_the_invocation_reports_everything() {
    let moto = start().await;
    let tagged = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let payload = json!({"instance_ids": [tagged, "i-0000000000000dead"]});
    let err = handle(Instance, &config(), &moto.ec2(HOME), &payload, now())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("1 of the resources failed"),
        "{message}"
    );
    assert!(
        message.contains("i-0000000000000dead was not found in us-east-1"),
        "{message}"
    );
    assert!(
        message.contains(&format!("\"source\":\"{tagged}\"")),
        "the created one is reported too: {message}"
    );
    assert_eq!(managed_images(&moto).await.len(), 1);

    // Lambda retries the failed invocation whole, a minute later and with the same request id:
    // the instance that was backed up is not backed up again.
    let err = handle(
        Instance,
        &config(),
        &moto.ec2(HOME),
        &payload,
        now() + TimeDelta::minutes(1),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("already made by this request"),
        "{err}"
    );
    assert_eq!(managed_images(&moto).await.len(), 1);
}

#[tokio::test]
async fn on_demand_right_after_a_sweep_backs_up_now_and_only_its_own_retry_reuses() {
    // GIVEN an instance the schedule backed up a minute ago
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    sweep(&moto, &config(), now()).await;
    let payload = json!({"instance_ids": [id]});
    let ec2 = moto.ec2(HOME);

    // WHEN someone asks for a backup of it now
    let asked = shared::create::handle(
        Instance,
        &config(),
        &ec2,
        None,
        &payload,
        "request-a",
        now() + TimeDelta::minutes(1),
    )
    .await
    .unwrap();

    // THEN it is made, tagged with the request that made it
    assert_eq!(sources(&asked, "created"), vec![id.clone()], "{asked}");
    let images = managed_images(&moto).await;
    assert_eq!(images.len(), 2);
    let by_request: Vec<_> = images
        .iter()
        .filter(|i| {
            tag_map(i.tags())
                .get("backup:request-id")
                .map(String::as_str)
                == Some("request-a")
        })
        .collect();
    assert_eq!(by_request.len(), 1, "one backup carries the request id");

    // AND Lambda's retry of that request makes none, but another request a minute later does
    let retry = shared::create::handle(
        Instance,
        &config(),
        &ec2,
        None,
        &payload,
        "request-a",
        now() + TimeDelta::minutes(2),
    )
    .await
    .unwrap();
    assert_eq!(retry["created"], json!([]), "{retry}");
    let other = shared::create::handle(
        Instance,
        &config(),
        &ec2,
        None,
        &payload,
        "request-b",
        now() + TimeDelta::minutes(3),
    )
    .await
    .unwrap();
    assert_eq!(sources(&other, "created"), vec![id]);
    assert_eq!(managed_images(&moto).await.len(), 3);
}

#[tokio::test]
async fn on_demand_in_the_minute_of_a_tag_change_backs_up_and_a_retry_of_the_request_does_not() {
    // GIVEN an instance its Tag Change backed up at 03:00
    let moto = start().await;
    let id = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let e = event(
        "tag-change-instance.json",
        &[
            ("i-0123456789abcdef0", &id),
            ("2026-11-25T02:58:12Z", "2026-11-25T03:00:05Z"),
        ],
    );
    let ec2 = moto.ec2(HOME);
    let tagged = handle(Instance, &config(), &ec2, &e, now()).await.unwrap();
    assert_eq!(sources(&tagged, "created"), vec![id.clone()]);
    let ask = |request_id: &'static str, seconds: i64| {
        let payload = json!({"instance_ids": [id]});
        let ec2 = ec2.clone();
        async move {
            shared::create::handle(
                Instance,
                &config(),
                &ec2,
                None,
                &payload,
                request_id,
                now() + TimeDelta::seconds(seconds),
            )
            .await
            .unwrap()
        }
    };

    // WHEN someone asks for a backup of it in the same minute
    let asked = ask("request-a", 20).await;

    // THEN it is made, named after the request
    assert_eq!(sources(&asked, "created"), vec![id.clone()], "{asked}");
    assert_eq!(
        asked["created"][0]["name"],
        format!("web-01-{id}-20261125T0300Z-request-a")
    );

    // AND a retry of that request, after it or racing itself, makes no second AMI
    let retry = ask("request-a", 30).await;
    assert_eq!(retry["created"], json!([]), "{retry}");
    assert!(
        reasons_of(&retry).contains("already made by this request (request-a)"),
        "{retry}"
    );
    let (b1, b2) = tokio::join!(ask("request-b", 40), ask("request-b", 45));
    let made = b1["created"].as_array().unwrap().len() + b2["created"].as_array().unwrap().len();
    assert_eq!(made, 1, "{b1} {b2}");
    let skipped = if b1["created"] == json!([]) { &b1 } else { &b2 };
    assert!(
        reasons_of(skipped).contains("this request (request-b) already made it")
            || reasons_of(skipped).contains("already made by this request (request-b)"),
        "{skipped}"
    );
    assert_eq!(managed_images(&moto).await.len(), 3);
}

fn reasons_of(report: &Value) -> String {
    report["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["reason"].as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn an_aws_error_on_one_instance_keeps_its_code_and_spares_the_others() {
    let moto = start().await;
    let a = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let b = moto.instance(HOME, &[("Backup", "true")], 0).await;
    moto.fault(json!({"action": "CreateImage", "code": "UnauthorizedOperation", "message": "not allowed", "status": 403, "count": 1}));
    let err = handle(
        Instance,
        &config(),
        &moto.ec2(HOME),
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await
    .unwrap_err();
    let shared::Error::SomeFailed { failed, result } = err else {
        panic!("{err}")
    };
    assert_eq!(failed, 1);
    let report: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(report["failed"][0]["code"], "UnauthorizedOperation");
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("CreateImage in us-east-1 failed")
    );
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    let mut both = vec![
        report["failed"][0]["source"].as_str().unwrap().to_string(),
        report["created"][0]["source"].as_str().unwrap().to_string(),
    ];
    both.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(both, want);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let moto = start().await;
    moto.instance(HOME, &[("Backup", "true")], 0).await;
    moto.fault(json!({"action": "CreateImage", "code": "RequestLimitExceeded", "message": "slow down", "status": 503, "count": 2}));
    let sdk = moto.functions_sdk_config(HOME).await;
    let ec2 = shared::ec2::Ec2::for_region(&sdk, &region(HOME));
    let report = handle(
        Instance,
        &config(),
        &ec2,
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(report["created"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(moto.calls_in(HOME).get("CreateImage"), Some(&3));
}

#[tokio::test]
async fn a_sweep_paced_to_ec2s_bucket_is_never_throttled_and_takes_the_bucket_limited_time() {
    let moto = start().await;
    for _ in 0..12 {
        moto.instance(HOME, &[("Backup", "true")], 0).await;
    }
    // EC2's CreateImage bucket scaled down: 3 at once, then 4 a second; the function takes
    // four fifths of it, as its defaults do of EC2's (the slack absorbs the network's jitter:
    // at the very same rate, a call that arrives early finds the bucket empty).
    moto.set_buckets(json!({"buckets": {"CreateImage": {"burst": 3, "rate": 4}}}));
    let sdk = moto.functions_sdk_config(HOME).await;
    let limits = shared::pacing::RateLimits::parse("CreateImage=3.2/2").unwrap();
    let ec2 = shared::ec2::Ec2::for_region(&sdk, &region(HOME)).paced(&limits);
    let started = std::time::Instant::now();
    let report = handle(
        Instance,
        &config(),
        &ec2,
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await
    .unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report["created"].as_array().unwrap().len(), 12, "{report}");
    assert_eq!(
        moto.throttled(HOME).get("CreateImage"),
        None,
        "paced: never throttled"
    );
    assert_eq!(ec2.throttles(), 0);
    assert_eq!(moto.calls_in(HOME).get("CreateImage"), Some(&12));
    // (12 - 2) / 3.2 = 3.1 s at least: the calls left at the function's pace.
    assert!(took >= 3.0, "{took} s");
}

#[tokio::test]
async fn a_sweep_past_its_deadline_starts_no_more_calls_and_the_next_makes_the_rest() {
    let moto = start().await;
    for _ in 0..10 {
        moto.instance(HOME, &[("Backup", "true")], 0).await;
    }
    let limits = shared::pacing::RateLimits::parse("CreateImage=2/1").unwrap();
    let ec2 = moto.ec2(HOME).paced(&limits);
    // 4 s to go: with its 2 s margin, calls may leave during the first 2 s, one every half
    // second.
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(4), t0);
    let first = sweep_with(&ec2.until(deadline), now()).await;
    let made = first["created"].as_array().unwrap().len();
    let remaining = first["remaining"].as_u64().unwrap_or(0) as usize;
    assert!((3..=7).contains(&made), "{first}");
    assert_eq!(made + remaining, 10, "{first}");
    assert_eq!(
        first["failed"],
        json!([]),
        "what did not fit is not a failure"
    );
    assert!(
        t0.elapsed().as_secs_f64() < 4.0,
        "it returned before its deadline"
    );
    // The next schedule (an hour later, no deadline) finds the rest due, and only the rest.
    let second = sweep_with(&ec2, now() + TimeDelta::hours(1)).await;
    assert_eq!(
        second["created"].as_array().unwrap().len(),
        remaining,
        "{second}"
    );
    assert_eq!(second.get("remaining"), None);
    assert_eq!(
        managed_images(&moto).await.len(),
        10,
        "one backup of each, no duplicate"
    );
}

async fn sweep_with(ec2: &shared::ec2::Ec2, at: DateTime<Utc>) -> Value {
    handle(Instance, &config(), ec2, &scheduled_at(at), at)
        .await
        .expect("sweep succeeds")
}

#[tokio::test]
async fn an_unpaced_sweep_into_an_empty_bucket_waits_the_throttling_out_and_counts_it() {
    let moto = start().await;
    for _ in 0..12 {
        moto.instance(HOME, &[("Backup", "true")], 0).await;
    }
    moto.set_buckets(json!({"buckets": {"CreateImage": {"burst": 3, "rate": 4}}}));
    let sdk = moto.functions_sdk_config(HOME).await;
    let ec2 = shared::ec2::Ec2::for_region(&sdk, &region(HOME));
    let report = handle(
        Instance,
        &config(),
        &ec2,
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(report["created"].as_array().unwrap().len(), 12, "{report}");
    assert_eq!(report["failed"], json!([]));
    let throttled = moto
        .throttled(HOME)
        .get("CreateImage")
        .copied()
        .unwrap_or(0);
    assert!(
        throttled > 0,
        "8 calls at once into a bucket of 3 must be throttled"
    );
    // The adapter counted exactly the throttled answers the server sent.
    assert_eq!(ec2.throttles(), throttled);
}

#[tokio::test]
async fn an_invalid_tag_value_warns_and_still_backs_up_with_the_default() {
    let moto = start().await;
    let id = moto
        .instance(
            HOME,
            &[("Backup", "true"), ("backup:retention", "forever")],
            0,
        )
        .await;
    let report = sweep(&moto, &config(), now()).await;
    assert_eq!(sources(&report, "created"), vec![id.clone()]);
    let warning = &report["warnings"][0];
    assert_eq!(warning["resource"], id.as_str());
    assert_eq!(warning["key"], "backup:retention");
    assert_eq!(warning["value"], "forever");
    let image = &managed_images(&moto).await[0];
    assert_eq!(
        tag_map(image.tags())["backup:expires-at"],
        "2026-12-02T03:00:00Z"
    );
}

#[tokio::test]
async fn dry_run_reports_what_it_would_create_and_creates_nothing() {
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let config = Config {
        dry_run: true,
        ..config()
    };
    let report = sweep(&moto, &config, now()).await;
    assert_eq!(report["dry_run"], true);
    assert_eq!(sources(&report, "created"), vec![id]);
    assert_eq!(report["created"][0]["id"], Value::Null);
    assert!(moto.images(HOME).await.is_empty());
    assert_eq!(moto.calls_in(HOME).get("CreateImage"), None);
}

#[tokio::test]
async fn a_malformed_payload_is_an_error_that_says_what_was_expected_and_calls_nothing() {
    let moto = start().await;
    moto.instance(HOME, &[("Backup", "true")], 0).await;
    moto.reset_calls();
    for payload in [
        json!({"instance_id": "i-12345678"}),
        json!([1, 2]),
        json!({"instance_ids": ["vol-12345678"]}),
    ] {
        let err = handle(Instance, &config(), &moto.ec2(HOME), &payload, now())
            .await
            .unwrap_err();
        assert!(matches!(err, shared::Error::Payload(_)), "{err}");
    }
    assert!(moto.calls_in(HOME).is_empty());
}

#[tokio::test]
async fn a_custom_prefix_and_deployment_name_are_written_and_matched() {
    let moto = start().await;
    let id = moto
        .instance(HOME, &[("SNAP", "true"), ("snap:retention", "2w")], 0)
        .await;
    let _other = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let config = Config {
        tag_prefix: "snap".into(),
        deployment_name: "prod".into(),
        ..Config::default()
    };
    let report = sweep(&moto, &config, now()).await;
    assert_eq!(sources(&report, "created"), vec![id]);
    let image = &moto.images(HOME).await[0];
    let tags = tag_map(image.tags());
    assert_eq!(tags["snap:managed-by"], "prod");
    assert_eq!(tags["snap:expires-at"], "2026-12-09T03:00:00Z");
    assert_eq!(tags["snap:copy-to"], "");
}

/// The scheduled event as EventBridge would send it at `at`.
fn scheduled_at(at: DateTime<Utc>) -> Value {
    event(
        "scheduled-event.json",
        &[("2026-11-25T03:00:00Z", &shared::tags::format_time(at))],
    )
}

/// create-image with its work queue, as Lambda runs it: `payload` handled with `ec2`.
async fn handle_queued(
    ec2: &shared::ec2::Ec2,
    queue: &shared::sqs::WorkQueue,
    payload: &Value,
    at: DateTime<Utc>,
) -> Value {
    shared::create::handle(
        Instance,
        &config(),
        ec2,
        Some(queue),
        payload,
        REQUEST_ID,
        at,
    )
    .await
    .expect("an SQS event is answered per record, never failed whole")
}

#[tokio::test]
async fn with_a_work_queue_the_sweep_runs_from_it_and_what_the_deadline_cuts_is_handed_on_and_made_once()
 {
    // GIVEN ten opted-in instances and create-image's FIFO work queue
    let moto = start().await;
    for _ in 0..10 {
        moto.instance(HOME, &[("Backup", "true")], 0).await;
    }
    let queue = moto
        .work_queue("ec2-backup-create-image.fifo", "create-image")
        .await;

    // WHEN the schedule fires, THEN the sweep goes to the queue (one at a time there) and
    // nothing is made yet
    let scheduled = handle_queued(&moto.ec2(HOME), &queue, &scheduled_at(now()), now()).await;
    assert_eq!(scheduled["continuations"], 1, "{scheduled}");
    assert_eq!(scheduled["created"], json!([]));
    assert!(managed_images(&moto).await.is_empty());

    // WHEN the mapping delivers it to an invocation that has 4 s left at 2 CreateImage a second
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1);
    let limits = shared::pacing::RateLimits::parse("CreateImage=2/1").unwrap();
    let ec2 = moto.ec2(HOME).paced(&limits);
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(4), t0);
    let at = now() + TimeDelta::minutes(1);
    let answer = handle_queued(&ec2.until(deadline), &queue, &sqs_event(&queue, &batch), at).await;

    // THEN the record succeeds: some made, the rest handed on in one message
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let first = &answer["records"][0]["result"];
    let made = first["created"].as_array().unwrap().len();
    let remaining = first["remaining"].as_u64().unwrap() as usize;
    assert!((3..=7).contains(&made), "{answer}");
    assert_eq!(made + remaining, 10);
    assert_eq!(first["continuations"], 1, "{answer}");
    moto.settle(&queue, &batch, &answer).await;

    // AND the continuation names exactly the rest, with the schedule's time
    let batch = moto.receive(&queue).await;
    assert_eq!(
        batch.len(),
        1,
        "the swept message was deleted, the continuation is there"
    );
    let body: Value = serde_json::from_str(batch[0].body().unwrap()).unwrap();
    assert_eq!(body["function"], "create-image");
    assert_eq!(body["work"]["origin"], "schedule");
    assert_eq!(body["work"]["time"], "2026-11-25T03:00:00Z");
    assert_eq!(body["work"]["ids"].as_array().unwrap().len(), remaining);
    // And the schedule's event id, so that its logs find the whole chain.
    assert_eq!(body["work"]["event_id"], scheduled_at(now())["id"]);

    // WHEN it is delivered, THEN the rest is made; and delivered again (SQS delivers at least
    // once), nothing more
    let event = sqs_event(&queue, &batch);
    let second = handle_queued(&ec2, &queue, &event, at + TimeDelta::minutes(1)).await;
    assert_eq!(second["batchItemFailures"], json!([]), "{second}");
    assert_eq!(
        second["records"][0]["result"]["created"]
            .as_array()
            .unwrap()
            .len(),
        remaining,
        "{second}"
    );
    let again = handle_queued(&ec2, &queue, &event, at + TimeDelta::minutes(2)).await;
    assert_eq!(
        again["records"][0]["result"]["created"],
        json!([]),
        "{again}"
    );
    assert_eq!(
        again["records"][0]["result"]["skipped"]
            .as_array()
            .unwrap()
            .len(),
        remaining
    );
    let images = managed_images(&moto).await;
    assert_eq!(
        images.len(),
        10,
        "one backup of each instance, no duplicate"
    );
    assert!(
        images
            .iter()
            .all(|i| i.name().unwrap_or_default().ends_with("-20261125T0300Z")),
        "every AMI is named for the schedule's time"
    );
}

#[tokio::test]
async fn a_record_that_is_not_our_continuation_fails_alone_and_says_what_was_expected() {
    // GIVEN a batch of three: a continuation for an instance, a message from another
    // deployment, and one that is not JSON
    let moto = start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let queue = moto
        .work_queue("ec2-backup-create-image.fifo", "create-image")
        .await;
    let work = shared::create::CreateWork {
        origin: shared::create::Origin::TagChange,
        time: Some(now()),
        request_id: None,
        ids: Some(vec![web.clone()]),
        event_id: None,
    };
    let ours = shared::continuation::body(&config(), "create-image", &work).unwrap();
    let theirs = ours.replace("\"ec2-backup\"", "\"other-backup\"");
    // (From a standard queue: on a FIFO one, what follows a failed record is not started.)
    let name = "ec2-backup-work";
    let event = json!({"Records": [
        sqs_record("m-ours", &ours, name),
        sqs_record("m-theirs", &theirs, name),
        sqs_record("m-junk", "{not json", name),
    ]});

    // WHEN delivered
    let answer = handle_queued(&moto.ec2(HOME), &queue, &event, now()).await;

    // THEN only the two strangers are batch item failures (SQS redrives them to the
    // dead-letter queue after a few receives); ours made its backup
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-theirs"}, {"itemIdentifier": "m-junk"}]),
        "{answer}"
    );
    assert_eq!(
        sources(&answer["records"][0]["result"], "created"),
        vec![web]
    );
    for (i, why) in [(1, "deployment \"other-backup\""), (2, "not JSON")] {
        let error = answer["records"][i]["error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
        assert!(
            error.contains("expected a continuation {\"continuation\": 1, \"deployment\": \"ec2-backup\", \"function\": \"create-image\""),
            "{error}"
        );
    }
    assert_eq!(managed_images(&moto).await.len(), 1);
}

#[tokio::test]
async fn a_continuation_whose_instance_is_gone_skips_it_without_failing() {
    let moto = start().await;
    let gone = moto.instance(HOME, &[("Backup", "true")], 0).await;
    moto.terminate(HOME, &gone).await;
    let queue = moto
        .work_queue("ec2-backup-create-image.fifo", "create-image")
        .await;
    let work = shared::create::CreateWork {
        origin: shared::create::Origin::Schedule,
        time: Some(now()),
        request_id: None,
        ids: Some(vec![gone.clone(), "i-0123456789abcdef0".into()]),
        event_id: None,
    };
    let body = shared::continuation::body(&config(), "create-image", &work).unwrap();
    let event = json!({"Records": [sqs_record("m-1", &body, "q.fifo")]});
    let answer = handle_queued(&moto.ec2(HOME), &queue, &event, now()).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let result = &answer["records"][0]["result"];
    assert_eq!(result["failed"], json!([]), "{answer}");
    assert_eq!(
        sources(result, "skipped"),
        sorted(vec![gone, "i-0123456789abcdef0".into()])
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn a_refused_record_is_made_visible_again_at_once_so_it_does_not_hold_up_its_fifo_queue() {
    // GIVEN a message on create-image's FIFO work queue that is not a continuation
    let moto = start().await;
    let queue = moto
        .work_queue("ec2-backup-create-image.fifo", "create-image")
        .await;
    queue
        .send(&["{\"hello\": 1}".to_string()], 0)
        .await
        .unwrap();
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1);

    // WHEN it is delivered (received with a visibility timeout of a minute)
    let answer = handle_queued(&moto.ec2(HOME), &queue, &sqs_event(&queue, &batch), now()).await;
    assert_eq!(
        answer["batchItemFailures"][0]["itemIdentifier"],
        batch[0].message_id().unwrap()
    );

    // THEN it can be received again at once, one receive further on its way to the
    // dead-letter queue, instead of blocking its message group for the visibility timeout
    let again = moto.receive(&queue).await;
    assert_eq!(again.len(), 1, "visible again at once");
    assert_eq!(again[0].message_id(), batch[0].message_id());
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    assert_eq!(
        again[0]
            .attributes()
            .and_then(|a| a.get(&A::ApproximateReceiveCount))
            .map(String::as_str),
        Some("2")
    );
}

#[tokio::test]
async fn with_a_work_queue_a_tag_change_queues_behind_the_sweep_and_is_made_from_there() {
    // GIVEN a tagged instance and create-image's FIFO work queue
    let moto = start().await;
    let id = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let queue = moto
        .work_queue("ec2-backup-create-image.fifo", "create-image")
        .await;

    // WHEN its Tag Change arrives
    let e = event("tag-change-instance.json", &[("i-0123456789abcdef0", &id)]);
    let direct = handle_queued(&moto.ec2(HOME), &queue, &e, now()).await;

    // THEN it goes to the queue, in the sweeps' one message group (never racing a sweep),
    // naming the instance and the event's time
    assert_eq!(direct["continuations"], 1, "{direct}");
    let batch = moto.receive(&queue).await;
    let body: Value = serde_json::from_str(batch[0].body().unwrap()).unwrap();
    assert_eq!(body["work"]["origin"], "tag-change");
    assert_eq!(body["work"]["ids"], json!([id]));
    assert!(body["work"]["time"].is_string(), "{body}");

    // AND delivered, it makes the backup
    let answer = handle_queued(&moto.ec2(HOME), &queue, &sqs_event(&queue, &batch), now()).await;
    assert_eq!(
        sources(&answer["records"][0]["result"], "created"),
        vec![id]
    );
}

#[tokio::test]
async fn work_that_cannot_be_handed_on_is_unfinished_and_names_the_queue() {
    // GIVEN a work queue that does not exist (deleted, or a wrong URL)
    let moto = start().await;
    moto.instance(HOME, &[("Backup", "true")], 0).await;
    let queue = shared::sqs::WorkQueue::from_client(
        moto.sqs(),
        &format!(
            "{}/123456789012/no-such-queue.fifo",
            moto.url().trim_end_matches('/')
        ),
        "create-image",
    );

    // WHEN the schedule fires
    let err = shared::create::handle(
        Instance,
        &config(),
        &moto.ec2(HOME),
        Some(&queue),
        &scheduled_at(now()),
        REQUEST_ID,
        now(),
    )
    .await
    .unwrap_err();

    // THEN the invocation fails as retryable (Lambda tries it again), naming the queue, and
    // counts no backup failed
    let text = err.to_string();
    assert!(
        text.contains("no-such-queue.fifo") && text.contains("not finished"),
        "{text}"
    );
    let diagnostic = shared::lambda::diagnostic(err);
    assert_eq!(diagnostic.error_type, "Retryable.Unfinished");
    assert!(managed_images(&moto).await.is_empty());
}

#[tokio::test]
async fn throttling_that_outlasts_the_deadline_leaves_the_rest_remaining_not_failed() {
    // GIVEN three instances, EC2's CreateImage bucket nearly dry (one call, then one every 20
    // s), an unpaced adapter and 5 s to go
    let moto = start().await;
    for _ in 0..3 {
        moto.instance(HOME, &[("Backup", "true")], 0).await;
    }
    moto.set_buckets(json!({"buckets": {"CreateImage": {"burst": 1, "rate": 0.05}}}));
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(5), t0);
    // WHEN the sweep runs
    let report = sweep_with(&moto.ec2(HOME).until(deadline), now()).await;
    // THEN the throttled calls, waited out until the deadline, are remaining: not failures
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["remaining"], 2, "{report}");
    assert!(
        moto.throttled(HOME)
            .get("CreateImage")
            .copied()
            .unwrap_or(0)
            > 0
    );
}
