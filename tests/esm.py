#!/usr/bin/env python3
"""Deliver an SQS queue to a Lambda function binary as Lambda's SQS event source mapping does.

Usage:
    python tests/esm.py BINARY --queue-url URL [--env K=V]... [--timeout 60]
        [--batch-size 10] [--batching-window 0] [--wait 20] [--concurrency 1]
        [--idle 5] [--max-time 600] [--endpoint-url URL] [--region REGION] [--logs FILE]

What it does, as a mapping with FunctionResponseTypes [ReportBatchItemFailures]:
- Polls the queue (ReceiveMessage, at most 10 a call, long polling up to --wait seconds, every
  system and message attribute) into batches of up to --batch-size records, gathering for at
  most --batching-window seconds (Lambda's MaximumBatchingWindowInSeconds; above 10 records a
  batch needs a window of 1 s or more, and FIFO queues take no window and 10 at most).
- Invokes the binary with {"Records": [...]}, each record built as Lambda builds it (see
  `sqs_record`), through the Lambda emulator (tests/lambda_invoke.py): each poller has one
  sandbox, kept warm across batches; an invocation past the function's --timeout is killed
  (Sandbox.Timedout) and the next batch starts a new sandbox, cold.
- Honours the answer. A success deletes the batch's records except those listed in
  {"batchItemFailures": [{"itemIdentifier": "<messageId>"}]} (other fields are ignored; an
  empty or null answer or list is a success). What is not deleted stays in flight and comes
  back after the queue's visibility timeout, and SQS moves it to the dead-letter queue once its
  receives pass the RedrivePolicy's maxReceiveCount. An invocation error or timeout leaves the
  whole batch; so does an invalid answer (see `batch_item_failures`).
- FIFO queues: SQS hands out no message of a group that has one in flight, so each group has
  one batch in flight at a time, delivered in order (the function should list every record
  after its first failure, as Lambda asks of FIFO consumers).
- --concurrency pollers (Lambda's MaximumConcurrency), each with its own sandbox. The default,
  1, is one sandbox: Lambda starts 5 pollers on a standard queue and scales them with the
  backlog.
- Refuses, as CreateEventSourceMapping does, a queue whose visibility timeout is below the
  function's timeout.
It stops once the queue has stayed empty (nothing visible, in flight or delayed) with no
invocation running for --idle seconds, or at --max-time (invocations under way finish first).
Bodies are passed on untouched: the emulator never reads them.

stdout: one JSON line per invocation as it ends (a `results` entry, below), then a last line
{"summary": {...}} (the summary without `results`). The binary's logs go to stderr or --logs.
Exit code: 0 every record delivered was deleted, 1 some were not (listed failures, errors,
timeouts or invalid answers), 2 emulator problem (the binary crashed or failed init, an SQS
call failed, bad arguments).

As a library:
    from esm import deliver
    summary = deliver("target/debug/create-image", queue_url, env={...}, timeout=60)
summary:
    {"queue_arn", "stopped": "idle" | "max_time", "elapsed_s",
     "invocations", "records" (deliveries: a message received again counts again),
     "deleted", "failed" (records left on the queue), "errors" (invocations that failed,
     timeouts included), "timeouts", "invalid_responses",
     "results": [{"invocation", "poller", "request_id", "started" (epoch s), "ms",
                  "records": [messageId, ...], "outcome": "success" | "partial" | "error" |
                  "timeout" | "invalid_response", "failed": [messageId, ...], "deleted",
                  "ok", "response" | "error", "delete_errors" (only if DeleteMessageBatch
                  refused some)}, ...],
     "stats": lambda_invoke's stats over every sandbox (cold starts, CPU, max_rss_kib, ...)}
A crash, a failed init or a failed SQS call raises MappingError (an EmulatorError) whose
`summary` holds what was done before.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).parent))
from lambda_invoke import EmulatorError, Function, parse_env_pairs, summarize_stats  # noqa: E402

RECEIVE_MAX = 10  # ReceiveMessage's and DeleteMessageBatch's limit per call
LONG_POLL_MAX = 20  # ReceiveMessage's WaitTimeSeconds limit, and what Lambda's pollers use
POLL_PAUSE = 0.05  # between short polls, when too little idle time is left to long-poll
# Lambda's order of a record's attributes; any other SQS returns follows.
FIRST_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


class MappingError(EmulatorError):
    """The mapping could not go on: the binary crashed or failed init, or an SQS call failed.
    `summary` is the summary of what was done until then."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message, summary["results"], summary["stats"])
        self.summary = summary


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage message (boto3's shape) as a record of Lambda's SQS event."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {**{k: attributes[k] for k in FIRST_ATTRIBUTES if k in attributes}, **attributes},
        "messageAttributes": {name: _message_attribute(value)
                              for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """boto3's message attribute (binary values as bytes) in the event's camelCase, base64."""
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])]
    out["dataType"] = value["DataType"]
    return out


def batch_item_failures(response: Any, message_ids: list[str]) -> list[str] | None:
    """The messageIds a function's answer lists as failed, or None if Lambda would count the
    answer invalid (then the whole batch has failed).

    A success: no answer (null or empty), or an object whose batchItemFailures is absent, null
    or empty. Invalid: an answer that is not a JSON object (text that does not parse, a number,
    ...), batchItemFailures that is not a list, or an entry whose itemIdentifier is missing,
    null, empty, not a string or not the messageId of a record of the batch.
    """
    if response is None or response == "":
        return []
    if not isinstance(response, dict):
        return None
    items = response.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    failed: list[str] = []
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        if identifier not in failed:
            failed.append(identifier)
    return failed


def _sqs_client(endpoint_url: str | None, region: str | None, env: dict[str, str]) -> Any:
    """A client for the queue: arguments first, then the function's `env`, then os.environ."""
    def lookup(key: str) -> str | None:
        return env.get(key) or os.environ.get(key)

    return boto3.client(
        "sqs",
        region_name=region or lookup("AWS_REGION") or lookup("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=endpoint_url or lookup("AWS_ENDPOINT_URL_SQS") or lookup("AWS_ENDPOINT_URL"),
        aws_access_key_id=lookup("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=lookup("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=lookup("AWS_SESSION_TOKEN"),
    )


class _Mapping:
    """One event source mapping run: its settings, and what the pollers share (one lock)."""

    def __init__(self, queue_url: str, queue_arn: str, batch_size: int, batching_window: float, wait_seconds: int, idle: float, max_time: float,
                 on_result: Callable[[dict[str, Any]], None] | None):
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = queue_arn.split(":")[3]
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.wait_seconds = wait_seconds
        self.idle = idle
        self.on_result = on_result
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.end = self.started + max_time
        self.last_busy = self.started
        self.running = 0  # invocations under way
        self.stopped: str | None = None
        self.error: EmulatorError | None = None
        self.results: list[dict[str, Any]] = []

    # -- the decision to stop

    def _touch(self) -> None:
        with self.lock:
            self.last_busy = time.monotonic()

    def _should_stop(self) -> bool:
        with self.lock:
            if self.stopped or self.error:
                return True
            now = time.monotonic()
            if now >= self.end:
                self.stopped = "max_time"
            elif self.running == 0 and now - self.last_busy >= self.idle:
                self.stopped = "idle"
            return self.stopped is not None

    def _first_wait(self) -> int:
        """WaitTimeSeconds for a batch's first receive: a long poll that ends before the
        mapping would stop idle or at its max time."""
        with self.lock:
            now = time.monotonic()
            left = min(self.last_busy + self.idle, self.end) - now
        return max(0, min(self.wait_seconds, math.floor(left)))

    def _queue_holds_messages(self, sqs: Any) -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in attributes.values()) > 0

    # -- one poller

    def poll(self, function: Function, sqs: Any, poller: int) -> None:
        """A poller's loop: gather a batch, invoke, honour the answer; until told to stop."""
        try:
            while not self._should_stop():
                wait = self._first_wait()
                messages = self._gather(sqs, wait)
                if messages:
                    with self.lock:
                        self.running += 1
                    try:
                        self._invoke(function, sqs, messages, poller)
                    finally:
                        with self.lock:
                            self.running -= 1
                            self.last_busy = time.monotonic()
                    continue
                if self._queue_holds_messages(sqs):  # in flight or delayed: not idle
                    self._touch()
                if wait == 0:
                    time.sleep(POLL_PAUSE)
        except EmulatorError as err:
            with self.lock:
                self.error = self.error or err
        except (BotoCoreError, ClientError) as err:
            with self.lock:
                self.error = self.error or EmulatorError(f"SQS: {err}")

    def _gather(self, sqs: Any, wait: int) -> list[dict[str, Any]]:
        """Up to batch_size messages: what one receive brings, or with a batching window,
        what further receives bring until the batch is full or the window has passed."""
        messages = self._receive(sqs, min(RECEIVE_MAX, self.batch_size), wait)
        window_end = time.monotonic() + self.batching_window
        while messages and len(messages) < self.batch_size:
            left = window_end - time.monotonic()
            if left <= 0:
                break
            more = self._receive(sqs, min(RECEIVE_MAX, self.batch_size - len(messages)),
                                 min(self.wait_seconds, math.ceil(left)))
            messages += more
        return messages

    def _receive(self, sqs: Any, count: int, wait: int) -> list[dict[str, Any]]:
        return sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _invoke(self, function: Function, sqs: Any, messages: list[dict[str, Any]], poller: int) -> None:
        records = [sqs_record(m, self.queue_arn, self.region) for m in messages]
        ids = [r["messageId"] for r in records]
        started = time.time()
        result = function.invoke({"Records": records})
        if not result["ok"]:
            timed_out = result["error"].get("errorType") == "Sandbox.Timedout"
            outcome, failed = ("timeout" if timed_out else "error"), ids
        else:
            listed = batch_item_failures(result["response"], ids)
            if listed is None:
                outcome, failed = "invalid_response", ids
            else:
                outcome, failed = ("partial" if listed else "success"), listed
        keep = set(failed)
        deleted, delete_errors = self._delete(sqs, [m for m in messages if m["MessageId"] not in keep])
        entry: dict[str, Any] = {
            "poller": poller,
            "request_id": result["request_id"],
            "started": round(started, 3),
            "ms": function.invoke_ms[-1],
            "records": ids,
            "outcome": outcome,
            "failed": failed,
            "deleted": deleted,
            **{k: v for k, v in result.items() if k in ("ok", "response", "error")},
        }
        if delete_errors:
            entry["delete_errors"] = delete_errors
        with self.lock:
            entry = {"invocation": len(self.results), **entry}
            self.results.append(entry)
            if self.on_result is not None:
                self.on_result(entry)

    def _delete(self, sqs: Any, messages: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        deleted, errors = 0, []
        for start in range(0, len(messages), RECEIVE_MAX):
            chunk = messages[start:start + RECEIVE_MAX]
            answer = sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            deleted += len(answer.get("Successful", []))
            errors += [dict(e, MessageId=chunk[int(e["Id"])]["MessageId"]) for e in answer.get("Failed", [])]
        return deleted, errors

    def summary(self, functions: list[Function]) -> dict[str, Any]:
        results = list(self.results)
        sandboxes = [s for f in functions for s in f.stats()["sandboxes"]]
        return {
            "queue_arn": self.queue_arn,
            "stopped": self.stopped,
            "elapsed_s": round(time.monotonic() - self.started, 3),
            "invocations": len(results),
            "records": sum(len(r["records"]) for r in results),
            "deleted": sum(r["deleted"] for r in results),
            "failed": sum(len(r["failed"]) for r in results),
            "errors": sum(r["outcome"] in ("error", "timeout") for r in results),
            "timeouts": sum(r["outcome"] == "timeout" for r in results),
            "invalid_responses": sum(r["outcome"] == "invalid_response" for r in results),
            "results": results,
            "stats": summarize_stats(sandboxes, [ms for f in functions for ms in f.invoke_ms]),
        }


def deliver(binary: str, queue_url: str, env: dict[str, str] | None = None, timeout: float = 60,
            batch_size: int = 10, batching_window: float = 0, wait_seconds: int = LONG_POLL_MAX,
            max_concurrency: int = 1, idle: float = 5, max_time: float = 600,
            endpoint_url: str | None = None, region: str | None = None, logs: Any = None,
            function_name: str | None = None, init_timeout: float | None = None,
            on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Deliver the queue at `queue_url` to `binary` until it stays empty for `idle` seconds or
    `max_time` has passed, and return the summary (see the module's docstring).

    env, timeout (the function's), logs, function_name, init_timeout: as lambda_invoke.Function.
    batch_size, batching_window (seconds), wait_seconds (ReceiveMessage's long poll),
    max_concurrency (pollers, one sandbox each): the mapping's settings.
    endpoint_url, region: the SQS endpoint (default: AWS_ENDPOINT_URL(_SQS) and AWS_REGION
    from `env`, then from os.environ).
    on_result: called with each invocation's entry as it ends (from a poller's thread).
    Raises ValueError for settings Lambda would refuse, MappingError if the binary crashes or
    fails init or an SQS call fails.
    """
    env = dict(env or {})
    sqs = _sqs_client(endpoint_url, region, env)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    _check_settings(attributes, timeout, batch_size, batching_window, wait_seconds, max_concurrency)
    mapping = _Mapping(queue_url, attributes["QueueArn"], batch_size, batching_window, wait_seconds,
                       idle, max_time, on_result)
    functions = [Function(binary, env=env, timeout=timeout, logs=logs, function_name=function_name,
                          init_timeout=init_timeout) for _ in range(max_concurrency)]
    pollers = [threading.Thread(target=mapping.poll, name=f"esm-poller-{n}", daemon=True,
                                args=(function, sqs if n == 0 else _sqs_client(endpoint_url, region, env), n))
               for n, function in enumerate(functions)]
    try:
        for poller in pollers:
            poller.start()
        for poller in pollers:
            while poller.is_alive():
                poller.join(0.5)
    except KeyboardInterrupt:
        with mapping.lock:
            mapping.stopped = "interrupted"
        for poller in pollers:
            poller.join()
        raise
    finally:
        for function in functions:
            function.close()
    summary = mapping.summary(functions)
    if mapping.error is not None:
        raise MappingError(str(mapping.error), summary) from mapping.error
    return summary


def _check_settings(attributes: dict[str, str], timeout: float, batch_size: int, batching_window: float,
                    wait_seconds: int, max_concurrency: int) -> None:
    """Raises ValueError for what CreateEventSourceMapping (or ReceiveMessage) would refuse
    with this queue (`attributes`: its GetQueueAttributes)."""
    fifo = attributes.get("FifoQueue") == "true"
    visibility = int(attributes["VisibilityTimeout"])
    if visibility < timeout:
        raise ValueError(f"Queue visibility timeout: {visibility} seconds is less than "
                         f"Function timeout: {timeout:g} seconds")
    if not 1 <= batch_size <= (RECEIVE_MAX if fifo else 10000):
        raise ValueError(f"batch size {batch_size}: 1 to {RECEIVE_MAX if fifo else 10000} for this queue")
    if not 0 <= batching_window <= 300:
        raise ValueError(f"batching window {batching_window:g} s: 0 to 300")
    if fifo and batching_window:
        raise ValueError("a FIFO queue takes no batching window")
    if batch_size > RECEIVE_MAX and not batching_window:
        raise ValueError("a batch size above 10 needs a batching window of 1 s or more")
    if not 0 <= wait_seconds <= LONG_POLL_MAX:
        raise ValueError(f"wait {wait_seconds} s: 0 to {LONG_POLL_MAX}")
    if max_concurrency < 1:
        raise ValueError("concurrency: 1 or more")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Deliver an SQS queue to a Lambda function binary as an event source mapping does.")
    parser.add_argument("binary", help="the function's executable (bootstrap)")
    parser.add_argument("--queue-url", required=True, help="the queue to deliver")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra environment variable for the function; repeatable")
    parser.add_argument("--timeout", type=float, default=60, help="the function's timeout in seconds")
    parser.add_argument("--init-timeout", type=float, metavar="SECONDS", help="limit on a sandbox's start-up")
    parser.add_argument("--batch-size", type=int, default=10, help="records per batch at most")
    parser.add_argument("--batching-window", type=float, default=0, metavar="SECONDS",
                        help="longest time spent gathering a batch")
    parser.add_argument("--wait", type=int, default=LONG_POLL_MAX, metavar="SECONDS",
                        help="ReceiveMessage's long poll")
    parser.add_argument("--concurrency", type=int, default=1, help="pollers, one sandbox each")
    parser.add_argument("--idle", type=float, default=5, metavar="SECONDS",
                        help="stop once the queue has stayed empty this long")
    parser.add_argument("--max-time", type=float, default=600, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--endpoint-url", help="SQS endpoint (default: AWS_ENDPOINT_URL)")
    parser.add_argument("--region", help="the queue's region (default: AWS_REGION)")
    parser.add_argument("--logs", metavar="FILE", help="write the binary's stdout/stderr here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    try:
        env = parse_env_pairs(args.env)
        if not os.access(args.binary, os.X_OK):
            raise ValueError(f"{args.binary} is not an executable file")
    except ValueError as err:
        print(f"esm: {err}", file=sys.stderr)
        return 2

    def print_result(entry: dict[str, Any]) -> None:
        print(json.dumps(entry), flush=True)

    log_file = open(args.logs, "ab") if args.logs else None
    try:
        summary = deliver(args.binary, args.queue_url, env=env, timeout=args.timeout,
                          batch_size=args.batch_size, batching_window=args.batching_window,
                          wait_seconds=args.wait, max_concurrency=args.concurrency, idle=args.idle,
                          max_time=args.max_time, endpoint_url=args.endpoint_url, region=args.region,
                          logs=log_file, init_timeout=args.init_timeout, on_result=print_result)
    except (ValueError, BotoCoreError, ClientError) as err:
        print(f"esm: {err}", file=sys.stderr)
        return 2
    except MappingError as err:
        err.summary.pop("results")
        print(json.dumps({"summary": err.summary}), flush=True)
        print(f"esm: {err}", file=sys.stderr)
        return 2
    finally:
        if log_file:
            log_file.close()
    summary.pop("results")
    print(json.dumps({"summary": summary}), flush=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
