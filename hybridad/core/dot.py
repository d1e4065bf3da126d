"""Graphviz DOT pictures of expression DAGs, and writing them to files.

``to_dot`` draws each distinct node once (the picture is the DAG, not the expanded
tree), with edges from operands to operations and one box per named output. Nodes are
numbered in topological order, so the same graph always gives the same text. The walk
is :func:`topo_order`'s explicit stack: a 100,000-deep chain draws without recursion.
``render_dot`` writes the text, or runs Graphviz's ``dot`` program for pictures.
"""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import HybridadError
from .build import as_expr
from .expr import ARRAY, CONSTANT, SYMBOL, Expr
from .printing import format_constant
from .registry import PRIMITIVES
from .traverse import topo_order

#: fill colour of nodes and outputs reachable only from the derivative roots
DERIVATIVE_COLOUR = "#fdd9b5"
#: seconds ``render_dot`` lets ``dot`` run
RENDER_TIMEOUT = 120.0
#: file suffixes ``render_dot`` writes as text, and those it renders with ``dot``
TEXT_SUFFIXES = (".dot", ".gv")
PICTURE_SUFFIXES = (".svg", ".png", ".pdf")

Roots = Any  # an Expr, a sequence / object array of Expr, or a dict name -> Expr


# -- text helpers (shared with the tape pictures) ---------------------------------------
def quote(text: str) -> str:
    """``text`` as a double-quoted DOT string: backslashes and quotes escaped, line
    breaks as DOT's centred ``\\n`` (so labels cannot end the string or the graph)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return '"' + text.replace("\n", "\\n") + '"'


def attributes(**attrs: Any) -> str:
    """`` [key=value, ...]`` with every value quoted; empty when no attributes."""
    parts = [f"{key}={quote(value)}" for key, value in attrs.items() if value is not None]
    return f" [{', '.join(parts)}]" if parts else ""


def graph_header(title: str | None, comments: Sequence[str] = ()) -> list[str]:
    """The opening lines of a picture: ``digraph``, comments, title, defaults."""
    lines = ["digraph hybridad {"]
    lines += [f"  // {c}" for c in comments]
    if title is not None:
        lines.append(f"  graph{attributes(label=title, labelloc='t')};")
    lines.append(f"  node{attributes(fontname='Helvetica')};")
    lines.append(f"  edge{attributes(fontname='Helvetica', fontsize=10)};")
    return lines


def short_constant(value: float) -> str:
    """A constant's label: integers, inf and nan as printed, others to 6 digits."""
    text, _ = format_constant(value)
    if math.isfinite(value) and not value.is_integer():
        text = f"{value:.6g}"
    return text


def op_label(node: Expr) -> str:
    """An operation's label from the registry's printing entry: its infix symbol
    (``+``, ``**``), ``-`` for negation, otherwise the function name."""
    if node.op == "neg":
        return "-"
    prim = PRIMITIVES[node.op]
    label = prim.infix.symbol if prim.infix is not None else prim.name
    return f"{label} {node.shape}" if node.shape else label


def ordered_operands(node: Expr) -> bool:
    """Whether operand order matters for the picture (non-commutative, 2+ operands)."""
    return len(node.args) > 1 and not PRIMITIVES[node.op].commutative


# -- roots ------------------------------------------------------------------------------
def _named_roots(roots: Roots, names: Sequence[str] | str | None, single: str,
                 prefix: str) -> list[tuple[str, Expr]]:
    """``(label, Expr)`` per root: dict keys, ``names``, ``single`` or ``prefix[i]``."""
    if roots is None:
        return []
    if isinstance(roots, Mapping):
        if names is not None:
            raise ValueError("to_dot: names= cannot be combined with a dict of roots")
        return [(str(k), as_expr(v)) for k, v in roots.items()]
    if isinstance(roots, Expr) or np.ndim(roots) == 0:
        labels = [single]
        exprs = [as_expr(roots)]
    else:
        array = np.asarray(roots, dtype=object)
        indices = list(np.ndindex(array.shape))
        labels = [f"{prefix}[{', '.join(map(str, i))}]" for i in indices]
        exprs = [as_expr(array[i]) for i in indices]
    if names is not None:
        names = [names] if isinstance(names, str) else [str(n) for n in names]
        if len(names) != len(exprs):
            raise ValueError(f"to_dot: {len(names)} names for {len(exprs)} expressions")
        labels = names
    return list(zip(labels, exprs))


# -- nodes and edges --------------------------------------------------------------------
def _node_line(ident: str, node: Expr, derivative_only: bool) -> str:
    """One node definition: symbols as ellipses, constants as small plain text,
    operators as circles, functions as rounded boxes."""
    styles: list[str] = []
    if node.op == SYMBOL:
        attrs = {"label": node.param, "shape": "ellipse"}
    elif node.op == CONSTANT:
        attrs = {"label": short_constant(node.param), "shape": "plaintext", "fontsize": 10}
    elif node.op == ARRAY:
        attrs = {"label": f"array {node.shape}", "shape": "plaintext", "fontsize": 10}
    else:
        infix = node.op == "neg" or PRIMITIVES[node.op].infix is not None
        attrs = {"label": op_label(node), "shape": "circle" if infix else "box"}
        styles += [] if infix else ["rounded"]
    if derivative_only:
        styles.append("filled")
        attrs["fillcolor"] = DERIVATIVE_COLOUR
    if styles:
        attrs["style"] = ",".join(styles)
    return f"  {ident}{attributes(**attrs)};"


def _edge_lines(node: Expr, ids: dict[Expr, str]) -> list[str]:
    """Operand -> operation edges, labelled with the operand position when it matters."""
    ordered = ordered_operands(node)
    return [f"  {ids[a]} -> {ids[node]}{attributes(label=str(i) if ordered else None)};"
            for i, a in enumerate(node.args)]


def _output_lines(roots: list[tuple[str, Expr]], ids: dict[Expr, str], prefix: str,
                  colour: str | None) -> list[str]:
    lines = []
    fill = {"style": "filled", "fillcolor": colour} if colour else {}
    for i, (label, root) in enumerate(roots):
        ident = f"{prefix}{i}"
        lines.append(f"  {ident}{attributes(label=label, shape='box', **fill)};")
        lines.append(f"  {ids[root]} -> {ident};")
    return lines


def to_dot(exprs: Roots, *, derivatives: Roots = None, names: Sequence[str] | str | None
           = None, title: str | None = None) -> str:
    """Graphviz DOT text of the DAG of ``exprs`` (and optionally of ``derivatives``).

    ``exprs`` is an Expr, a sequence or object array of Expr, or a dict name -> Expr;
    each root gets an output box (its dict key, ``names[i]``, ``out[i]``, or ``f``).
    Derivative roots are drawn in the same picture: nodes reachable only from them are
    filled light orange, nodes shared with ``exprs`` are not. Each distinct node is
    drawn once; edges of non-commutative operations carry the operand position.

    >>> import hybridad as hd
    >>> x = hd.symbols("x")
    >>> print(hd.to_dot(hd.sin(x) / x), end="")
    digraph hybridad {
      node [fontname="Helvetica"];
      edge [fontname="Helvetica", fontsize="10"];
      n0 [label="x", shape="ellipse"];
      n1 [label="sin", shape="box", style="rounded"];
      n2 [label="/", shape="circle"];
      n0 -> n1;
      n1 -> n2 [label="0"];
      n0 -> n2 [label="1"];
      out0 [label="f", shape="box"];
      n2 -> out0;
    }
    """
    primal = _named_roots(exprs, names, "f", "out")
    derived = _named_roots(derivatives, None, "df", "d")
    order = topo_order([r for _, r in primal])
    primal_nodes = set(order)
    if derived:  # the same walk continued: primal nodes keep their numbers
        order = topo_order([r for _, r in primal] + [r for _, r in derived])
    ids = {node: f"n{i}" for i, node in enumerate(order)}
    comments = [f"light orange ({DERIVATIVE_COLOUR}): only in the derivatives"] \
        if derived else []
    lines = graph_header(title, comments)
    lines += [_node_line(ids[n], n, n not in primal_nodes) for n in order]
    for node in order:
        lines += _edge_lines(node, ids)
    lines += _output_lines(primal, ids, "out", None)
    lines += _output_lines(derived, ids, "dout", DERIVATIVE_COLOUR)
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- files ------------------------------------------------------------------------------
def render_dot(dot_text: str, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``dot_text`` to ``path``: as text for ``.dot``/``.gv``; as a picture for
    ``.svg``/``.png``/``.pdf`` by running Graphviz's ``dot`` program (no shell)."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        path.write_text(dot_text, encoding="utf-8")
        return path
    if suffix not in PICTURE_SUFFIXES:
        raise ValueError(f"render_dot: unsupported file suffix {path.suffix!r}; use one of "
                         f"{', '.join(TEXT_SUFFIXES + PICTURE_SUFFIXES)}")
    _run_dot(dot_text, path, suffix[1:])
    return path


def _run_dot(dot_text: str, path: pathlib.Path, fmt: str) -> None:
    program = shutil.which("dot")
    if program is None:
        raise HybridadError(
            f"render_dot: writing {path.name} needs Graphviz's 'dot' program, which was not "
            "found on PATH; install Graphviz, or write a .dot file (no Graphviz needed)")
    try:
        result = subprocess.run([program, f"-T{fmt}", "-o", str(path)],
                                input=dot_text.encode("utf-8"), capture_output=True,
                                timeout=RENDER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as error:
        raise HybridadError(f"render_dot: 'dot' did not finish within {RENDER_TIMEOUT:g} s"
                            ) from error
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise HybridadError(f"render_dot: 'dot' failed (exit {result.returncode}): {message}")
