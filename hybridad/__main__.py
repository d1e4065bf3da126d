"""Command line: value and derivatives of an expression, by each mode side by side.

Built only on the public API. ``python -m hybridad`` runs the textbook example
f(x1, x2) = ln(x1) + x1*x2 - sin(x2) at (2, 5).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

import hybridad as hd

DEFAULT_EXPRESSION = "log(x1) + x1*x2 - sin(x2)"
DEFAULT_POINT = ["x1=2", "x2=5"]

EPILOG = """examples:
  python -m hybridad
  python -m hybridad "x**3 + 2*x" --at x=1.5
  python -m hybridad "arctan2(y, x) * exp(-x*y)" --at x=1 y=2 --wrt y
  python -m hybridad "log(x1) + x1*x2 - sin(x2)" --at x1=2 x2=5 --method complex
"""


class UsageError(Exception):
    """Bad command-line input: reported in one paragraph with exit status 2."""


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hybridad", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Value and gradient of an expression by symbolic differentiation and "
                    "by finite differences, side by side.")
    parser.add_argument("expression", nargs="?", default=None,
                        help=f"expression to differentiate (default: {DEFAULT_EXPRESSION})")
    parser.add_argument("--at", nargs="+", metavar="NAME=VALUE", default=None,
                        help="the point, one NAME=VALUE per variable")
    parser.add_argument("--wrt", nargs="+", metavar="NAME", default=None,
                        help="variables to differentiate (default: every free symbol)")
    parser.add_argument("--method", default="central", choices=hd.numeric.METHODS,
                        help="finite-difference method for the comparison column")
    return parser.parse_args(argv)


def parse_point(items: Sequence[str]) -> dict[str, float]:
    point: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--at expects NAME=VALUE items, got {item!r}.")
        try:
            point[name.strip()] = float(text)
        except ValueError:
            raise UsageError(f"the value of {name.strip()} must be a number, got "
                             f"{text!r}.") from None
    return point


def _variables(f: hd.Expr, wrt: Sequence[str] | None) -> list[hd.Symbol]:
    names = sorted({s.name for s in _free_symbols(f)}) if wrt is None else list(wrt)
    return [hd.symbols(name) for name in names]


def _free_symbols(f: hd.Expr) -> list[hd.Symbol]:
    from hybridad.core.traverse import free_symbols

    return free_symbols([f])


def report(expression: str, point: dict[str, float], wrt: Sequence[str] | None,
           method: str) -> str:
    """The text printed for one expression at one point."""
    f = hd.parse(expression)
    missing = sorted({s.name for s in _free_symbols(f)} - point.keys())
    if missing:
        raise UsageError(f"no value for {', '.join(missing)}: give it with --at, as in "
                         f"--at {missing[0]}=1.")
    variables = _variables(f, wrt)
    env = {hd.symbols(k): v for k, v in point.items()}
    value = float(f.evaluate(env))
    grad_exprs = hd.gradient(f, variables)
    symbolic = np.array([float(g.evaluate(env)) for g in grad_exprs])
    numeric = _finite_differences(f, variables, env, method)
    return _format_table(f, point, value, variables, symbolic, numeric, method, grad_exprs)


def _finite_differences(f: hd.Expr, variables: list[hd.Symbol], env: dict,
                        method: str) -> np.ndarray:
    start = np.array([env.get(v, 0.0) for v in variables], dtype=np.float64)

    def at(values: np.ndarray) -> float:
        return f.evaluate({**env, **dict(zip(variables, values, strict=True))})

    return hd.numeric.gradient(at, start, method=method) if variables else np.zeros(0)


def _format_table(f, point, value, variables, symbolic, numeric, method, grad_exprs) -> str:
    at = ", ".join(f"{k} = {v:g}" for k, v in point.items())
    lines = [f"f = {f}" if "\n" not in str(f) else f"f = (a DAG of {hd.count_ops(f)} ops)",
             f"at {at}", "", f"value        {value:.15g}", "",
             f"{'derivative':<14}{'symbolic':>24}{'finite diff (' + method + ')':>28}"
             f"{'|difference|':>14}"]
    for v, s, n in zip(variables, symbolic, numeric, strict=True):
        lines.append(f"{'df/d' + v.name:<14}{s:>24.15g}{n:>28.15g}{abs(s - n):>14.2e}")
    lines += ["", f"DAG size: f {hd.count_ops(f)} ops, gradient {hd.count_ops(grad_exprs)} ops"
              f" (as trees: {hd.count_ops(f, tree=True)} and "
              f"{hd.count_ops(grad_exprs, tree=True)})"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    expression = args.expression or DEFAULT_EXPRESSION
    at = args.at if args.at is not None else ([] if args.expression else DEFAULT_POINT)
    try:
        print(report(expression, parse_point(at), args.wrt, args.method))
    except (UsageError, hd.HybridadError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
