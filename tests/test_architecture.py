"""The package's shape, checked: no import cycles among xscale's modules (counting imports inside
functions), imports inside functions only where they keep start-up fast, and the layers of
docs/ARCHITECTURE.md respected (a lower layer never imports a higher one)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "xscale"

# Third-party libraries slow enough to import (hundreds of ms to seconds) that a command which
# does not need them must not pay for them: the only reason an import may sit inside a function.
HEAVY = frozenset(
    {
        "torch",
        "transformers",
        "deepspeed",
        "ray",
        "mlflow",
        "optuna",
        "datasets",
        "numpy",
        "pandas",
        "pyarrow",
        "matplotlib",
        "scipy",
        "statsmodels",
        "tokenizers",
        "safetensors",
        "seqeval",
        "rich",
        "huggingface_hub",
        "sqlalchemy",  # 140 ms: only to check a database store's driver
    }
)

# Folders in the order data flows through them; a module may import its own layer and those
# listed before it, never one after it (the CLI sits on top, leaves at the bottom).
LAYERS = [
    ("xscale.runtime", "xscale.errors", "xscale"),
    ("xscale.catalog",),
    ("xscale.tasks", "xscale.data"),
    ("xscale.train",),
    ("xscale.sweep",),
    ("xscale.graph", "xscale.tracking"),
    ("xscale.stage",),
    ("xscale.schedule",),
    ("xscale.analyze",),
    ("xscale.cli",),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Fully qualified names an import statement brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        pkg = module.split(".")
        if MODULES[module].name != "__init__.py":
            pkg = pkg[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _own(name: str) -> str | None:
    """The xscale module `name` refers to (a module, or the module defining the symbol)."""
    while name and name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported name, line, inside a function) for every import in `module`."""
    tree = ast.parse(MODULES[module].read_text())
    found = []

    def visit(node, in_func: bool, in_type_check: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never executed
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if isinstance(child, ast.ImportFrom) and child.module == "__future__":
                    continue
                for name in _target(module, child):
                    found.append((name, child.lineno, in_func))
            nested = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, nested, in_type_check)

    visit(tree, False, False)
    return found


def _graph(include_functions: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        deps = set()
        for name, _, in_func in _imports(module):
            own = _own(name) if name.startswith("xscale") else None
            if own and own != module and (include_functions or not in_func):
                deps.add(own)
        graph[module] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
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

    for v in graph:
        if v not in index:
            connect(v)
    return found


def _heavy(module: str, seen: set[str] | None = None) -> bool:
    """Does importing `module` (top-level imports, transitively) import a heavy library?"""
    seen = set() if seen is None else seen
    if module in seen:
        return False
    seen.add(module)
    for name, _, in_func in _imports(module):
        if in_func:
            continue
        if name.split(".")[0] in HEAVY:
            return True
        own = _own(name) if name.startswith("xscale") else None
        if own and own != module and _heavy(own, seen):
            return True
    # a package's submodule also runs its parents' __init__
    parent = module.rsplit(".", 1)[0] if "." in module else None
    return bool(parent and parent in MODULES and _heavy(parent, seen))


def _layer(module: str) -> int:
    best, best_len = -1, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    return best


def test_the_checker_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_xscale_modules():
    cycles = _cycles(_graph(include_functions=True))
    assert not cycles, "import cycles (counting imports inside functions): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_imports_inside_functions_only_keep_start_up_fast():
    """An import inside a function is allowed only for a heavy library, or for an xscale module
    whose own imports pull one in; everything else belongs at the top of the file."""
    bad = []
    for module in sorted(MODULES):
        for name, line, in_func in _imports(module):
            if not in_func:
                continue
            top = name.split(".")[0]
            if top in HEAVY:
                continue
            own = _own(name) if top == "xscale" else None
            if own is not None and _heavy(own):
                continue
            rel = MODULES[module].relative_to(ROOT.parent)
            bad.append(f"{rel}:{line} imports {name} inside a function")
    assert not bad, "move these to the top of their file:\n" + "\n".join(bad)


def test_every_module_belongs_to_a_layer_and_imports_only_below_it():
    wrong = []
    for module, deps in _graph(include_functions=True).items():
        mine = _layer(module)
        assert mine >= 0, f"{module} is in no layer of LAYERS (docs/ARCHITECTURE.md)"
        for dep in deps:
            if _layer(dep) > mine:
                wrong.append(f"{module} (layer {mine}) imports {dep} (layer {_layer(dep)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_cli_imports_nothing_heavy_at_start_up():
    """`xscale --help`, sizes, tasks, plan, status and analyze must answer at once: the CLI's
    modules pull in no heavy library at import time (commands that train import it lazily)."""
    heavy = [m for m in MODULES if m.startswith("xscale.cli") and _heavy(m)]
    assert not heavy, f"heavy imports at start-up in: {', '.join(heavy)}"


def test_every_registered_task_names_a_format_of_the_one_table():
    from xscale.tasks import FORMATS, get_format, trains
    from xscale.tasks.registry import TASKS

    for task in TASKS.values():
        assert task.format in FORMATS, f"{task.name}: format {task.format!r} is not in FORMATS"
        fmt = get_format(task)
        assert fmt.name == task.format or task.format.endswith(fmt.name), (task.name, fmt.name)
        assert trains(task) == (task.format != "retrieval")


def _task_name_branches() -> list[str]:
    """Places outside the task modules that compare something with a task's name, or list or
    key a table (tuple, list, set, dict) by task names: each task's facts belong in its
    module."""
    from xscale.tasks.registry import TASKS

    names = set(TASKS)
    found = []
    for module, path in _modules().items():
        if module.startswith("xscale.tasks.lib") or module == "xscale.tasks.registry":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            literals: list[ast.Constant] = []
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant):
                        literals.append(side)
                    elif isinstance(side, ast.Tuple | ast.List | ast.Set):
                        literals.extend(e for e in side.elts if isinstance(e, ast.Constant))
            elif isinstance(node, ast.Dict):
                literals.extend(k for k in node.keys if isinstance(k, ast.Constant))
            elif isinstance(node, ast.Tuple | ast.List | ast.Set):  # a table of task names
                strings = [e for e in node.elts if isinstance(e, ast.Constant)]
                if strings and len(strings) == len(node.elts):
                    literals.extend(strings)
            for lit in literals:
                if isinstance(lit.value, str) and lit.value in names:
                    found.append(f"{path.relative_to(ROOT.parent)}:{lit.lineno} {lit.value!r}")
    return found


def test_no_branch_on_a_task_name_outside_its_module():
    """A task is one module (tasks/lib/<task>.py) and one row of tasks.registry.TASKS: adding
    or changing a task touches nothing else (issue 24)."""
    assert not _task_name_branches()
