"""The layout's numbers (issue 10's proof): modules directly in tracec/, the largest modules, imports of
another module's `_private` names, and import cycles counting imports inside functions.

    python benchmarks/structure.py [ROOT]

An import `from P import X` is an edge to the submodule P.X when X is one (the package P is already
initialised by then), else to P; every import statement counts, at any depth of the code."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = {"tracec": "tracec", "tracec.runtime": "runtime", "tracec.transforms": "transforms"}


def modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if package == "tracec" and parts and parts[0] in {"runtime", "transforms"}:
                continue
            found.setdefault(name, path)
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], list[str]]:
    """(modules this one imports, `_private` names it takes from another module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges, private = set(), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    edges.add(f"{base}.{alias.name}")
                elif base in known:
                    edges.add(base)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name} imports {base}.{alias.name}")
    edges.discard(name)
    return edges, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    known = modules(root)
    graph, private = {}, []
    for name, path in known.items():
        graph[name], taken = imports(name, path, known)
        private += taken
    top = [p for p in (root / "tracec").glob("*.py")]
    sizes = sorted(((len(p.read_text(encoding="utf-8").splitlines()), n) for n, p in known.items()), reverse=True)
    print(f"modules directly in tracec/: {len(top)}")
    print(f"modules in all: {len(known)}")
    print("largest modules: " + ", ".join(f"{name} {lines}" for lines, name in sizes[:3]))
    print(f"imports of another module's _private names: {len(private)}")
    for line in private:
        print(f"  {line}")
    groups = cycles(graph)
    print(f"import cycles (strongly connected groups): {len(groups)}")
    for group in groups:
        print("  " + " <-> ".join(group))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
