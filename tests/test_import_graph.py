"""The package graph: every import of hermes_bench points down the layers, never up or across."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hermes_bench

ROOT = Path(hermes_bench.__file__).parent
# Lowest first. A part may import its own layer's leaves and anything below its layer; the two
# apps share a layer and may not import each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "errors",
            "redaction",
            "sockets",
            "http_json",
            "histograms",
            "hit_rate",
            "wire",
            "serving",
            "latency_spec",
            "input_files",
            "gc_pauses",
        }
    ),
    frozenset({"results"}),
    frozenset({"app", "upstream"}),
    frozenset({"stack"}),
    frozenset({"scenarios"}),
    frozenset({"reports"}),
    frozenset({"harness"}),
    frozenset({"__main__", "locustfile"}),  # entry points: `python -m`, `locust -f`
)
LEAVES = LAYERS[0]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
# What each upper part must never import, whatever the layers allow.
FORBIDDEN = {
    "reports": {"scenarios", "app", "upstream", "stack"},
    "app": {"stack", "scenarios", "harness", "upstream"},
    "upstream": {"stack", "scenarios", "harness", "app"},
    "scenarios": {"harness", "reports"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(ROOT).parts
    return relative[0].removesuffix(".py")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, part of hermes_bench) for every import in `path`, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found = set()
        for name in names:
            parts = name.split(".")
            if parts[0] == "hermes_bench" and len(parts) > 1 and parts[1] in LAYER_OF:
                found.add(parts[1])
        for part in sorted(found):
            yield node.lineno, part


def _edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing part, imported part) across parts of the package."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _part(path)
        for line, target in _imports(path):
            if target != source:
                edges.append((str(path.relative_to(ROOT)), line, source, target))
    return edges


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(path) for path in ROOT.rglob("*.py")} - {"__init__"}
    assert parts <= set(LAYER_OF), f"place these in LAYERS: {sorted(parts - set(LAYER_OF))}"


def test_imports_go_down_the_layers_only() -> None:
    upward = [
        f"{file}:{line}: {source} imports {target}"
        for file, line, source, target in _edges()
        if LAYER_OF[target] > LAYER_OF[source]
        or (LAYER_OF[target] == LAYER_OF[source] and source not in LEAVES)
    ]
    assert not upward, "\n".join(upward)


def test_apps_and_reports_keep_out_of_what_they_must_not_know() -> None:
    wrong = [
        f"{file}:{line}: {source} imports {target}"
        for file, line, source, target in _edges()
        if target in FORBIDDEN.get(source, set())
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from hermes_bench.harness import cli\n")
    assert list(_imports(module)) == [(2, "harness")]
