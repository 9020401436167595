//! The SQS adapter: the only code that knows the SQS SDK. It sends a function's continuations
//! to the function's own work queue (`WORK_QUEUE_URL`); Lambda's event source mapping
//! receives and deletes them.

use crate::error::Error;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
pub use backup_core::queue::{MAX_DELAY_SECONDS, is_fifo, validate_url};

/// SendMessageBatch takes at most 10 messages.
const BATCH: usize = 10;

/// A function's work queue.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    client: Client,
    url: String,
    /// On a FIFO queue, every message of the function goes into one group named after it, so
    /// that its continuations run one at a time, in order.
    group: Option<String>,
}

impl WorkQueue {
    /// The queue at `url` (validated by [`crate::config`]), for `function`'s messages.
    pub fn new(sdk: &aws_config::SdkConfig, url: &str, function: &str) -> Self {
        // Each call well inside the deadline's margin (2 s at least): a slow SQS must not
        // carry an invocation past its timeout.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(std::time::Duration::from_millis(1500))
            .build();
        let conf = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self::from_client(Client::from_conf(conf), url, function)
    }

    /// The queue over a client made elsewhere (the tests' moto client).
    pub fn from_client(client: Client, url: &str, function: &str) -> Self {
        Self {
            client,
            url: url.to_string(),
            group: is_fifo(url).then(|| function.to_string()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `bodies`, each delayed by `delay_seconds` where the queue allows it (a standard
    /// queue: a FIFO queue delays only as a whole); ten to a call. Fails naming the first message SQS refused:
    /// those before it were sent, which is harmless, since every continuation can be done
    /// twice.
    pub async fn send(&self, bodies: &[String], delay_seconds: u32) -> Result<usize, Error> {
        let delay = delay_seconds.min(MAX_DELAY_SECONDS) as i32;
        let mut sent = 0;
        for chunk in bodies.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body);
                    let entry = match &self.group {
                        // Every message its own: a continuation sent again unchanged (an
                        // invocation that made no progress) must not be dropped as a duplicate
                        // of the last; a repeat is harmless, a loss waits for the schedule.
                        Some(group) => entry
                            .message_group_id(group)
                            .message_deduplication_id(unique_id(i)),
                        None if delay > 0 => entry.delay_seconds(delay),
                        None => entry,
                    };
                    entry
                        .build()
                        .map_err(|e| self.error("SendMessageBatch", "Invalid", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.sdk_error("SendMessageBatch", e))?;
            if let Some(refused) = answer.failed().first() {
                return Err(self.error(
                    "SendMessageBatch",
                    refused.code(),
                    format!(
                        "{} of {} messages refused ({} sent before), the first: {}",
                        answer.failed().len(),
                        chunk.len(),
                        sent + answer.successful().len(),
                        refused.message().unwrap_or("no reason given")
                    ),
                ));
            }
            sent += chunk.len();
        }
        Ok(sent)
    }

    /// Makes a received message visible again in `seconds` (ChangeMessageVisibility), so that
    /// a record that failed is tried again (or, past the queue's maxReceiveCount, dead-lettered)
    /// soon, not after the queue's whole visibility timeout: on a FIFO queue, everything behind
    /// it waits until then.
    pub async fn retry_in(&self, receipt_handle: &str, seconds: u32) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_error("ChangeMessageVisibility", e))
    }

    /// The region of the queue's client.
    fn region(&self) -> String {
        self.client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// An SDK error of `operation` on this queue, keeping its code and naming the queue.
    fn sdk_error<E, R>(
        &self,
        operation: &'static str,
        err: aws_sdk_sqs::error::SdkError<E, R>,
    ) -> Error
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match crate::aws::aws_error(operation, &self.region(), err) {
            Error::Aws { code, message, .. } => self.error(operation, &code, message),
            other => other,
        }
    }
}

/// A deduplication id no other send repeats: the clock's nanoseconds, the process and the
/// message's place in its batch.
fn unique_id(i: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}-{i}", std::process::id())
}

impl WorkQueue {
    /// An error of `operation` on this queue, naming it.
    fn error(&self, operation: &'static str, code: &str, message: String) -> Error {
        Error::Aws {
            operation,
            region: self.region(),
            code: code.to_string(),
            message: format!("{message} (queue {})", self.url),
        }
    }
}
