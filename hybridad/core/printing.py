"""Text form of expressions, readable back by ``hd.parse`` into the same node.

Small expressions print as infix text with the fewest parentheses the grammar needs.
Once the written-out tree would be large, shared nodes (and any subexpression that
would make a line too long) are printed once as let-bindings::

    v1 = sin(x)
    v2 = v1*v1 + x
    v2/v1

so printing is linear in the DAG size, never in the size of the expanded tree.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .expr import ARRAY, CONSTANT, SYMBOL, Expr
from .registry import PRIMITIVES
from .traverse import parent_counts, topo_order

#: an expression whose expanded tree has at most this many operations prints inline
INLINE_LIMIT = 40

ATOM, POWER, UNARY, PRODUCT, SUM, COMPARISON = 6, 4, 3, 2, 1, 0


def format_constant(value: float) -> tuple[str, int]:
    """Text and precedence of a constant; integers print without a decimal point."""
    if math.isnan(value):
        return "nan", ATOM
    if math.isinf(value):
        return ("inf", ATOM) if value > 0 else ("-inf", UNARY)
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return "-0.0", UNARY
    text = str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return text, (UNARY if value < 0 else ATOM)


def format_array(values: np.ndarray) -> str:
    """A constant array as a nested list (``[[1, 0], [0, 1]]``), or a summary of its shape
    when it has more than 16 elements."""
    if values.size > 16 or (values.size == 0 and values.ndim != 1):
        return f"constant(<array of shape {values.shape}>)"
    return "constant(" + np.array2string(
        values, separator=", ", formatter={"float_kind": lambda v: format_constant(
            float(v))[0]}).replace("\n", "") + ")"


def to_text(root: Expr) -> str:
    """The text of ``root``: infix when small, let-bindings when large.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> print(hd.log(x1) + x1 * x2 - hd.sin(x2))
    log(x1) + x1*x2 - sin(x2)
    """
    order = topo_order([root])
    bound = _nodes_to_bind(root, order)
    prefix = _binding_prefix(order) if bound else ""
    lines: list[str] = []
    text: dict[Expr, tuple[str, int]] = {}
    for node in order:
        text[node] = _format_node(node, text)
        if node in bound:
            name = f"{prefix}{len(lines) + 1}"
            lines.append(f"{name} = {text[node][0]}")
            text[node] = (name, ATOM)
    lines.append(text[root][0])
    return "\n".join(lines)


def _nodes_to_bind(root: Expr, order: list[Expr]) -> set[Expr]:
    """Shared operation nodes, plus nodes whose inline text would get too long."""
    counts = parent_counts([root], order)
    tree = _tree_sizes(order)
    if tree[root] <= INLINE_LIMIT:
        return set()
    bound: set[Expr] = set()
    inline: dict[Expr, int] = {}
    for node in order:
        if not node.args:
            inline[node] = 0
            continue
        size = 1 + sum(0 if a in bound else inline[a] for a in node.args)
        inline[node] = size
        if node is not root and (counts[node] > 1 or size > INLINE_LIMIT):
            bound.add(node)
    return bound


def _tree_sizes(order: list[Expr]) -> dict[Expr, int]:
    size: dict[Expr, int] = {}
    for node in order:
        size[node] = (1 + sum(size[a] for a in node.args)) if node.args else 0
    return size


def _binding_prefix(order: list[Expr]) -> str:
    names = {n.param for n in order if n.op == SYMBOL}
    prefix = "v"
    while any(re.fullmatch(re.escape(prefix) + r"\d+", name) for name in names):
        prefix = "_" + prefix
    return prefix


def _format_node(node: Expr, text: dict[Expr, tuple[str, int]]) -> tuple[str, int]:
    if node.op == SYMBOL:
        return node.param, ATOM
    if node.op == CONSTANT:
        return format_constant(node.param)
    if node.op == ARRAY:
        return format_array(node.param), ATOM
    if node.op == "neg":
        operand, precedence = text[node.args[0]]
        return ("-" + (operand if precedence >= UNARY else f"({operand})")), UNARY
    prim = PRIMITIVES[node.op]
    if prim.format is not None:
        return prim.format(node, [text[a] for a in node.args])
    if prim.infix is None:
        return f"{prim.name}({', '.join(text[a][0] for a in node.args)})", ATOM
    return _format_infix(prim.infix, text[node.args[0]], text[node.args[1]])


def _format_infix(infix, left: tuple[str, int], right: tuple[str, int]) -> tuple[str, int]:
    p = infix.precedence
    if p == COMPARISON:  # comparisons do not chain: parenthesise a comparison operand
        left, right = _paren_if(left, p), _paren_if(right, p)
    # Left-associative: a parenthesis for an equal-precedence right operand; pow is
    # right-associative, so the other way round (and (-x)**2 keeps its parentheses).
    left_needs = left[1] <= p if infix.right_assoc else left[1] < p
    right_needs = right[1] < p if infix.right_assoc else right[1] <= p
    right_needs = right_needs or right[0].startswith("-")  # "a - (-b)", not "a - -b"
    a = f"({left[0]})" if left_needs else left[0]
    c = f"({right[0]})" if right_needs else right[0]
    spaced = p in (SUM, COMPARISON)
    op = f" {infix.symbol} " if spaced else infix.symbol
    return f"{a}{op}{c}", p


def _paren_if(part: tuple[str, int], precedence: int) -> tuple[str, int]:
    return (f"({part[0]})", ATOM) if part[1] <= precedence else part
