"""Tests for scripts/check_layers.py, the CI check that the workspace has no import circle,
that shared's floors hold, and that the core crate needs no AWS SDK: it passes on this tree and
catches each kind of fault planted in a small workspace of its own.

Run: .venv/bin/python -m pytest tests/test_check_layers.py -q
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_layers  # noqa: E402


def workspace(tmp_path: Path, files: dict[str, str]) -> Path:
    """A workspace of one crate, `shared`, whose src holds `files` (path -> text)."""
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = [\n    "shared",\n]\n')
    for name, text in files.items():
        path = tmp_path / "shared" / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_this_workspace_has_no_circle_and_a_core_without_aws() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_layers.py")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no import circle" in run.stdout


def test_a_planted_circle_is_found_with_each_edge_and_its_line(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "lib.rs": "pub mod aws;\npub mod ec2;\npub mod sqs;\n",
            "aws.rs": "// crate::sqs in a comment is no edge\n",
            "ec2/mod.rs": "mod backups;\n",
            "ec2/backups.rs": "use crate::sqs::WorkQueue;\n",
            "sqs.rs": "use crate::aws::x;\n\nfn f() { crate::ec2::g() }\n",
        },
    )
    problems = check_layers.check(root, with_cargo=False)
    circles = [p for p in problems if p.startswith("import circle")]
    assert len(circles) == 1, problems
    assert "ec2 -> sqs -> ec2" in circles[0]
    assert "shared/src/ec2/backups.rs:1" in circles[0]
    assert "shared/src/sqs.rs:3" in circles[0]


def test_a_module_naming_a_floor_above_is_refused(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "ec2.rs": "use crate::create::ImageRequest;\n",
            "create.rs": "use crate::ec2::Ec2;\n/* crate::ec2 inside a\n   block comment */\n",
        },
    )
    problems = check_layers.check(root, with_cargo=False)
    assert any("ec2 (floor 1) names create (floor 3)" in p for p in problems), problems
    # the circle is reported too
    assert any(p.startswith("import circle") for p in problems), problems


def test_a_module_on_no_floor_must_be_placed(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"utils.rs": "pub fn f() {}\n"})
    problems = check_layers.check(root, with_cargo=False)
    assert problems == [
        "shared: module utils is on no floor: add it to LAYERS in scripts/check_layers.py"
    ]


def test_a_clean_workspace_passes(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "ec2.rs": "use crate::aws::aws_error;\n",
            "aws.rs": "",
            "create.rs": "use crate::ec2::Ec2;\nuse crate::invocation::Function;\n",
            "invocation.rs": "use crate::sqs::WorkQueue;\n",
            "sqs.rs": "",
        },
    )
    assert check_layers.check(root, with_cargo=False) == []


def test_edges_through_braces_super_and_root_exports_count(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "lib.rs": "pub mod create;\npub mod ec2;\npub use create::Job;\n",
            # an adapter naming a run three ways: each is an edge up a floor
            "ec2/mod.rs": "use crate::{aws, create::ImageRequest};\nuse super::Job;\n",
            "aws.rs": "",
            "sqs.rs": "fn f() -> crate::Job { todo!() }\n",
            "create.rs": "pub struct Job;\n",
        },
    )
    problems = check_layers.check(root, with_cargo=False)
    assert any("ec2 (floor 1) names create (floor 3)" in p and ":1" in p for p in problems), problems
    assert any("sqs (floor 1) names create (floor 3)" in p for p in problems), problems
    assert not any("aws" in p for p in problems), problems


def core_workspace(tmp_path: Path, lib: str, dependencies: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Cargo.toml").write_text('[workspace]\nresolver = "3"\nmembers = ["core"]\n')
    (tmp_path / "core" / "src").mkdir(parents=True)
    (tmp_path / "core" / "Cargo.toml").write_text(
        '[package]\nname = "backup-core"\nversion = "0.1.0"\nedition = "2024"\n\n'
        f"[dependencies]\n{dependencies}"
    )
    (tmp_path / "core" / "src" / "lib.rs").write_text(lib)
    return tmp_path


def test_a_core_that_reads_the_clock_is_refused_but_its_tests_may(tmp_path: Path) -> None:
    root = core_workspace(
        tmp_path,
        "pub fn due() -> bool { std::time::Instant::now().elapsed().is_zero() }\n"
        "#[cfg(test)]\nmod tests {\n    fn t() { let _ = std::time::SystemTime::now(); }\n}\n",
    )
    assert check_layers.check(root, with_cargo=False) == [
        "backup-core reads the clock at core/src/lib.rs:1: take the time as an argument"
    ]


def test_a_core_that_depends_on_tokio_is_refused(tmp_path: Path) -> None:
    # tokio is in this workspace's lock, so cargo resolves it from its cache, offline
    root = core_workspace(tmp_path, "", 'tokio = { version = "1", default-features = false }\n')
    problems = check_layers.check(root)
    assert problems == [
        "backup-core depends on tokio: the core must build without AWS, Lambda or tokio"
    ], problems
    clean = core_workspace(tmp_path / "clean", "")
    assert check_layers.check(clean) == []


def test_a_doc_link_is_an_edge_but_a_plain_comment_is_not(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "ec2.rs": "/// See [`crate::create::Job`].\npub struct Ec2;\n",
            "sqs.rs": "// crate::create is only said here\npub struct WorkQueue;\n",
            "create.rs": "pub struct Job;\n",
        },
    )
    problems = check_layers.check(root, with_cargo=False)
    assert len(problems) == 1, problems
    assert "ec2 (floor 1) names create (floor 3), a floor above: shared/src/ec2.rs:1" in problems[0]
