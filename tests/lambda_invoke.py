#!/usr/bin/env python3
"""Run a Lambda function binary locally through an emulated Lambda Runtime API.

Usage:
    python tests/lambda_invoke.py BINARY (--event FILE | --payload JSON)...
        [--env K=V]... [--stats] [--timeout 60] [--init-timeout SECONDS] [--logs FILE]

The binary (a Rust `lambda_runtime` 1.x function, or anything speaking the
same protocol) is spawned with os.environ + the Lambda variables + --env, and
AWS_LAMBDA_RUNTIME_API pointing at an HTTP server on 127.0.0.1 (a free port).
Events are handed out one at a time on
    GET  /2018-06-01/runtime/invocation/next
and answered on
    POST /2018-06-01/runtime/invocation/{request_id}/response | /error
(a failed init posts /2018-06-01/runtime/init/error). Afterwards the binary is
terminated and reaped with os.wait4 for its resource usage.

Timeouts, as Lambda applies them. --timeout is the function's configured timeout: each
invocation's Lambda-Runtime-Deadline-Ms is now + timeout. An invocation that has not
answered by then is not waited for: its sandbox is killed (SIGKILL) and its result is
Lambda's own error,
    {"errorType": "Sandbox.Timedout",
     "errorMessage": "RequestId: <id> Error: Task timed out after 3.00 seconds"}
and the next event gets a fresh sandbox (a new process: a cold start again). Start-up,
up to the binary's first /next, has its own limit, --init-timeout (default: Lambda's 10 s
Init limit, or the timeout if longer); past it the emulator gives up (exit 2).

stdout: one JSON line per event,
    {"event": FILE, "ok": true, "response": ...}
    {"event": FILE, "ok": false, "error": {"errorType": ..., "errorMessage": ...}}
and with --stats a last line
    {"stats": {"cold_start_ms", "invoke_ms": [...], "cpu_user_ms", "cpu_sys_ms", "max_rss_kib",
               "sandboxes": [{"pid", "cold_start_ms", "invocations", "end", "exit",
                              "cpu_user_ms", "cpu_sys_ms", "max_rss_kib"}, ...]}}
(cold_start_ms is the first sandbox's; cpu is summed and max_rss_kib is the peak over the
sandboxes; a sandbox's "end" is "shutdown", "timeout", "crash" or "init").
The binary's own stdout/stderr (its logs) go to this script's stderr, or to --logs FILE.

Exit code: 0 every invocation succeeded, 1 some returned an error (a timeout included),
2 emulator problem (binary crashed or failed init, start-up too slow, bad arguments).

As a library:
    from lambda_invoke import invoke
    results, stats = invoke("target/debug/backup", [{"detail": {}}], env={...}, timeout=60)
or, to feed events one by one to a long-lived sandbox (reused while warm, as Lambda does):
    from lambda_invoke import Function
    with Function("target/debug/backup", env={...}, timeout=60) as function:
        result = function.invoke({"detail": {}})   # {"ok": ..., "response"|"error", "request_id"}
    stats = function.stats()
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
        # TCP_NODELAY: a response goes out as headers then body; with Nagle, the body waited for
        # the client's delayed ACK of the headers, 40 ms on every warm invocation.
        disable_nagle_algorithm = True

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


INIT_LIMIT = 10.0  # seconds: Lambda's limit on an on-demand sandbox's Init phase


def timeout_error(request_id: str, timeout: float) -> dict[str, str]:
    """The error Lambda reports for an invocation still running at its deadline."""
    return {"errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"}


def summarize_stats(sandboxes: list[dict[str, Any]], invoke_ms: list[float]) -> dict[str, Any]:
    """The stats of a run over one or more sandboxes: the first cold start, every
    invocation's duration, CPU summed and the peak RSS over them, and each sandbox's own."""
    peaks = [s["max_rss_kib"] for s in sandboxes if s["max_rss_kib"] is not None]
    return {
        "cold_start_ms": sandboxes[0]["cold_start_ms"] if sandboxes else None,
        "invoke_ms": list(invoke_ms),
        "cpu_user_ms": round(sum(s["cpu_user_ms"] for s in sandboxes), 3),
        "cpu_sys_ms": round(sum(s["cpu_sys_ms"] for s in sandboxes), 3),
        "max_rss_kib": max(peaks) if peaks else None,  # KiB
        "sandboxes": sandboxes,
    }


class _Sandbox:
    """One execution environment: the binary's process and the Runtime API server it polls.
    Lives until it is stopped, crashes, or is killed past an invocation's deadline."""

    def __init__(self, binary: str, env: dict[str, str], logs: Any):
        self.state = _RuntimeState()
        self.server = _QuietServer(("127.0.0.1", 0), _make_handler(self.state))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.invocations = 0
        self.end: str | None = None
        self.exit_status: int | None = None
        self.rusage: Any = None
        self.hwm_kib: int | None = None
        self.closed = False
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [binary], env=dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.server.server_port}"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as err:
            self.server.shutdown()
            self.server.server_close()
            raise EmulatorError(f"cannot start {binary}: {err}") from err
        self.pumps = [threading.Thread(target=_pump, args=(s, logs), daemon=True)
                      for s in (self.proc.stdout, self.proc.stderr)]
        for pump in self.pumps:
            pump.start()

    def _reap(self, block: bool) -> bool:
        """Reaps the child with wait4 (never Popen.poll, which would lose the rusage)."""
        if self.exit_status is not None:
            return True
        pid, status, usage = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.exit_status, self.rusage = status, usage
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
        return True

    def _check_alive(self, what: str) -> None:
        """Raises EmulatorError if the binary failed init or exited (call with the lock held)."""
        if self.state.init_error is not None:
            self.end = "init"
            raise EmulatorError(f"init error: {json.dumps(self.state.init_error)}")
        if self._reap(False):
            self.end = "crash"
            raise EmulatorError(f"binary {_describe_status(self.exit_status)} while {what}")

    def wait_ready(self, limit: float) -> None:
        """Waits for the binary's first /next (the end of Init), at most `limit` seconds."""
        deadline = self.started + limit
        what = "starting (waiting for the first /next)"
        with self.state.cond:
            while self.state.first_next is None:
                self._check_alive(what)
                if time.monotonic() > deadline:
                    self.end = "init"
                    raise EmulatorError(f"timed out after {limit}s while {what}")
                self.state.cond.wait(0.05)

    def run(self, inv: dict[str, Any], deadline: float, what: str) -> dict[str, Any] | None:
        """Hands `inv` to the binary and waits for its answer until `deadline` (monotonic).
        Returns the result, or None if the deadline passed first (then kill the sandbox)."""
        self.invocations += 1
        state = self.state
        with state.cond:
            state.pending = inv
            state.cond.notify_all()
            while "result" not in inv:
                self._check_alive(what)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # Too late: an answer racing the kill is refused (unknown request id).
                    state.pending = state.current = None
                    return None
                state.cond.wait(min(0.05, remaining))
        return inv["result"]

    def kill(self) -> None:
        """Kills the binary now, as Lambda does with a sandbox past its deadline."""
        self.end = "timeout"
        if not self._reap(False):
            self.hwm_kib = _vm_hwm_kib(self.proc.pid)
            self.proc.kill()
            self._reap(True)
        self._close()

    def stop(self) -> None:
        """Stops the binary while it waits on /next (as Lambda's shutdown does): SIGTERM,
        up to 2 s to exit cleanly, then SIGKILL."""
        self.end = self.end or "shutdown"
        if not self._reap(False):
            # The peak RSS of the binary itself, read before it exits: after fork the child's
            # rusage ru_maxrss starts from this (Python) parent's RSS, so it over-reports a small
            # process; /proc's VmHWM belongs to the exec'd image alone.
            self.hwm_kib = _vm_hwm_kib(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            for _ in range(40):
                if self._reap(False):
                    break
                time.sleep(0.05)
            else:
                self.proc.kill()
                self._reap(True)
        self._close()

    def _close(self) -> None:
        """Releases the handler thread that holds a /next, then the logs and the server."""
        if self.closed:
            return
        self.closed = True
        with self.state.cond:
            self.state.closing = True
            self.state.cond.notify_all()
        for pump in self.pumps:
            pump.join(timeout=2)
        self.server.shutdown()
        self.server.server_close()

    def stats(self) -> dict[str, Any]:
        first_next = self.state.first_next
        usage = self.rusage
        return {
            "pid": self.proc.pid,
            "cold_start_ms": None if first_next is None else round((first_next - self.started) * 1000, 3),
            "invocations": self.invocations,
            "end": self.end,  # None while it runs
            "exit": None if self.exit_status is None else _describe_status(self.exit_status),
            "cpu_user_ms": round(usage.ru_utime * 1000, 3) if usage else 0.0,
            "cpu_sys_ms": round(usage.ru_stime * 1000, 3) if usage else 0.0,
            "max_rss_kib": self.hwm_kib if self.hwm_kib is not None else (usage.ru_maxrss if usage else None),
        }


class Function:
    """A Lambda function: a binary, its configuration, and the sandbox that runs it.

    invoke() hands one event to the warm sandbox, starting one first if there is none (a
    cold start: at the first event, and after a timeout killed the previous one).
    binary: the function's executable (bootstrap).
    env: extra variables (override os.environ and the Lambda defaults).
    timeout: the function's timeout in seconds: the deadline handed out with each event,
        past which the sandbox is killed and the invocation reported as Sandbox.Timedout.
    init_timeout: the emulator's own limit on start-up, up to the binary's first /next
        (default: Lambda's 10 s Init limit, or `timeout` if longer).
    logs: where the binary's stdout/stderr go (a stream; default sys.stderr).
    A crash or a failed init raises EmulatorError (the next invoke starts a new sandbox).
    Call close() (or use `with`) when done; stats() then gives the final figures.
    """

    def __init__(self, binary: str, env: dict[str, str] | None = None, timeout: float = 60,
                 logs: Any = None, function_name: str | None = None,
                 init_timeout: float | None = None):
        self.binary = os.path.abspath(binary)
        self.name = function_name or os.path.basename(self.binary)
        self.env = dict(env or {})
        self.timeout = float(timeout)
        self.init_timeout = float(init_timeout) if init_timeout is not None else max(INIT_LIMIT, self.timeout)
        self.logs = logs if logs is not None else sys.stderr
        region = self.env.get("AWS_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        self.region = region
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"
        self.sandbox: _Sandbox | None = None
        self.sandboxes: list[_Sandbox] = []
        self.invoke_ms: list[float] = []

    def _sandbox_env(self) -> dict[str, str]:
        """os.environ + the variables Lambda sets in a new sandbox + `env`."""
        child_env = dict(os.environ)
        child_env.setdefault("AWS_REGION", self.region)
        child_env.setdefault("AWS_DEFAULT_REGION", self.region)
        child_env.update({
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            # one log stream per sandbox, as in CloudWatch
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
            "LAMBDA_TASK_ROOT": os.path.dirname(self.binary),
            "_HANDLER": "bootstrap",
        })
        child_env.update(self.env)
        return child_env

    def _warm_sandbox(self) -> _Sandbox:
        if self.sandbox is None:
            sandbox = _Sandbox(self.binary, self._sandbox_env(), self.logs)
            self.sandboxes.append(sandbox)
            self.sandbox = sandbox
            try:
                sandbox.wait_ready(self.init_timeout)
            except EmulatorError:
                self.sandbox = None
                sandbox.stop()
                raise
        return self.sandbox

    def invoke(self, event: Any) -> dict[str, Any]:
        """Runs one event (a JSON-serialisable object, JSON text or bytes) and returns
        {"ok": True, "response": ...} or {"ok": False, "error": {...}}, plus "request_id"."""
        sandbox = self._warm_sandbox()
        index = len(self.invoke_ms)
        request_id = str(uuid.uuid4())
        queued = time.monotonic()
        inv = {
            "index": index,
            "request_id": request_id,
            "payload": _payload_bytes(event),
            "deadline_ms": int((time.time() + self.timeout) * 1000),
            "function_arn": self.arn,
            "trace_id": _trace_id(),
        }
        try:
            result = sandbox.run(inv, queued + self.timeout, f"handling event {index}")
        except EmulatorError:
            self.sandbox = None
            sandbox.stop()
            raise
        if result is None:
            sandbox.kill()
            self.sandbox = None  # the next event gets a fresh sandbox: a cold start
            result = {"ok": False, "error": timeout_error(request_id, self.timeout)}
            done = time.monotonic()
        else:
            done = inv["done"]
        self.invoke_ms.append(round((done - inv.get("handed_out", queued)) * 1000, 3))
        return dict(result, request_id=request_id)

    def close(self) -> None:
        """Shuts the warm sandbox down, if there is one."""
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            sandbox.stop()

    def stats(self) -> dict[str, Any]:
        """As the CLI's stats line (final once closed)."""
        return summarize_stats([s.stats() for s in self.sandboxes], self.invoke_ms)

    def __enter__(self) -> "Function":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def invoke(binary: str, events: list[Any], env: dict[str, str] | None = None, timeout: float = 60,
           logs: Any = None, function_name: str | None = None,
           init_timeout: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `binary` as a Lambda function and hand it each event in turn (see Function for
    the arguments; `timeout` is the function's timeout).

    Returns (results, stats): results[i] = {"ok": True, "response": ...} or
    {"ok": False, "error": {...}} (Sandbox.Timedout for an invocation past its deadline),
    plus "request_id"; stats as in the CLI.
    Raises EmulatorError if the binary crashes, fails init or is too slow to start; its
    `results` and `stats` hold what was done before.
    """
    function = Function(binary, env=env, timeout=timeout, logs=logs, function_name=function_name,
                        init_timeout=init_timeout)
    results: list[dict[str, Any]] = []
    error: EmulatorError | None = None
    try:
        for event in events:
            results.append(function.invoke(event))
    except EmulatorError as err:
        error = err
    finally:
        function.close()
    stats = function.stats()
    if error is not None:
        error.results, error.stats = results, stats
        raise error
    return results, stats


def parse_env_pairs(items: list[str]) -> dict[str, str]:
    """["K=V", ...] -> {"K": "V"}; ValueError on an item without "=" or a key."""
    env = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--env wants K=V, got {item!r}")
        env[key] = val
    return env


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
    parser.add_argument("--timeout", type=float, default=60,
                        help="the function's timeout in seconds: each event's deadline, past which "
                             "its sandbox is killed (Sandbox.Timedout)")
    parser.add_argument("--init-timeout", type=float, metavar="SECONDS",
                        help="limit on start-up, up to the first /next "
                             f"(default: {INIT_LIMIT:g} s as Lambda's Init, or --timeout if longer)")
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
        env = parse_env_pairs(args.env)
        if not os.access(args.binary, os.X_OK):
            raise ValueError(f"{args.binary} is not an executable file")
    except (OSError, ValueError) as err:
        print(f"lambda_invoke: {err}", file=sys.stderr)
        return 2

    log_file = open(args.logs, "ab") if args.logs else None
    code = 0
    try:
        results, stats = invoke(args.binary, payloads, env=env, timeout=args.timeout, logs=log_file,
                                init_timeout=args.init_timeout)
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
