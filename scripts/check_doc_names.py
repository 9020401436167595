#!/usr/bin/env python3
"""Checks that every code name a document quotes exists: each `name`, `a::b` or `name()` in
backquotes must occur as a word in the workspace's Rust sources, and each quoted path
(`shared/src/ec2/mod.rs`, `ec2/sources.rs`, `cli/`) must be a file or folder of the workspace.
What is not shaped like a name or a path (`Backup=true`, `{"dry_run": true}`, prose) is passed
over.

Usage: check_doc_names.py [DOC ...]   (by default docs/architecture.md)
Exit 0 when every name exists, 1 with each missing one and its line.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")
PATH = re.compile(r"^[\w.-]+(/[\w.*{},-]*)+$|^[\w-]+\.(rs|json|py|toml|yaml|md|sh)$")
QUOTED = re.compile(r"`([^`\n]+)`")


def files(root: Path) -> list[str]:
    """The workspace's files, as git tracks them (or every file, outside a checkout)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if listed.returncode == 0:
        return [line for line in listed.stdout.splitlines() if line]
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


def words(root: Path, paths: list[str]) -> set[str]:
    found: set[str] = set()
    for p in paths:
        if p.endswith(".rs"):
            found.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", (root / p).read_text()))
    return found


def path_exists(text: str, paths: list[str]) -> bool:
    text = text.rstrip("/")
    if "{" in text or "*" in text:
        # `shared/src/replicate/{event,plan}.rs`, `functions/*/src/lib.rs`: a pattern
        pattern = re.escape(text).replace(r"\*", "[^/]+")
        pattern = re.sub(
            r"\\\{(.*?)\\\}",
            lambda m: "(" + "|".join(m.group(1).split(r"\,")) + ")",
            pattern,
        )
        return any(re.fullmatch(pattern, p) or re.search("/" + pattern + "$", p) for p in paths)
    return any(p == text or p.startswith(text + "/") or p.endswith("/" + text) or ("/" + text + "/") in ("/" + p) for p in paths)


def missing(doc: Path, root: Path = ROOT) -> list[str]:
    paths = files(root)
    known = words(root, paths)
    problems = []
    in_code_block = False
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_code_block = not in_code_block
            continue
        if in_code_block:
            continue
        for quoted in QUOTED.findall(line):
            q = quoted.strip()
            if NAME.match(q):
                for part in q.removesuffix("()").split("::"):
                    if part not in known:
                        problems.append(f"{doc.name}:{number}: `{q}`: no {part} in the Rust sources")
                        break
            elif PATH.match(q) and not path_exists(q, paths):
                problems.append(f"{doc.name}:{number}: `{q}`: no such file or folder")
    return problems


def main() -> int:
    docs = [Path(a) for a in sys.argv[1:]] or [ROOT / "docs" / "architecture.md"]
    problems = [p for d in docs for p in missing(d.resolve())]
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"doc names: every code name and path quoted in {', '.join(d.name for d in docs)} exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
