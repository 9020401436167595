"""Scale tests: each function's real debug binary over about 1,000 resources against a moto
server of its own, EC2's buckets and the functions' pace (EC2_RATE_LIMITS) scaled by one factor
F, and a timeout short enough that the work needs several invocations through the function's
work queue. Each takes about a minute (50 to 80 s with its seeding, on a 2-core machine). The harness, shared with bench/scale, is
tests/scale_harness.py; docs/testing.md says what each asserts.

The binaries are the ones `cargo test --workspace --all-targets` builds (scripts/test runs it
first): target/debug/<function>, or under CARGO_TARGET_DIR.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from moto_process import running_moto  # noqa: E402
from scale_harness import Run, Server, binary, run_create, run_expire, run_replicate  # noqa: E402

N = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A moto server for these tests alone: 1,000 resources would slow every later test's."""
    with running_moto(tmp_path_factory.mktemp("moto-scale")) as url:
        yield Server(url)


def function(name: str) -> Path:
    path = binary(name)
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first (`cargo build --bins`, or scripts/test, which "
                    f"runs `cargo test --workspace --all-targets`); CARGO_TARGET_DIR moves it")
    return path


def check(run: Run, min_invocations: int = 3) -> None:
    """The work was done exactly once, without a failure, and needed several invocations."""
    print(Run.HEADER, run.row(), run.extra, sep="\n")
    assert run.problems() == [], run.row()
    assert run.invocations >= min_invocations, f"several invocations were needed: {run.row()}"
    # The pace held: within twice the bucket-limited time (each new sandbox has a full bucket
    # of its own, so a run can also be quicker than its ideal, never quicker than EC2's).
    assert run.ec2_ideal_s * 0.95 <= run.seconds <= 2 * run.ideal_s + 15, run.row()


def test_a_sweep_of_1000_instances_makes_one_ami_of_each_through_the_queue_and_a_tag_change_mid_sweep_waits_one_record_not_the_sweep(server):
    # F=4: CreateImage at 16 a second after a burst of 160, about 52 s; a 20 s timeout, so the
    # sweep runs through four invocations of the FIFO queue. 15 s in, an instance opts in and
    # its Tag Change event is queued behind the sweep's current record and made from there.
    run = run_create(server, function("create-image"), N, factor=4, timeout=20, logs=io.StringIO(),
                     tag_change_after=15)
    tag_change = run.extra["tag_change"]
    check(run)
    assert run.continuations >= 3, run.row()
    # The sweep's N and the Tag Change's one, all made from the queue.
    assert run.extra["created_reported"] == N + 1, run.extra
    assert tag_change["queued"], tag_change
    assert len(tag_change["created"]) == 1, tag_change
    # Queued behind the sweep's current record (at most 500 backups, about 31 s at this pace),
    # not behind the whole sweep.
    assert tag_change["seconds"] < 40, f"the Tag Change waited: {tag_change}"
    assert tag_change["sweep_left_s"] > 5, f"the sweep was over before the Tag Change: {tag_change}"


def test_a_sweep_of_1000_volumes_makes_one_snapshot_of_each_through_the_queue(server):
    # F=4: CreateSnapshot at 16 a second after a burst of 320, about 43 s; 15 s timeout.
    run = run_create(server, function("create-snapshot"), N, factor=4, timeout=15, logs=io.StringIO())
    check(run)
    assert run.extra["created_reported"] == N, run.extra


def test_1000_available_events_make_one_dr_copy_each_the_limited_ones_through_the_queue(server):
    # F=8: CopyImage at 6.4 a second after a burst of 640, about 56 s of pace, shared by the
    # mapping's two invocations at once (3.2 a second after 320 each: EC2_RATE_SHARED_BY=2), the
    # events on the work queue as the rule puts them, up to 100 to an invocation; the first 20
    # copies meet a full in-flight limit (ResourceLimitExceeded), are deferred and come back
    # through the queue a minute later. A 45 s timeout: a batch of 100 at 3.2 a second is about
    # 31 s, clear of the deadline.
    run = run_replicate(server, function("replicate"), N, factor=8, timeout=45, logs=io.StringIO(),
                        limit_faults=20)
    print(Run.HEADER, run.row(), run.extra, sep="\n")
    assert run.problems() == [], run.row()
    assert run.deferred >= 20 and run.continuations >= 1, run.row()
    assert run.extra["copies"] == N, run.extra
    # Together the two invocations kept within EC2's buckets (80 % of them): none throttled.
    assert run.throttled == 0, run.row()


def test_1000_expired_amis_and_their_snapshots_are_all_removed_through_the_queue(server):
    # F=4: DeregisterImage and DeleteSnapshot at 16 a second each after a burst of 320, about
    # 43 s; a 15 s timeout, so the region is handed on twice.
    run = run_expire(server, function("expire"), N, factor=4, timeout=15, logs=io.StringIO())
    check(run)
    assert run.continuations >= 1, run.row()
    assert run.extra["deregistered"] == N and run.extra["deleted_snapshots"] == N, run.extra
