"""Lower layers never import higher ones: core -> calculus / numeric / interop -> tape ->
backend -> func -> cli (a static check of every import in the package, lazy ones
included; backend/dask_arrays.py once reached into hybridad.func)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "hybridad"
# each layer and the layers it must not import
FORBIDDEN = {
    "core": {"calculus", "numeric", "interop", "tape", "backend", "func", "cli"},
    "calculus": {"tape", "backend", "func", "cli"},
    "numeric": {"tape", "backend", "func", "cli"},
    "interop": {"tape", "backend", "func", "cli"},
    "tape": {"backend", "func", "cli"},
    "backend": {"func", "cli"},
    "func": {"cli"},
}


def _imported_layers(path: pathlib.Path, layer: str) -> set[str]:
    """Top-level folders of hybridad that ``path`` (inside ``layer``) imports."""
    depth = len(path.relative_to(PACKAGE).parts) - 1          # folders below hybridad/
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "hybridad" and len(parts) > 1:
                    found.add(parts[1])
            elif node.level > depth:                          # reaches hybridad/ itself
                module = (node.module or "").split(".")[0]
                found.add(module or "")
            elif node.level == depth and depth == 1:         # a sibling of this layer
                pass
            else:                                             # inside this layer
                found.add(layer)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "hybridad" and len(parts) > 1:
                    found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_a_higher_one(layer: str) -> None:
    offending = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = _imported_layers(path, layer) & FORBIDDEN[layer]
        if bad:
            offending.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not offending, offending
