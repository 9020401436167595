#!/usr/bin/env python3
"""Checks that every code name a document quotes exists: each part of a `name`, `a::b` or
`name()` in backquotes must be defined in the workspace's Rust sources (a module, function,
type, trait, constant, macro, enum variant or field; what comments or strings mention does not
count), and each quoted path (`shared/src/ec2/mod.rs`, `ec2/sources.rs`, `cli/`,
`core/src/replicate/{event,plan}.rs`) must be a file or folder of the workspace, every one a
pattern names. What is not shaped like a name or a path (`Backup=true`, `{"dry_run": true}`,
prose) is passed over.

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


DEFINITION = re.compile(
    r"\b(?:fn|struct|enum|trait|const|static|type|mod|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
# An enum variant or a struct field: a name at the start of a line, before `,` `(` `{` or `:`.
MEMBER = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:[,({]|:(?!:))")
# The names a `macro_rules!` table of ours defines (`BackupsCreated: Count,`).
CRATES = {"backup_core", "shared", "crate", "self", "super"}


def code(text: str) -> list[str]:
    """The lines of Rust source with comments and string literals blanked."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    return [line.split("//", 1)[0] for line in text.splitlines()]


def words(root: Path, paths: list[str]) -> tuple[set[str], set[str]]:
    """Every name the Rust sources define, with their file and folder names (modules); and the
    names they bring in from other crates (`Utc`, `Diagnostic`), whose members are not ours to
    check."""
    found: set[str] = set(CRATES)
    external: set[str] = set()
    for p in paths:
        if not p.endswith(".rs"):
            continue
        parts = Path(p).parts
        found.update(part.removesuffix(".rs") for part in parts)
        source = code((root / p).read_text())
        # what a `use` brings in from other crates (`Utc`, `Diagnostic`) names real code too
        for use in re.findall(r"\buse\s+([^;]+);", "\n".join(source)):
            names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", use)
            if names and names[0] not in CRATES:
                external.update(names)
            else:
                found.update(names)
        for line in source:
            found.update(DEFINITION.findall(line))
            member = MEMBER.match(line)
            if member:
                found.add(member.group(1))
    return found | external, external - found


def path_exists(text: str, paths: list[str]) -> bool:
    text = text.rstrip("/")
    braces = re.search(r"\{([^{}]*)\}", text)
    if braces:
        # `core/src/replicate/{event,plan}.rs`: every one of them
        return all(
            path_exists(text[: braces.start()] + choice + text[braces.end() :], paths)
            for choice in braces.group(1).split(",")
        )
    if "*" in text:
        # `functions/*/tests/binary.rs`: at least one
        pattern = re.escape(text).replace(r"\*", "[^/]+")
        return any(re.fullmatch(pattern + "(/.*)?", p) for p in paths)
    return any(
        p == text or p.startswith(text + "/") or ("/" + p).endswith("/" + text)
        or ("/" + text + "/") in ("/" + p)
        for p in paths
    )


def missing(doc: Path, root: Path = ROOT) -> list[str]:
    paths = files(root)
    known, external = words(root, paths)
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
                parts = q.removesuffix("()").split("::")
                if parts[0] in external:
                    parts = parts[:1]
                for part in parts:
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
