//! The isolated DR account through the real `replicate` binaries: the home deployment's shares
//! a backup and tells the vault through EventBridge; the vault deployment's (run with the vault
//! account's credentials) copies it into its two regions and locks the copies; each refuses,
//! at cold start, an account setting that names its own account.

use chrono::{TimeDelta, Utc};
use integration_tests::binary::{invoke, python, result, sample, text};
use shared::tags::format_time;

const BINARY: &str = env!("CARGO_BIN_EXE_replicate");
const HOME_ACCOUNT: &str = "123456789012";
const VAULT_ACCOUNT: &str = "444455556666";

#[test]
fn the_home_and_vault_binaries_share_copy_and_lock_a_backup() {
    let run = uuid();
    let (home, vault) = (format!("home-{run}"), format!("vault-{run}"));
    let now = Utc::now();
    let (created, expires) = (
        format_time(now - TimeDelta::hours(1)),
        format_time(now + TimeDelta::days(7)),
    );
    // The home account's AMI backup, the two accounts' EventBridge wiring (as the templates
    // make it), the vault's queue, and the vault's default EBS key in its regions.
    let seeded = python(&format!(
        r#"
def client(svc, account, region='us-east-1'):
    key = 'testing' if account == '{HOME_ACCOUNT}' else account
    return boto3.client(svc, region_name=region, endpoint_url=MOTO, aws_access_key_id=key, aws_secret_access_key='testing')
ec2 = client('ec2', '{HOME_ACCOUNT}')
instance = ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']
tags = {{'binarytest:managed-by': '{home}', 'binarytest:kind': 'image', 'binarytest:source': instance,
        'binarytest:source-region': 'us-east-1', 'binarytest:created-at': '{created}',
        'binarytest:expires-at': '{expires}', 'binarytest:copy-to': 'none', 'Name': 'web-{run}'}}
spec = [{{'ResourceType': r, 'Tags': [{{'Key': k, 'Value': v}} for k, v in tags.items()]}} for r in ('image', 'snapshot')]
image = ec2.create_image(InstanceId=instance, Name='dr-{run}', Description='ec2-backup backup of ' + instance, TagSpecifications=spec)['ImageId']
sqs = client('sqs', '{VAULT_ACCOUNT}')
queue = sqs.create_queue(QueueName='vault-{run}')['QueueUrl']
v_events = client('events', '{VAULT_ACCOUNT}')
pattern = json.dumps({{'source': ['ec2-backup'], 'detail-type': ['Backup Shared'], 'account': ['{HOME_ACCOUNT}'], 'detail': {{'deployment': ['{home}']}}}})
v_events.put_rule(Name='shared-{run}', EventPattern=pattern)
v_events.put_targets(Rule='shared-{run}', Targets=[{{'Id': 'q', 'Arn': 'arn:aws:sqs:us-east-1:{VAULT_ACCOUNT}:vault-{run}'}}])
v_events.put_permission(Action='events:PutEvents', Principal='{HOME_ACCOUNT}', StatementId='home-{run}')
h_events = client('events', '{HOME_ACCOUNT}')
h_events.put_rule(Name='to-vault-{run}', EventPattern=json.dumps({{'source': ['ec2-backup'], 'detail-type': ['Backup Shared'], 'detail': {{'deployment': ['{home}']}}}}))
h_events.put_targets(Rule='to-vault-{run}', Targets=[{{'Id': 'v', 'Arn': 'arn:aws:events:us-east-1:{VAULT_ACCOUNT}:event-bus/default', 'RoleArn': 'arn:aws:iam::{HOME_ACCOUNT}:role/forward'}}])
for region in ('us-west-2', 'eu-west-1'):
    client('ec2', '{VAULT_ACCOUNT}', region).create_volume(AvailabilityZone=region + 'a', Size=1, Encrypted=True)
print(image + ' ' + queue)
"#
    ));
    let (image, queue) = seeded.split_once(' ').unwrap();

    // The home deployment's replicate, on its schedule: shares the AMI and tells the vault.
    let out = invoke(
        BINARY,
        &sample("scheduled-event.json"),
        &[("DEPLOYMENT_NAME", &home), ("DR_ACCOUNT", VAULT_ACCOUNT)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let shared = &line["response"]["shared"];
    assert_eq!(shared[0]["shared"], image, "{line}");
    assert_eq!(shared[0]["with"], VAULT_ACCOUNT);

    // The event on the vault's queue, as the vault's work queue would deliver it.
    let event = python(&format!(
        "sqs = boto3.client('sqs', region_name='us-east-1', endpoint_url=MOTO, aws_access_key_id='{VAULT_ACCOUNT}', aws_secret_access_key='testing')\nm = sqs.receive_message(QueueUrl='{queue}', MaxNumberOfMessages=10).get('Messages', [])\nprint(m[0]['Body'] if len(m) == 1 else len(m))"
    ));
    let parsed: serde_json::Value =
        serde_json::from_str(&event).unwrap_or_else(|_| panic!("one event: {event}"));
    assert_eq!(parsed["account"], HOME_ACCOUNT);
    assert_eq!(parsed["detail"]["backup"], image);

    // The vault deployment's replicate, with the vault account's credentials.
    let vault_env = [
        ("AWS_ACCESS_KEY_ID", VAULT_ACCOUNT),
        ("DEPLOYMENT_NAME", vault.as_str()),
        ("SOURCE_ACCOUNTS", HOME_ACCOUNT),
        ("COPY_TO_REGIONS", "us-west-2,eu-west-1"),
        ("COPY_RETENTION", "30d"),
        ("LOCK_MODE", "governance"),
    ];
    let out = invoke(BINARY, &event, &vault_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let copied: Vec<&str> = line["response"]["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["region"].as_str().unwrap())
        .collect();
    assert_eq!(copied.len(), 2, "{line}");
    assert!(
        copied.contains(&"us-west-2") && copied.contains(&"eu-west-1"),
        "{line}"
    );
    // Each copy's snapshot locked and each AMI protected, in the same run.
    let locked = line["response"]["locked"].as_array().unwrap();
    assert_eq!(
        locked
            .iter()
            .filter(|l| l.get("snapshot").is_some())
            .count(),
        2,
        "{line}"
    );
    assert_eq!(
        locked
            .iter()
            .filter(|l| l.get("snapshot").is_none())
            .count(),
        2,
        "{line}"
    );
    // A replay copies nothing more, and fails nothing.
    let again = result(&invoke(BINARY, &event, &vault_env));
    assert_eq!(
        again["response"]["copied"],
        serde_json::json!([]),
        "{again}"
    );
    assert_eq!(
        again["response"]["failed"],
        serde_json::json!([]),
        "{again}"
    );
    let skipped = again["response"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{again}");
    assert!(
        skipped
            .iter()
            .all(|s| s["reason"].as_str().unwrap().starts_with("already-copied")),
        "{again}"
    );
}

#[test]
fn an_account_setting_naming_the_functions_own_account_stops_the_cold_start() {
    for (variable, value) in [
        ("DR_ACCOUNT", HOME_ACCOUNT),
        ("SOURCE_ACCOUNTS", HOME_ACCOUNT),
    ] {
        let out = invoke(
            BINARY,
            &sample("scheduled-event.json"),
            &[(variable, value)],
        );
        assert!(!out.status.success(), "{variable}");
        let err = text(&out.stderr) + &text(&out.stdout);
        assert!(
            err.contains(variable) && err.contains("own account"),
            "{variable}: {err}"
        );
    }
    let out = invoke(
        BINARY,
        &sample("scheduled-event.json"),
        &[("DR_ACCOUNT", "12345")],
    );
    assert!(!out.status.success());
    assert!((text(&out.stderr) + &text(&out.stdout)).contains("DR_ACCOUNT"));
}

fn uuid() -> String {
    format!("{:x}", Utc::now().timestamp_nanos_opt().unwrap_or_default())
}
