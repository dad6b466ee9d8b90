"""The import layering of ARCHITECTURE.md: module-level imports between the package's parts go
one way (no cycle, nothing imports a part of a higher layer)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keyless"
# ARCHITECTURE.md's picture, bottom up; parts of one layer never import each other
LAYERS = [
    {"errors", "_lazy", "_atomic"},
    {
        "registry",
        "keymodes",
        "hardware",
        "_imagetypes",
        "invariant",
        "keys",
        "visualize",
        "_schema",
    },
    {"cipher"},
    {"data", "models"},
    {"augment"},
    {"evaluate"},
    {"runs"},
    {"upload"},
    {"runs._evaluate", "train"},  # runs._evaluate replays the owner: above upload, on purpose
    {"reproduce", "demo", "attacks", "serve"},
    {"cli"},
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """The part of the package ``module`` belongs to (``runs._evaluate`` is its own)."""
    parts = module.split(".")[1:]
    return "runs._evaluate" if parts[:2] == ["runs", "_evaluate"] else (parts or ["__init__"])[0]


def _edges() -> set[tuple[str, str, str]]:
    """(importer part, imported part, file) for every module-level import inside keyless."""
    edges = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:  # module level only, as ARCHITECTURE says
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("keyless") and _part(name) != _part(module):
                    edges.add((_part(module), _part(name), str(path.relative_to(PACKAGE))))
    return edges


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
             for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__", "samples"}  # fmt: skip
    assert parts <= set(LAYER), parts - set(LAYER)


def test_imports_go_down_the_layers_only():
    edges = [e for e in _edges() if e[0] != "__init__"]  # keyless/__init__.py sits on top
    upward = [e for e in edges if e[1] == "__init__" or LAYER[e[1]] >= LAYER[e[0]]]
    assert not upward, upward
