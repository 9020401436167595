"""Starting tests/moto_server.py as a child process for a Python test: a private server on a
free loopback port, stopped when the test is done."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SERVER = Path(__file__).with_name("moto_server.py")


def start_moto(workdir: Path, env: dict[str, str] | None = None, args: Sequence[str] = (),
               stdin: int | None = None) -> tuple[subprocess.Popen, str]:
    """Starts the server with `args` and returns it with its URL once it accepts connections;
    its log goes to workdir/server.log. The caller stops it (see `stop`)."""
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(SERVER), "--port", "0", *args],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=log,
                                env={**os.environ, **(env or {})})
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + 60
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=1):
                chunk = proc.stdout.readline()
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"moto ready on http://127.0.0.1:"):
            raise RuntimeError(f"moto server did not start: {line!r}\n{log_path.read_text()}")
    except BaseException:
        stop(proc)
        raise
    return proc, line.decode().split()[-1]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_moto(workdir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Yields the server's URL once it accepts connections; its log goes to workdir/server.log."""
    proc, url = start_moto(workdir, env)
    try:
        yield url
    finally:
        stop(proc)
