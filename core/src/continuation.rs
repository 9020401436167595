//! A continuation: what an invocation could not finish goes to its function's own work queue
//! as a message that the same function accepts. This is the message's format; the adapters send
//! it and the invocation pipeline reads it back.
//!
//! A message body is an envelope that names what it is for:
//! `{"continuation": 1, "deployment": "ec2-backup", "function": "create-image", "work": {...}}`;
//! each function defines its `work`. Every continuation can be done twice without harm (it
//! carries what keeps it idempotent: the original event's time for AMI names, the ids whose
//! copies have deterministic ClientTokens), so a message delivered twice changes nothing, and
//! one lost is found by the next schedule.

use crate::config::Config;
use crate::error::Error;
use crate::event::truncate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The version of the envelope and of every function's `work`; a message of another version
/// is refused (and dead-lettered), never guessed at.
pub const VERSION: u64 = 1;

/// The resources one message carries at most: a message stays far inside SQS's 256 KiB, and one
/// record is a few minutes of work at EC2's rates.
pub const IDS_PER_MESSAGE: usize = 500;

#[derive(Serialize)]
struct Envelope<'a, W> {
    continuation: u64,
    deployment: &'a str,
    function: &'a str,
    work: &'a W,
}

/// The body of a continuation of `function` doing `work`.
pub fn body<W: Serialize>(config: &Config, function: &str, work: &W) -> Result<String, Error> {
    serde_json::to_string(&Envelope {
        continuation: VERSION,
        deployment: &config.deployment_name,
        function,
        work,
    })
    .map_err(|e| {
        Error::Payload(format!(
            "a continuation of {function} that does not serialize: {e}"
        ))
    })
}

/// The `work` of a continuation of `function` in this deployment; anything else is refused,
/// saying what was expected.
pub fn parse<W: DeserializeOwned>(config: &Config, function: &str, body: &str) -> Result<W, Error> {
    let expected = || {
        format!(
            "expected a continuation {{\"continuation\": {VERSION}, \"deployment\": \"{}\", \"function\": \"{function}\", \"work\": {{...}}}}",
            config.deployment_name
        )
    };
    let refuse = |why: String| Error::Payload(format!("{why}; {}", expected()));
    let value: Value = serde_json::from_str(body).map_err(|e| {
        refuse(format!(
            "a message body that is not JSON ({e}): {}",
            truncate(&Value::from(body))
        ))
    })?;
    let Some(envelope) = value.as_object() else {
        return Err(refuse(format!(
            "a message body that is not an object: {}",
            truncate(&value)
        )));
    };
    let field = |name: &str| envelope.get(name);
    match field("continuation").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(refuse(format!(
                "a continuation of version {other} (another release of ec2-backup?)"
            )));
        }
        None => {
            return Err(refuse(format!(
                "a message that is not a continuation: {}",
                truncate(&value)
            )));
        }
    }
    let text = |name: &str| field(name).and_then(Value::as_str).unwrap_or("");
    if text("deployment") != config.deployment_name {
        return Err(refuse(format!(
            "a continuation of deployment {:?}",
            text("deployment")
        )));
    }
    if text("function") != function {
        return Err(refuse(format!(
            "a continuation for function {:?}",
            text("function")
        )));
    }
    let extra: Vec<&String> = envelope
        .keys()
        .filter(|k| !["continuation", "deployment", "function", "work"].contains(&k.as_str()))
        .collect();
    if !extra.is_empty() {
        return Err(refuse(format!(
            "a continuation with unknown fields {extra:?}"
        )));
    }
    let work = field("work").cloned().unwrap_or(Value::Null);
    serde_json::from_value(work)
        .map_err(|e| refuse(format!("a continuation whose work does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Work {
        ids: Vec<String>,
    }

    #[test]
    fn a_continuation_reads_back_what_was_sent() {
        let config = Config::default();
        let work = Work {
            ids: vec!["i-0123456789abcdef0".into()],
        };
        let body = body(&config, "create-image", &work).unwrap();
        assert_eq!(parse::<Work>(&config, "create-image", &body).unwrap(), work);
    }

    #[test]
    fn a_message_that_is_not_our_continuation_is_refused_saying_what_was_expected() {
        let config = Config::default();
        let ours = body(&config, "create-image", &Work { ids: vec![] }).unwrap();
        let cases = [
            ("not json".to_string(), "not JSON"),
            ("[1]".to_string(), "not an object"),
            (r#"{"Records": []}"#.to_string(), "not a continuation"),
            (
                ours.replace("\"continuation\":1", "\"continuation\":2"),
                "version 2",
            ),
            (ours.replace("ec2-backup", "other"), "deployment \"other\""),
            (
                ours.replace("create-image", "expire"),
                "function \"expire\"",
            ),
            (ours.replace("\"ids\"", "\"idz\""), "work does not parse"),
            (
                ours.replace("{\"continuation\"", "{\"x\":1,\"continuation\""),
                "unknown fields",
            ),
        ];
        for (body, why) in cases {
            let err = parse::<Work>(&config, "create-image", &body)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{body}: {err}");
            assert!(err.contains("expected a continuation {\"continuation\": 1, \"deployment\": \"ec2-backup\", \"function\": \"create-image\""), "{err}");
        }
    }
}
