//! Continuations: what an invocation could not finish (its deadline near, a copy limit full) goes
//! to its function's own work queue (`WORK_QUEUE_URL`) as messages that the same function
//! accepts, through Lambda's SQS event source mapping.
//! The message's format is the core's ([`backup_core::continuation`]); here, sending it and
//! reading an SQS event's records.
//!
//! An SQS event is answered per record: `{"batchItemFailures": [{"itemIdentifier": ID}], "records":
//! [...]}`. A record that could not be done (its body is not a continuation this function
//! understands, or its work failed as a whole: the region could not be read, the queue refused
//! the rest) is listed, so SQS delivers it again and, after the queue's `maxReceiveCount`, moves
//! it to the dead-letter queue; the others are deleted. A record whose work failed for some
//! resources only is done: those failures are in its result, the logs and the metrics, and the
//! next schedule finds those resources again. On a FIFO queue, the records after a failed one
//! are listed too, not started (Lambda's rule for keeping the order).

use crate::config::Config;
use crate::error::Error;
use crate::sqs::WorkQueue;
use aws_lambda_events::sqs::SqsMessage;
pub use backup_core::continuation::*;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

/// How soon a record whose work failed as a whole is delivered again.
pub const RETRY_SECONDS: u32 = 60;

/// Sends continuations of `function` doing each of `works` (`what` names them in the log),
/// delayed by `delay_seconds` where the queue allows; the number sent. A queue that refuses them
/// is logged here, and the error is why the work is unfinished (see
/// [`crate::Error::Unfinished`]): doing it again is harmless.
pub async fn hand_on<W: Serialize>(
    queue: &WorkQueue,
    config: &Config,
    function: &str,
    what: &str,
    works: &[W],
    delay_seconds: u32,
) -> Result<usize, String> {
    let sent = async {
        let bodies = works
            .iter()
            .map(|w| body(config, function, w))
            .collect::<Result<Vec<String>, Error>>()?;
        queue.send(&bodies, delay_seconds).await
    };
    match sent.await {
        Ok(sent) => {
            info!(
                function,
                messages = sent,
                delay_seconds,
                queue = queue.url(),
                "{what} handed on to the work queue"
            );
            Ok(sent)
        }
        Err(e) => {
            warn!(function, error = %e, queue = queue.url(), "cannot hand {what} on to the work queue");
            Err(format!("{what} could not be handed on: {e}"))
        }
    }
}

/// The one entry of a function with a work queue: an SQS event's records one by one (see
/// [`each_record`]), each body read into the function's request by `from_body`; any other
/// payload read by `from_payload`. `one` runs one request to its outcome.
pub async fn dispatch<R>(
    payload: &Value,
    queue: Option<&WorkQueue>,
    from_body: impl Fn(&str) -> Result<R, Error>,
    from_payload: impl FnOnce(&Value) -> Result<R, Error>,
    mut one: impl AsyncFnMut(Result<R, Error>) -> Result<Value, Error>,
) -> Result<Value, Error> {
    match sqs_records(payload) {
        Some(records) => {
            Ok(each_record(records?, queue, async |_, body| one(from_body(body)).await).await)
        }
        None => one(from_payload(payload)).await,
    }
}

/// The records of an SQS event (`Records[]`, each `eventSource` `aws:sqs`), when `payload` is
/// one.
pub fn sqs_records(payload: &Value) -> Option<Result<Vec<SqsMessage>, Error>> {
    let records = payload.get("Records")?.as_array()?;
    let from_sqs = records
        .first()
        .is_some_and(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
    if !from_sqs {
        return None;
    }
    Some(
        serde_json::from_value::<Vec<SqsMessage>>(Value::Array(records.clone()))
            .map_err(|e| Error::Payload(format!("an SQS event whose records do not parse: {e}"))),
    )
}

/// Runs `one` over each record (its place in the batch and its body) in turn and answers as the event source mapping expects
/// (`ReportBatchItemFailures`): a record whose work failed, or whose body was refused, is a
/// batch item failure; the answer also carries each record's bounded result.
///
/// A record not started because the deadline came first is sent again as a new message. A
/// failed record from `queue` is made visible again soon (see [`WorkQueue::retry_in`]): at once
/// when its body was refused (no attempt will understand it: it reaches the dead-letter queue
/// after a few quick receives), after [`RETRY_SECONDS`] when its work failed (a region that could
/// not be read may be readable in a minute).
pub async fn each_record(
    records: Vec<SqsMessage>,
    queue: Option<&WorkQueue>,
    mut one: impl AsyncFnMut(usize, &str) -> Result<Value, Error>,
) -> Value {
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        let id = record.message_id.clone().unwrap_or_default();
        // A FIFO queue's order holds only if nothing after a failed record is done before it:
        // Lambda asks that the rest of the batch be listed too.
        if is_fifo(&record) && !failures.is_empty() {
            info!(message_id = %id, "record not started: an earlier record of its FIFO batch failed");
            retry_in(queue, &record, &id, RETRY_SECONDS).await;
            results.push(json!({"messageId": id, "ok": false, "error": "not started: an earlier record of the FIFO batch failed"}));
            failures.push(json!({"itemIdentifier": id}));
            continue;
        }
        let body = record.body.as_deref().unwrap_or("");
        let span = tracing::info_span!("record", message_id = %id);
        let outcome = {
            use tracing::Instrument;
            one(i, body).instrument(span.clone()).await
        };
        let _enter = span.enter();
        match (outcome, queue) {
            (Ok(result), _) => {
                info!(message_id = %id, "record done");
                results.push(json!({"messageId": id, "ok": true, "result": result}));
            }
            // Some resources failed, each reported, logged and counted in the metrics; the
            // record itself is done: done again it would repeat what succeeded, and a FIFO
            // queue would hold back everything behind it. The next schedule tries them again.
            (Err(Error::SomeFailed { failed, result }), _) => {
                warn!(message_id = %id, failed, "record done, with failures");
                let result = serde_json::from_str(&result).unwrap_or(Value::String(result));
                results
                    .push(json!({"messageId": id, "ok": true, "failed": failed, "result": result}));
            }
            // Not started: the invocation's deadline came first (an earlier record of the batch
            // took the time). Sent again as a new message, it starts afresh, where a batch item
            // failure would count a receive towards the dead-letter queue.
            (Err(Error::Deadline { .. }), Some(queue)) => {
                match queue.send(&[body.to_string()], 0).await {
                    Ok(_) => {
                        info!(message_id = %id, "record not started before the deadline: sent again");
                        results.push(json!({"messageId": id, "ok": true, "sent_again": true}));
                    }
                    Err(e) => {
                        warn!(message_id = %id, error = %e, "record not started before the deadline, and it cannot be sent again: SQS delivers it again");
                        results.push(json!({"messageId": id, "ok": false, "error": e.to_string()}));
                        failures.push(json!({"itemIdentifier": id}));
                    }
                }
            }
            (Err(e), _) => {
                let retry = match e {
                    Error::Payload(_) => 0,
                    _ => RETRY_SECONDS,
                };
                warn!(message_id = %id, error = %e, retry_in_seconds = retry, "record failed: SQS delivers it again, then moves it to the dead-letter queue");
                retry_in(queue, &record, &id, retry).await;
                results.push(json!({"messageId": id, "ok": false, "error": e.to_string()}));
                failures.push(json!({"itemIdentifier": id}));
            }
        }
    }
    json!({"batchItemFailures": failures, "records": results})
}

/// Whether `record` is from a FIFO queue (whose records are done in order).
pub fn is_fifo(record: &SqsMessage) -> bool {
    record
        .event_source_arn
        .as_deref()
        .is_some_and(crate::sqs::is_fifo)
}

/// Makes a failed record visible again in `seconds` (see [`WorkQueue::retry_in`]); when that
/// fails, it waits for the queue's visibility timeout, which is said in the log.
async fn retry_in(queue: Option<&WorkQueue>, record: &SqsMessage, id: &str, seconds: u32) {
    if let (Some(queue), Some(handle)) = (queue, record.receipt_handle.as_deref())
        && let Err(e) = queue.retry_in(handle, seconds).await
    {
        warn!(message_id = %id, error = %e, "cannot make the record visible again: it waits for the queue's visibility timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_sqs_event_is_read_as_records() {
        let sqs = json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]});
        let records = sqs_records(&sqs).unwrap().unwrap();
        assert_eq!(records[0].message_id.as_deref(), Some("m1"));
        assert!(sqs_records(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_none());
        assert!(sqs_records(&json!({"detail-type": "Scheduled Event"})).is_none());
    }

    #[tokio::test]
    async fn failed_records_are_batch_item_failures_and_the_others_are_not() {
        let records: Vec<SqsMessage> = serde_json::from_value(json!([
            {"messageId": "ok", "body": "good", "eventSource": "aws:sqs"},
            {"messageId": "bad", "body": "bad", "eventSource": "aws:sqs"},
            {"messageId": "partly", "body": "partly", "eventSource": "aws:sqs"},
        ]))
        .unwrap();
        let answer = each_record(records.clone(), None, async |_, body: &str| outcome(body)).await;
        assert_eq!(
            answer["batchItemFailures"],
            json!([{"itemIdentifier": "bad"}])
        );
        assert_eq!(answer["records"][0]["result"], json!({"done": 1}));
        assert_eq!(answer["records"][1]["ok"], json!(false));
        assert_eq!(answer["records"][2]["ok"], json!(true), "{answer}");
        assert_eq!(answer["records"][2]["result"]["failed"][0]["source"], "i-1");

        // From a FIFO queue, what follows a failed record is not started.
        let fifo: Vec<SqsMessage> = records
            .into_iter()
            .map(|mut r| {
                r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:work.fifo".into());
                r
            })
            .collect();
        let mut started = Vec::new();
        let answer = each_record(fifo, None, async |_, body: &str| {
            started.push(body.to_string());
            outcome(body)
        })
        .await;
        assert_eq!(started, ["good", "bad"]);
        assert_eq!(
            answer["batchItemFailures"],
            json!([{"itemIdentifier": "bad"}, {"itemIdentifier": "partly"}])
        );
    }

    fn outcome(body: &str) -> Result<Value, Error> {
        match body {
            "good" => Ok(json!({"done": 1})),
            "partly" => Err(Error::SomeFailed {
                failed: 1,
                result: json!({"failed": [{"source": "i-1"}]}).to_string(),
            }),
            _ => Err(Error::Payload("no".into())),
        }
    }
}
