//! The real `expire` binary through the Lambda runtime loop: the wiring of `main`.

use integration_tests::binary::{assert_rejects_bad_input, boto3, invoke, result, text};

const BINARY: &str = env!("CARGO_BIN_EXE_expire");

#[test]
fn a_sweep_goes_through_the_runtime_loop_and_deregisters_what_expired() {
    let image = boto3(
        "ec2.create_image(InstanceId=ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1)['Instances'][0]['InstanceId'], Name='binarytest-' + __import__('uuid').uuid4().hex, TagSpecifications=[{'ResourceType': k, 'Tags': [{'Key': 'binarytest:managed-by', 'Value': 'ec2-backup'}, {'Key': 'binarytest:kind', 'Value': 'image'}, {'Key': 'binarytest:source', 'Value': 'i-0fedcba9876543210'}, {'Key': 'binarytest:created-at', 'Value': '2026-01-01T00:00:00Z'}, {'Key': 'binarytest:expires-at', 'Value': '2026-01-08T00:00:00Z'}]} for k in ('image', 'snapshot')])['ImageId']",
    );
    let out = invoke(BINARY, "{}", &[("KEEP_LAST", "0")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let deregistered: Vec<&str> = line["response"]["regions"]["us-east-1"]["deregistered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(deregistered.contains(&image.as_str()), "{line}");
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
