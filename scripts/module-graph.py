#!/usr/bin/env python3
"""Prints the import graph between the broker's top-level modules and fails on a
cycle (docs/architecture.md, "Layers").

A module is a file or folder directly under broker/src. An edge A -> B is any
`crate::B` path written in A's files. The top of the graph (`state`, `server`,
`http`, `cli`, `demo`, `bench`, `lib`) may name anything and is left out of the
cycle check: it is where the features are put together.

    scripts/module-graph.py            # edges and cycles; exit 1 on a cycle
    scripts/module-graph.py --dot      # Graphviz
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "broker" / "src"
TOP = {"state", "server", "http", "cli", "demo", "bench", "lib", "main", "testing"}
PATH = re.compile(r"\bcrate::([a-z_]+)")
GROUP = re.compile(r"\buse crate::\{([^;]*)\};", re.S)


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def graph() -> dict[str, set[str]]:
    modules = {module_of(p) for p in SRC.rglob("*.rs")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for path in SRC.rglob("*.rs"):
        text = path.read_text()
        # Doc tests and comments name paths too; only code counts.
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        src = module_of(path)
        names = set(PATH.findall(code))
        for group in GROUP.findall(code):
            names |= {n.split("::")[0].strip() for n in group.split(",")}
        for name in names:
            if name in modules and name != src:
                edges[src].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    features = {m: {n for n in e if n not in TOP} for m, e in edges.items() if m not in TOP}
    found, seen = [], set()

    def visit(node, stack):
        for nxt in sorted(features.get(node, ())):
            if nxt in stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif len(stack) < 12:
                visit(nxt, stack + [nxt])

    for start in sorted(features):
        visit(start, [start])
    return found


def main() -> int:
    edges = graph()
    if "--dot" in sys.argv:
        print("digraph broker {")
        for src, dsts in sorted(edges.items()):
            for dst in sorted(dsts):
                print(f'  "{src}" -> "{dst}";')
        print("}")
        return 0
    for src, dsts in sorted(edges.items()):
        print(f"{src:>14} -> {', '.join(sorted(dsts)) or '-'}")
    found = cycles(edges)
    for cycle in found:
        print("cycle: " + " -> ".join(cycle))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
