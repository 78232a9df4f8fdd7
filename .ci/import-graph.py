#!/usr/bin/env python3
"""The module import graph of a crate, and its cycles.

    .ci/import-graph.py src host-test/src      (exit 1 if a crate's modules import in a circle)

A module is a top-level file (`foo.rs`) or folder (`foo/`) under the crate's source root; an
edge A -> B is any `crate::B` path in A's code outside comments and `#[cfg(test)]` modules.
Inside a folder, the files are checked the same way (`crate::foo::B` and `super::B`).
Prints each crate's edges in layers (a module only imports modules of lower layers).
"""
import re
import sys
from pathlib import Path


def code_of(path: Path) -> str:
    text = path.read_text()
    # Unit tests may use anything: drop `#[cfg(test)] mod tests { ... }` (always last here)
    # and `#[cfg(test)] mod tests;` declarations.
    text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*;", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    # Comments (doc comments included: links are not imports), and string literals.
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text


def graph(root: Path, path=("crate",)):
    """The edges between the modules in folder `root`, whose own path is `path`."""
    modules = {}
    for p in sorted(root.iterdir()):
        if p.is_file() and p.suffix == ".rs" and p.stem not in ("lib", "main", "mod"):
            modules[p.stem] = [p]
        elif p.is_dir():
            files = [f for f in p.rglob("*.rs") if f.name != "tests.rs"]
            modules[p.name] = files
    prefix = r"\b" + "::".join(path) + r"::(\w+)"
    edges = {m: set() for m in modules}
    for m, files in modules.items():
        for f in files:
            code = code_of(f)
            targets = re.findall(prefix, code)
            if len(path) > 1 and f.parent == root:
                targets += re.findall(r"\bsuper::(\w+)", code)
            for target in targets:
                if target in modules and target != m:
                    edges[m].add(target)
    return edges


def folders(root: Path, path=("crate",)):
    """`root` and every module folder below it, with its module path."""
    yield root, path
    for p in sorted(root.iterdir()):
        if p.is_dir():
            yield from folders(p, path + (p.name,))


def cycles(edges):
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return found


def layers(edges):
    level = {}
    def depth(m, seen=()):
        if m in level:
            return level[m]
        if m in seen:
            return 0
        d = 1 + max((depth(n, seen + (m,)) for n in edges[m]), default=-1)
        level[m] = d
        return d
    for m in edges:
        depth(m)
    out = {}
    for m, d in level.items():
        out.setdefault(d, []).append(m)
    return [sorted(out[d]) for d in sorted(out)]


def main():
    failed = False
    for top in sys.argv[1:] or ["src"]:
        for root, path in folders(Path(top)):
            edges = graph(root, path)
            if not any(edges.values()):
                continue
            print(f"{root}:")
            for i, layer in enumerate(layers(edges)):
                for m in layer:
                    deps = ", ".join(sorted(edges[m])) or "-"
                    print(f"  layer {i}: {m:<12} -> {deps}")
            for c in cycles(edges):
                failed = True
                print(f"  CYCLE: {' -> '.join(c)}")
    if failed:
        sys.exit(1)
    print("no import cycles")


main()
