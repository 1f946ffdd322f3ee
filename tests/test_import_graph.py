"""The house stays clean: no import circle in inflate/, zoo/ and converters/ (imports inside functions
included), converters/ reads file formats without zoo/, and inflate/ imports nothing above it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("inflate", "zoo", "converters")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module that ``name`` imports, at any depth of its code (functions included)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
        for t in targets:
            # the module itself, or the nearest enclosing project module (zoo.x.func -> zoo.x)
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported(name, path, known) for name, path in mods.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def is_inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_in_function_and_relative_imports(tmp_path):
    """The reader itself: an import inside a function and a `from . import x` both count."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from p import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    known = {"p", "p.a", "p.b"}
    assert imported("p.a", pkg / "a.py", known) == {"p", "p.b"}
    assert imported("p.b", pkg / "b.py", known) == {"p", "p.a"}
    assert circles({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}) == [["p.a", "p.b"]]


def test_no_import_circle():
    # an edge to an enclosing package (zoo.models.build -> zoo) is left out: Python runs that package's
    # __init__ before the submodule anyway, so it is the package exporting its parts, not a circle
    g = {m: {t for t in deps if not is_inside(m, t)} for m, deps in graph().items()}
    found = circles(g)
    assert not found, "import circles (each group imports itself back): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_converters_and_inflate_import_nothing_from_zoo():
    bad = [(m, t) for m, deps in graph().items() for t in deps
           if (is_inside(m, "converters") or is_inside(m, "inflate")) and is_inside(t, "zoo")]
    assert not bad, "converters/ and inflate/ must not import zoo/: " + ", ".join(f"{m} -> {t}" for m, t in bad)

