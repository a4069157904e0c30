"""The house rules of the package's imports, checked on the source (no import executed):
no import cycle between modules (lazy imports inside functions count too), and no module
imports a private module or a private name of another subpackage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "src" / "imbalanced_dp"
PACKAGE = "imbalanced_dp"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules: dict[str, Path]):
    """Yield ``(importer, imported module, imported name or None, line)`` for every import of
    a module of this package."""
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }  # imports for type checkers only never run
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        yield name, alias.name, None, node.lineno
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, is_package, node)
                if target.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:  # "from . import _kernel": a module
                        yield name, sub, None, node.lineno
                    else:
                        yield name, target, alias.name, node.lineno


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_private_module(module: str) -> bool:
    return any(p.startswith("_") and p != "__main__" for p in module.split(".")[1:])


def _owner(module: str, modules: dict[str, Path]) -> str:
    """The module an import lands in: the imported module itself, or the package whose
    ``__init__`` provides the name."""
    return module if module in modules else module.rsplit(".", 1)[0]


def test_no_import_cycles():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for importer, module, _, _ in _imports(modules):
        target = _owner(module, modules)
        if target in modules and target != importer:
            graph[importer].add(target)
        # importing a package's submodule runs the package's __init__ first
        parts = target.split(".")
        for i in range(2, len(parts)):
            parent = ".".join(parts[:i])
            if parent in modules and parent != importer and not importer.startswith(parent + "."):
                graph[importer].add(parent)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == [], f"import cycles: {cycles}"


def test_no_private_imports_across_subpackages():
    modules = _modules()
    bad = []
    for importer, module, name, line in _imports(modules):
        if _subpackage(importer) == _subpackage(module):
            continue
        where = f"{modules[importer].relative_to(ROOT.parent)}:{line}"
        if _is_private_module(module):
            bad.append(f"{where}: imports private module {module}")
        elif name is not None and name.startswith("_"):
            bad.append(f"{where}: imports private name {module}.{name}")
    assert bad == [], "\n".join(dict.fromkeys(bad))


@pytest.mark.parametrize("module", ["imbalanced_dp.engines", "imbalanced_dp.reports"])
def test_the_check_sees_real_imports(module):
    """The checks above are not vacuous: they find this package's imports."""
    modules = _modules()
    found = {m for importer, m, _, _ in _imports(modules) if importer.startswith(module)}
    assert any(m.startswith(PACKAGE) for m in found)
