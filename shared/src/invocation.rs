//! The invocation pipeline: what every function does around its run, written once.
//!
//! A function is a [`Function`]: how it reads its payload and a work-queue message's body, the
//! span its lines carry, and its run. The pipeline does the rest, in this order:
//!
//! 1. an SQS event of the function's work queue is answered record by record
//!    ([`crate::continuation::each_record`]), after the records the function does together
//!    ([`Function::batch`]); any other payload is one request;
//! 2. a request that does not parse is refused, logged, and the invocation fails
//!    (`NonRetryable.InvalidPayload`);
//! 3. the run, in the request's span; its summary line and its warnings logged;
//! 4. the metrics lines written, also when the run failed;
//! 5. the answer: the bounded report, or an error carrying it when something failed or the
//!    work must be done again (see [`backup_core::report::into_outcome_unless_unfinished`]).

use crate::config::Config;
use crate::error::Error;
use crate::metrics::{Invocation, Publisher, Values};
use crate::region::Region;
use crate::report::Common;
use crate::sqs::WorkQueue;
use crate::tags::Warning;
use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tracing::{Instrument, warn};

/// What a function's run reports, as the pipeline needs it.
pub trait Report: Serialize + Default {
    /// The counts of the function's own metrics line (`shared/metrics.json`).
    fn metric_values(&self) -> Values;
    /// Counts per region, each its own `[Deployment, Function, Region]` line.
    fn metric_values_by_region(&self) -> BTreeMap<Region, Values> {
        BTreeMap::new()
    }
    /// The lines beside the function's own (per region; monitor's figures).
    fn documents(&self, publisher: &Publisher, now: DateTime<Utc>) -> Vec<Value> {
        // A dry run publishes only its own line (see `metrics::Publisher::dry_run`).
        if publisher.dry_run {
            return Vec::new();
        }
        self.metric_values_by_region()
            .iter()
            .map(|(region, values)| publisher.for_region(region.as_str(), true, values, now))
            .collect()
    }
    /// The resources that failed.
    fn failed(&self) -> usize;
    /// The warnings, the dry run and the work handed on (monitor's report has none).
    fn common(&mut self) -> Option<&mut Common> {
        None
    }
    /// The messages the run sent to the work queue.
    fn continuations(&mut self) -> usize {
        self.common().map_or(0, |c| c.continuations)
    }
    /// Why the work must be done again, taken out of the report (it becomes the error).
    fn take_unfinished(&mut self) -> Option<String> {
        self.common().and_then(|c| c.unfinished.take())
    }
    /// The run's one summary line.
    fn log(&self);
    /// The answer: the report, bounded to fit Lambda's response.
    fn into_answer(mut self) -> Result<Value, Error> {
        let failed = self.failed();
        let unfinished = self.take_unfinished();
        crate::report::into_outcome_unless_unfinished(self, failed, unfinished)
    }
}

/// What every invocation of a function carries: its configuration, its work queue and its
/// clock.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'a> {
    pub config: &'a Config,
    pub queue: Option<&'a WorkQueue>,
    pub now: DateTime<Utc>,
}

/// A function as the pipeline runs it: a parse, a run and a report.
// Generic only (never a trait object), on one thread: the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Function {
    type Request;
    type Report: Report;
    /// Whether it reads a work queue's messages: an SQS event is then answered record by
    /// record; otherwise it is a payload like any other (monitor refuses it).
    const READS_A_QUEUE: bool = true;

    /// The binary's name: its metrics' `Function`, its continuations' `function`.
    fn name(&self) -> &'static str;
    /// Its configuration (its metrics are published with it), its work queue, its clock.
    fn setting(&self) -> Setting<'_>;
    /// The EC2 calls throttled so far, over every region it calls.
    fn throttles(&self) -> u64;
    /// The request of a payload it was invoked with.
    fn parse(&self, payload: &Value) -> Result<Self::Request, Error>;
    /// The request of a work-queue message's body (a continuation, or an event a rule queued).
    fn parse_body(&self, body: &str) -> Result<Self::Request, Error> {
        Err(Error::Payload(format!(
            "{} takes no message of a work queue: {}",
            self.name(),
            crate::event::truncate(&Value::from(body))
        )))
    }
    /// The span every line of the request's run carries (the event id as correlation id).
    fn span(&self, request: &Self::Request) -> tracing::Span;
    /// The run: what it did, skipped and failed, and the rest handed on.
    async fn run(&self, request: Self::Request) -> Result<Self::Report, Error>;
    /// Records of an SQS batch done together, before the others are done one by one: each
    /// one's answer by its place in the batch, and the messages sent (none by default).
    async fn batch(
        &self,
        _records: &[SqsMessage],
    ) -> (BTreeMap<usize, Result<Value, Error>>, usize) {
        (BTreeMap::new(), 0)
    }
}

/// A Lambda event through the pipeline: the function made for the event's context (its
/// deadline, its request id) and the clock, then its answer, or Lambda's error.
pub async fn handle_event<F: Function>(
    event: LambdaEvent<Value>,
    function: impl FnOnce(&lambda_runtime::Context, DateTime<Utc>) -> F,
) -> Result<Value, Diagnostic> {
    let function = function(&event.context, Utc::now());
    handle(&function, &event.payload)
        .await
        .map_err(crate::lambda::diagnostic)
}

/// The whole invocation: an SQS event's records (see [`crate::continuation::each_record`]), or
/// the one request the payload is.
pub async fn handle<F: Function>(function: &F, payload: &Value) -> Result<Value, Error> {
    // Boxed: the handler's future sits under lambda_runtime's own; unboxed, the whole nests
    // past the compiler's default depth for computing its layout.
    Box::pin(dispatch(function, payload)).await
}

async fn dispatch<F: Function>(function: &F, payload: &Value) -> Result<Value, Error> {
    let queue = function.setting().queue;
    let records = F::READS_A_QUEUE
        .then(|| crate::continuation::sqs_records(payload))
        .flatten();
    let Some(records) = records else {
        return answer(function, function.parse(payload)).await;
    };
    let records = records?;
    let (mut answers, continuations) = function.batch(&records).await;
    let mut reply = crate::continuation::each_record(records, queue, async |i, body| match answers
        .remove(&i)
    {
        Some(answer) => answer,
        None => self::answer(function, function.parse_body(body)).await,
    })
    .await;
    if continuations > 0 {
        reply["continuations"] = continuations.into();
    }
    Ok(reply)
}

/// One request to its answer.
pub async fn answer<F: Function>(
    function: &F,
    request: Result<F::Request, Error>,
) -> Result<Value, Error> {
    run_and_publish(function, request).await.0?.into_answer()
}

/// One request run, logged, and its metrics written (also when it failed): the report, and the
/// metrics lines written.
pub async fn run_and_publish<F: Function>(
    function: &F,
    request: Result<F::Request, Error>,
) -> (Result<F::Report, Error>, Vec<Value>) {
    let setting = function.setting();
    let invocation = Invocation::start(setting.config, function.name(), function.throttles());
    let mut report = run_in_span(function, request).await;
    let now = setting.now;
    let (counts, documents, continuations) = match &mut report {
        Ok(r) => (
            r.metric_values(),
            r.documents(invocation.publisher(), now),
            r.continuations(),
        ),
        Err(_) => (F::Report::default().metric_values(), Vec::new(), 0),
    };
    let written = invocation.finish(counts, documents, function.throttles(), continuations, now);
    (report, written)
}

async fn run_in_span<F: Function>(
    function: &F,
    request: Result<F::Request, Error>,
) -> Result<F::Report, Error> {
    let request = request.inspect_err(|e| {
        warn!(error = %e, "rejected payload");
    })?;
    // Instrument, not enter: a span guard held across an await would leak into other tasks.
    let span = function.span(&request);
    let mut report = function.run(request).instrument(span.clone()).await?;
    let _enter = span.enter();
    report.log();
    if let Some(common) = report.common() {
        warn_all(&common.warnings);
    }
    Ok(report)
}

/// Logs an invalid tag value as it is found (the contract asks for a log line besides the
/// entry under `warnings`) and keeps it for the result.
pub fn warn_all(warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!(resource = %w.resource, key = %w.key, value = %w.value, message = %w.message, "invalid tag value");
    }
}
