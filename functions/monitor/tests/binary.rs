//! The real `monitor` binary through the Lambda runtime loop: the wiring of `main`.

use integration_tests::binary::{
    assert_emf_document, assert_invocation_metrics, assert_rejects_bad_input, boto3, emf_lines,
    invoke, result, sample, text,
};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_monitor");

#[test]
fn the_schedule_goes_through_the_runtime_loop_and_publishes_every_region() {
    // GIVEN an instance opted in under this test's prefix, never backed up, copying to
    // us-west-2 (other tests of the same server may add their own)
    let instance = boto3(
        "ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'binarytest', 'Value': 'true'}, {'Key': 'binarytest:copy-to', 'Value': 'us-west-2'}]}])['Instances'][0]['InstanceId']",
    );

    // WHEN the binary gets the schedule, logging JSON as in a deployment
    let out = invoke(
        BINARY,
        &sample("scheduled-event.json"),
        &[("AWS_LAMBDA_LOG_FORMAT", "JSON")],
    );

    // THEN it returns the figures and lists the instance without a backup in both regions
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let response = &line["response"];
    let without: Vec<(&str, &str)> = response["without_backup"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource"] == instance.as_str())
        .map(|f| (f["region"].as_str().unwrap(), f["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(without.len(), 2, "{line}");
    assert_eq!(without[0].0, "us-east-1");
    assert_eq!(without[1].0, "us-west-2");

    // AND its invocation line, one line per region with that region's figures, and the totals
    assert_invocation_metrics(&out, "monitor", &[("Throttles", 0), ("Continuations", 0)]);
    let lines = emf_lines(&out);
    let regions = response["regions"].as_object().unwrap();
    for (region, figures) in regions {
        let doc = lines
            .iter()
            .find(|l| l["Region"] == region.as_str())
            .unwrap_or_else(|| panic!("no EMF line for {region}: {}", text(&out.stderr)));
        assert_emf_document(doc, "monitor", "region");
        assert_eq!(doc["WithoutBackup"], figures["without_backup"], "{doc}");
        assert_eq!(doc["Protected"], figures["protected"], "{doc}");
    }
    let totals = lines
        .iter()
        .find(|l| l.get("Region").is_none() && l.get("Function").is_none())
        .unwrap_or_else(|| panic!("no totals line: {}", text(&out.stderr)));
    assert_emf_document(totals, "monitor", "deployment");
    let sum = |name: &str| -> u64 { regions.values().map(|f| f[name].as_u64().unwrap()).sum() };
    assert_eq!(totals["Protected"], sum("protected"), "{totals}");
    assert_eq!(totals["WithoutBackup"], sum("without_backup"), "{totals}");

    // AND one structured warn line per region it has no backup in, which a Logs Insights
    // query can select by its fields (docs/monitor.md)
    let logged: Vec<Value> = text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["level"] == "WARN"
                && l["fields"]["message"] == "resource without backup"
                && l["fields"]["resource"] == instance.as_str()
        })
        .collect();
    assert_eq!(logged.len(), 2, "{}", text(&out.stderr));
    assert_eq!(logged[0]["fields"]["region"], "us-east-1");
    assert_eq!(logged[0]["fields"]["reason"], without[0].1);
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
