"""Tests for scripts/check_doc_names.py, the CI check that every code name and path
docs/architecture.md quotes exists: it passes on this tree, and a name or a path that does not
exist is caught with its line.

Run: .venv/bin/python -m pytest tests/test_check_doc_names.py -q
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_doc_names  # noqa: E402


def test_architecture_names_only_what_exists() -> None:
    assert check_doc_names.missing(ROOT / "docs" / "architecture.md") == []


def test_a_name_or_path_that_does_not_exist_is_caught(tmp_path: Path) -> None:
    src = tmp_path / "src" / "replicate"
    src.mkdir(parents=True)
    (src / "plan.rs").write_text(
        "use chrono::Utc;\n"
        "pub fn plan_region() {}\n"
        "pub struct Ec2;\n"
        "pub enum Listing {\n    Everything,\n}\n"
        "// wait_for is only said in a comment\n"
        'const WHY: &str = "nor is awaited, in a string";\n'
    )
    doc = tmp_path / "doc.md"
    doc.write_text(
        "\n".join(
            [
                "`plan_region`, `Ec2::plan_region()`, `Listing::Everything`, `Utc::now()`, `WHY`.",
                "`plan_instance_restore` does not exist, nor `Ec2::wait_for`, nor `awaited`.",
                "`commands.rs` is gone; `Backup=true` and `{\"dry_run\": true}` are no names.",
                "`src/replicate/{plan}.rs` is there, `src/replicate/{event,plan}.rs` half there.",
                "```",
                "`wait_for` in a code block is passed over",
                "```",
            ]
        )
    )
    assert check_doc_names.missing(doc, root=tmp_path) == [
        "doc.md:2: `plan_instance_restore`: no plan_instance_restore in the Rust sources",
        "doc.md:2: `Ec2::wait_for`: no wait_for in the Rust sources",
        "doc.md:2: `awaited`: no awaited in the Rust sources",
        "doc.md:3: `commands.rs`: no such file or folder",
        "doc.md:4: `src/replicate/{event,plan}.rs`: no such file or folder",
    ]
