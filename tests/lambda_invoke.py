#!/usr/bin/env python3
"""Run a Lambda function binary locally through an emulated Lambda Runtime API.

Usage:
    python tests/lambda_invoke.py BINARY (--event FILE | --payload JSON)...
        [--env K=V]... [--stats] [--timeout 60] [--logs FILE]

The binary (a Rust `lambda_runtime` 1.x function, or anything speaking the
same protocol) is spawned with os.environ + the Lambda variables + --env, and
AWS_LAMBDA_RUNTIME_API pointing at an HTTP server on 127.0.0.1 (a free port).
Events are handed out one at a time on
    GET  /2018-06-01/runtime/invocation/next
and answered on
    POST /2018-06-01/runtime/invocation/{request_id}/response | /error
(a failed init posts /2018-06-01/runtime/init/error). Afterwards the binary is
terminated and reaped with os.wait4 for its resource usage.

stdout: one JSON line per event,
    {"event": FILE, "ok": true, "response": ...}
    {"event": FILE, "ok": false, "error": {"errorType": ..., "errorMessage": ...}}
and with --stats a last line
    {"stats": {"cold_start_ms", "invoke_ms": [...], "cpu_user_ms", "cpu_sys_ms", "max_rss_kib"}}
The binary's own stdout/stderr (its logs) go to this script's stderr, or to --logs FILE.

Exit code: 0 every invocation succeeded, 1 some returned an error,
2 emulator problem (binary crashed or failed init, timeout, bad arguments).

As a library:
    from lambda_invoke import invoke
    results, stats = invoke("target/debug/backup", [{"detail": {}}], env={...}, timeout=60)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

API_PREFIX = "/2018-06-01/runtime"
ACCOUNT_ID = "123456789012"


class EmulatorError(Exception):
    """The emulator could not complete: the binary crashed, failed init, or timed out.
    `results` holds the invocations completed before the problem."""

    def __init__(self, message: str, results: list[dict[str, Any]] | None = None,
                 stats: dict[str, Any] | None = None):
        super().__init__(message)
        self.results = results or []
        self.stats = stats


class _RuntimeState:
    """What the HTTP handlers and the driver share, guarded by one condition."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending: dict[str, Any] | None = None  # the event waiting for /next
        self.current: dict[str, Any] | None = None  # the event handed out
        self.first_next: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.closing = False


def _parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _make_handler(state: _RuntimeState):
    next_re = re.compile(rf"^{API_PREFIX}/invocation/next$")
    answer_re = re.compile(rf"^{API_PREFIX}/invocation/([^/]+)/(response|error)$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the runtime client keeps its connection alive

        def log_message(self, fmt: str, *args: Any) -> None:  # keep stderr for the binary's logs
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if not next_re.match(self.path):
                self._send(404, b'{"errorMessage":"unknown path"}')
                return
            with state.cond:
                if state.first_next is None:
                    state.first_next = time.monotonic()
                    state.cond.notify_all()
                while state.pending is None and not state.closing:
                    state.cond.wait(0.5)
                if state.closing:
                    self.close_connection = True
                    return
                inv = state.current = state.pending
                state.pending = None
                inv["handed_out"] = time.monotonic()
            self._send(200, inv["payload"], {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv["request_id"],
                "Lambda-Runtime-Deadline-Ms": str(inv["deadline_ms"]),
                "Lambda-Runtime-Invoked-Function-Arn": inv["function_arn"],
                "Lambda-Runtime-Trace-Id": inv["trace_id"],
            })

        def do_POST(self) -> None:
            body = self._read_body()
            if self.path == f"{API_PREFIX}/init/error":
                with state.cond:
                    state.init_error = _parse_body(body) or {"errorType": self.headers.get(
                        "Lambda-Runtime-Function-Error-Type", "Runtime.InitError")}
                    state.cond.notify_all()
                self._send(202, b'{"status":"OK"}')
                return
            match = answer_re.match(self.path)
            if not match:
                self._send(404, b'{"errorMessage":"unknown path"}')
                return
            request_id, kind = match.groups()
            with state.cond:
                inv = state.current
                if inv is None or inv["request_id"] != request_id or "done" in inv:
                    self._send(400, b'{"errorType":"InvalidRequestID","errorMessage":"unknown or answered request id"}')
                    return
                inv["done"] = time.monotonic()
                if kind == "response":
                    inv["result"] = {"ok": True, "response": _parse_body(body)}
                else:
                    error = _parse_body(body)
                    if not isinstance(error, dict):
                        error = {"errorType": self.headers.get("Lambda-Runtime-Function-Error-Type", "Unhandled"),
                                 "errorMessage": error}
                    inv["result"] = {"ok": False, "error": error}
                state.cond.notify_all()
            self._send(202, b'{"status":"OK"}')

    return Handler


def _payload_bytes(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):  # already JSON text
        return event.encode()
    return json.dumps(event).encode()


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _pump(src: BinaryIO, dest: Any) -> None:
    """Copy the binary's output line by line to `dest` (a text or binary stream)."""
    for line in iter(src.readline, b""):
        try:
            if hasattr(dest, "buffer"):
                dest.buffer.write(line)
            elif "b" in getattr(dest, "mode", ""):
                dest.write(line)
            else:
                dest.write(line.decode("utf-8", "replace"))
            dest.flush()
        except (ValueError, OSError):
            pass
    src.close()


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def _vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set of a live process, from /proc/PID/status (None where unreadable)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class _QuietServer(ThreadingHTTPServer):
    """The binary is terminated while its next long-poll is open: a connection it drops is
    expected, not worth a traceback."""

    def handle_error(self, request, client_address):  # noqa: ANN001
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def invoke(binary: str, events: list[Any], env: dict[str, str] | None = None, timeout: float = 60,
           logs: Any = None, function_name: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `binary` as a Lambda function and hand it each event in turn.

    events: JSON-serialisable objects, JSON text (str) or raw bytes.
    env: extra variables (override os.environ and the Lambda defaults).
    timeout: seconds allowed for start-up and for each invocation.
    logs: where the binary's stdout/stderr go (a stream; default sys.stderr).
    Returns (results, stats): results[i] = {"ok": True, "response": ...} or
    {"ok": False, "error": {...}}, plus "request_id"; stats as in the CLI.
    Raises EmulatorError if the binary crashes, fails init or times out.
    """
    binary = os.path.abspath(binary)
    name = function_name or os.path.basename(binary)
    state = _RuntimeState()
    server = _QuietServer(("127.0.0.1", 0), _make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_port}"

    child_env = dict(os.environ)
    region = (env or {}).get("AWS_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    child_env.setdefault("AWS_REGION", region)
    child_env.setdefault("AWS_DEFAULT_REGION", region)
    child_env.update({
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "LAMBDA_TASK_ROOT": os.path.dirname(binary),
        "_HANDLER": "bootstrap",
    })
    child_env.update(env or {})
    function_arn = f"arn:aws:lambda:{child_env['AWS_REGION']}:{ACCOUNT_ID}:function:{name}"

    results: list[dict[str, Any]] = []
    invoke_ms: list[float] = []
    exit_status: int | None = None
    rusage: Any = None

    def reap(block: bool) -> bool:
        """Reap the child with wait4 (never Popen.poll, which would lose the rusage)."""
        nonlocal exit_status, rusage
        if exit_status is not None:
            return True
        pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        exit_status, rusage = status, usage
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
        return True

    def wait_for(predicate: Any, what: str) -> None:
        deadline = time.monotonic() + timeout
        with state.cond:
            while not predicate():
                if state.init_error is not None:
                    raise EmulatorError(f"init error: {json.dumps(state.init_error)}", results)
                if reap(False):
                    raise EmulatorError(f"binary {_describe_status(exit_status)} while {what}", results)
                if time.monotonic() > deadline:
                    raise EmulatorError(f"timed out after {timeout}s while {what}", results)
                state.cond.wait(0.05)

    start = time.monotonic()
    try:
        proc = subprocess.Popen([binary], env=child_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as err:
        server.shutdown()
        server.server_close()
        raise EmulatorError(f"cannot start {binary}: {err}") from err
    dest = logs if logs is not None else sys.stderr
    pumps = [threading.Thread(target=_pump, args=(s, dest), daemon=True) for s in (proc.stdout, proc.stderr)]
    for t in pumps:
        t.start()

    error: EmulatorError | None = None
    try:
        wait_for(lambda: state.first_next is not None, "starting (waiting for the first /next)")
        for index, event in enumerate(events):
            inv = {
                "index": index,
                "request_id": str(uuid.uuid4()),
                "payload": _payload_bytes(event),
                "deadline_ms": int((time.time() + timeout) * 1000),
                "function_arn": function_arn,
                "trace_id": _trace_id(),
            }
            with state.cond:
                state.pending = inv
                state.cond.notify_all()
            wait_for(lambda: "result" in inv, f"handling event {index}")
            results.append(dict(inv["result"], request_id=inv["request_id"]))
            invoke_ms.append(round((inv["done"] - inv["handed_out"]) * 1000, 3))
    except EmulatorError as err:
        error = err
    finally:
        # The peak RSS of the binary itself, read before it exits: after fork the child's
        # rusage ru_maxrss starts from this (Python) parent's RSS, so it over-reports a small
        # process; /proc's VmHWM belongs to the exec'd image alone.
        hwm_kib = _vm_hwm_kib(proc.pid)
        # Stop the binary while it still waits on /next (as Lambda does), then
        # release the handler thread that holds that request.
        if not reap(False):
            proc.send_signal(signal.SIGTERM)
            for _ in range(40):  # up to 2 s to exit cleanly, then SIGKILL
                if reap(False):
                    break
                time.sleep(0.05)
            else:
                proc.kill()
                reap(True)
        with state.cond:
            state.closing = True
            state.cond.notify_all()
        for t in pumps:
            t.join(timeout=2)
        server.shutdown()
        server.server_close()

    stats = {
        "cold_start_ms": None if state.first_next is None else round((state.first_next - start) * 1000, 3),
        "invoke_ms": invoke_ms,
        "cpu_user_ms": round(rusage.ru_utime * 1000, 3),
        "cpu_sys_ms": round(rusage.ru_stime * 1000, 3),
        "max_rss_kib": hwm_kib if hwm_kib is not None else rusage.ru_maxrss,  # KiB
    }
    if error is not None:
        error.stats = stats
        raise error
    return results, stats


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a Lambda function binary through a local Lambda Runtime API emulator.")
    parser.add_argument("binary", help="the function's executable (bootstrap)")
    parser.add_argument("--event", dest="events", action="append", metavar="FILE",
                        type=lambda f: ("file", f), help="event JSON file ('-' = stdin); repeatable")
    parser.add_argument("--payload", dest="events", action="append", metavar="JSON",
                        type=lambda p: ("json", p), help="event as inline JSON; repeatable")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra environment variable for the function; repeatable")
    parser.add_argument("--stats", action="store_true", help="print a final stats line")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for start-up and per event")
    parser.add_argument("--logs", metavar="FILE", help="write the binary's stdout/stderr here")
    args = parser.parse_args(argv)
    if not args.events:
        parser.error("give at least one --event FILE or --payload JSON")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    labels: list[str] = []
    payloads: list[bytes] = []
    try:
        for n, (kind, value) in enumerate(args.events, 1):
            if kind == "file":
                raw = sys.stdin.buffer.read() if value == "-" else open(value, "rb").read()
                labels.append(value)
            else:
                raw = value.encode()
                labels.append(f"<payload {n}>")
            json.loads(raw)  # fail early on a malformed event
            payloads.append(raw)
        env = {}
        for item in args.env:
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--env wants K=V, got {item!r}")
            env[key] = val
        if not os.access(args.binary, os.X_OK):
            raise ValueError(f"{args.binary} is not an executable file")
    except (OSError, ValueError) as err:
        print(f"lambda_invoke: {err}", file=sys.stderr)
        return 2

    log_file = open(args.logs, "ab") if args.logs else None
    code = 0
    try:
        results, stats = invoke(args.binary, payloads, env=env, timeout=args.timeout, logs=log_file)
    except EmulatorError as err:
        results, stats, code = err.results, err.stats, 2
        problem = str(err)
    finally:
        if log_file:
            log_file.close()
    for label, result in zip(labels, results):
        result.pop("request_id", None)
        print(json.dumps({"event": label, **result}), flush=True)
    if args.stats and stats is not None:
        print(json.dumps({"stats": stats}), flush=True)
    if code == 2:
        print(f"lambda_invoke: {problem}", file=sys.stderr)
        return 2
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
