#!/usr/bin/env python3
"""Checks the layers of the workspace: no import circle between the top-level modules of any
crate, no module of `shared` naming one of a floor above its own, and a core crate that depends
on no AWS SDK, no Lambda runtime and no tokio (the `aws_lambda_events` types, plain serde
structs, are allowed) and reads no clock.

A module's edges are the `crate::<module>` paths its files name in code and doc comments (a
`use`, a path in an expression, a type, a doc link, `crate::{a, b::c}`, `super::x` where super is the root, and a
name the root re-exports from a module): `crate::tags::Kind` in `src/backup.rs` is the edge
backup -> tags. A folder module (`src/replicate/`) is one node with all its files. A circle is a
strongly connected set of two modules or more; each is printed with one path of the circle and
the file and line of each of its edges.

Usage: check_layers.py [ROOT]   (ROOT: the workspace, by default this script's parent's parent)
Exit 0 when the layers hold, 1 with the circles and forbidden dependencies printed.
"""

import re
import subprocess
import sys
from pathlib import Path

CORE = "backup-core"
# The floors of a crate, lowest first: a module may name modules of its own floor or below,
# never above. Every module of a crate listed here must be on a floor.
LAYERS = {
    "shared": [
        # the adapters: the only code that knows the SDKs, speaking the core's types
        ["aws", "pacing", "ec2", "sqs", "s3", "events", "sts", "kms", "clients", "permissions"],
        # the Lambda plumbing: the invocation pipeline and what it uses
        ["lambda", "metrics", "continuation", "invocation"],
        # the functions' runs
        ["status", "create", "replicate", "expire", "monitor", "drill"],
    ],
}
# Crates the core may not reach, directly or through another crate.
FORBIDDEN_IN_CORE = re.compile(r"^(aws-|tokio|lambda_runtime|hyper|reqwest)")
PATH = re.compile(r"\bcrate::([A-Za-z_][A-Za-z0-9_]*)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}")
SUPER = re.compile(r"\bsuper::([A-Za-z_][A-Za-z0-9_]*)")
# The clock: the core takes the time it needs as an argument.
CLOCK = re.compile(r"\b(?:Utc|Local|SystemTime|Instant)::now\b")


def members(root: Path) -> list[Path]:
    text = (root / "Cargo.toml").read_text()
    block = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
    if not block:
        return []
    return [root / m for m in re.findall(r'"([^"]+)"', block.group(1))]


def code_lines(path: Path):
    """The lines of a Rust file with comments removed (line and block comments; strings are kept,
    which is harmless: a string naming `crate::x` is rare and would only add an edge)."""
    in_block = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        out = []
        i = 0
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                start = line.find("/*", i)
                if start != -1 and (end == -1 or start < end):
                    in_block += 1
                    i = start + 2
                elif end != -1:
                    in_block -= 1
                    i = end + 2
                else:
                    break
            elif line.startswith("///", i) or line.startswith("//!", i):
                # a doc comment's links (`[`crate::x`]`) name the module too
                out.append(line[i + 3 :])
                break
            elif line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                in_block += 1
                i += 2
            else:
                out.append(line[i])
                i += 1
        yield number, "".join(out)


def root_exports(src: Path) -> dict[str, str]:
    """The names the crate root re-exports from its own modules (`pub use config::Config;`):
    `crate::Config` is an edge to `config`."""
    exports: dict[str, str] = {}
    for name in ("lib.rs", "main.rs"):
        path = src / name
        if not path.exists():
            continue
        text = "\n".join(line for _, line in code_lines(path))
        for module, items in re.findall(r"pub use ([a-z_][a-z0-9_]*)::\{?([^;]*?)\}?;", text):
            for item in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:,|$)", items):
                exports[item] = module
    return exports


def module_graph(src: Path, root: Path) -> dict[str, dict[str, list[str]]]:
    """module -> {module it names -> ["file:line", ...]} for one crate's src folder."""
    exports = root_exports(src)
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if len(rel.parts) == 1 and rel.stem in ("lib", "main"):
            continue  # the root declares and re-exports every module: not a layer
        module = rel.parts[0].removesuffix(".rs")
        # `super::` is the crate root in a top-level file and in a folder's mod.rs
        super_is_root = len(rel.parts) == 1 or (len(rel.parts) == 2 and rel.name == "mod.rs")
        edges = graph.setdefault(module, {})
        for number, line in code_lines(path):
            names = PATH.findall(line)
            for group in GROUP.findall(line):
                names += re.findall(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)", group)
            if super_is_root:
                names += SUPER.findall(line)
            for name in names:
                target = exports.get(name, name)
                if target != module:
                    edges.setdefault(target, []).append(f"{path.relative_to(root)}:{number}")
    return graph


def clock_calls(src: Path, root: Path) -> list[str]:
    """Where the code of a crate, its tests aside, reads the clock."""
    found = []
    for path in sorted(src.rglob("*.rs")):
        if path.name == "tests.rs":
            continue
        raws = path.read_text().splitlines()
        for number, line in code_lines(path):
            if line.strip().startswith("#[cfg(test)]"):
                break  # the tests module closes the file
            raw = raws[number - 1].lstrip()
            if raw.startswith("//"):
                continue  # a doc comment may speak of the clock
            if CLOCK.search(line):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def circles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected sets of two modules or more (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue  # a re-exported module of another crate, or a name that is no module
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def one_cycle(graph: dict[str, dict[str, list[str]]], part: list[str]) -> list[str]:
    """A shortest path from the first module of `part` back to itself through `part`."""
    start = part[0]
    inside = set(part)
    came: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came[path[-1]])
                return list(reversed(path)) + [start]
            if w not in came:
                came[w] = v
                queue.append(w)
    return part + [start]


def core_dependencies(root: Path) -> list[str]:
    """The crates the core reaches that it may not (through `cargo tree`)."""
    if not (root / "core" / "Cargo.toml").exists():
        return [f"there is no core crate: {root / 'core' / 'Cargo.toml'} is missing"]
    tree = subprocess.run(
        ["cargo", "tree", "-p", CORE, "-e", "normal,build", "--prefix", "none", "--offline"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if tree.returncode != 0:
        tree = subprocess.run(
            ["cargo", "tree", "-p", CORE, "-e", "normal,build", "--prefix", "none"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    if tree.returncode != 0:
        return [f"cargo tree -p {CORE} failed: {tree.stderr.strip()}"]
    names = {line.split()[0] for line in tree.stdout.splitlines() if line.strip()}
    return [
        f"{CORE} depends on {n}: the core must build without AWS, Lambda or tokio"
        for n in sorted(names)
        if FORBIDDEN_IN_CORE.match(n)
    ]


def floors(crate: str, graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """The edges that go up a floor of `LAYERS[crate]`, and the modules on no floor."""
    layers = LAYERS.get(crate)
    if not layers:
        return []
    floor = {m: i for i, names in enumerate(layers) for m in names}
    problems = [
        f"{crate}: module {m} is on no floor: add it to LAYERS in scripts/check_layers.py"
        for m in sorted(graph)
        if m not in floor
    ]
    for a in sorted(graph):
        for b, places in sorted(graph[a].items()):
            if a in floor and b in floor and floor[b] > floor[a]:
                problems.append(
                    f"{crate}: {a} (floor {floor[a] + 1}) names {b} (floor {floor[b] + 1}), a floor above: {places[0]}"
                )
    return problems


def check(root: Path, with_cargo: bool = True) -> list[str]:
    problems = []
    for crate in members(root):
        src = crate / "src"
        if not src.is_dir():
            continue
        graph = module_graph(src, root)
        problems.extend(floors(crate.name, graph))
        if crate.name == "core":
            problems.extend(
                f"{CORE} reads the clock at {place}: take the time as an argument"
                for place in clock_calls(src, root)
            )
        for part in circles(graph):
            cycle = one_cycle(graph, part)
            lines = [f"import circle in {crate.relative_to(root)}: {' -> '.join(cycle)}"]
            for a, b in zip(cycle, cycle[1:]):
                lines.append(f"  {a} -> {b}: {graph[a][b][0]}")
            if len(part) > len(set(cycle)):
                lines.append(f"  (the circle's modules: {', '.join(part)})")
            problems.append("\n".join(lines))
    if with_cargo:
        problems.extend(core_dependencies(root))
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"layers: no import circle in {len(members(root))} crates; {CORE} has no AWS, Lambda or tokio dependency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
