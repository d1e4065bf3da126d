"""Command line: an expression's value and derivatives by every mode, side by side.

``python -m hybridad`` runs the textbook example f(x1, x2) = ln(x1) + x1*x2 - sin(x2)
at (2, 5), with its forward and reverse traces; ``python -m hybridad "EXPR" --at x=1``
does the same for any expression. Errors are one paragraph and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import hybridad as hd
from hybridad.cli import report
from hybridad.cli.modes import UsageError, make_problem, parse_point, run_modes

DEFAULT_EXPRESSION = "log(x1) + x1*x2 - sin(x2)"
DEFAULT_POINT = ["x1=2", "x2=5"]

EPILOG = """examples:
  python -m hybridad                                  the textbook example, with traces
  python -m hybridad "x**3 + 2*x" --at x=1.5
  python -m hybridad "arctan2(y, x) * exp(-x*y)" --at x=1 y=2 --wrt y
  python -m hybridad "log(x1) + x1*x2 - sin(x2)" --at x1=2 x2=5 --hessian --trace reverse
  python -m hybridad "tanh(a*x + b)" --at a=0.5 x=1 b=0.1 --batch 10000
  python -m hybridad "sin(x)*exp(y)" --at x=1 y=2 --dot f.dot   (f.svg needs Graphviz)
  python -m hybridad "u = x*y; u*sin(u)" --at x=1 y=2            a let-binding

modes: symbolic (the derivative DAG evaluated), forward tape (one tangent sweep per
variable), reverse tape (one adjoint sweep), LLVM kernel (value and gradient compiled
together), finite differences (hd.numeric, --method). Expressions use hybridad's own
parser (functions: sin cos tan exp log log1p expm1 sqrt abs tanh sigmoid ..., ** for
powers, 'u = x*y; u*sin(u)' bindings); nothing is eval'd.
"""


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hybridad", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Value and derivatives of an expression by every mode side by side "
                    "(symbolic, forward tape, reverse tape, LLVM kernel, finite "
                    "differences): their agreement, time per call and DAG sizes.")
    parser.add_argument("expression", nargs="?", default=None,
                        help=f"expression to differentiate (default: {DEFAULT_EXPRESSION})")
    parser.add_argument("--at", nargs="+", metavar="NAME=VALUE", default=None,
                        help="the point, one NAME=VALUE per symbol")
    parser.add_argument("--wrt", nargs="+", metavar="NAME", default=None,
                        help="variables to differentiate (default: every symbol, by name)")
    parser.add_argument("--method", default="central", choices=hd.numeric.METHODS,
                        help="finite-difference method (default: central)")
    parser.add_argument("--trace", nargs="?", const="both",
                        choices=("forward", "reverse", "both"), default=None,
                        help="print the textbook evaluation traces: forward, reverse or "
                             "both (a bare --trace; the default example prints both)")
    parser.add_argument("--hessian", action="store_true",
                        help="also the Hessian by every mode")
    parser.add_argument("--batch", type=int, metavar="N", default=None,
                        help="also time every mode on N points near the given one")
    parser.add_argument("--dot", type=Path, metavar="FILE", default=None,
                        help="write a Graphviz picture of f and its gradient (.dot, or "
                             ".svg/.png/.pdf when Graphviz's dot is installed)")
    return parser.parse_args(argv)


def build_report(args: argparse.Namespace) -> str:
    """Everything printed for one invocation."""
    default = args.expression is None
    expression = DEFAULT_EXPRESSION if default else args.expression
    point = parse_point(args.at if args.at is not None else
                        (DEFAULT_POINT if default else []))
    problem = make_problem(expression, point, args.wrt)
    results = run_modes(problem, args.method, args.hessian)
    lines = report.header(problem, point) + [""] + report.point_table(problem, results)
    lines += [""] + report.agreement(problem, results) + report.notes(results)
    lines += [""] + report.sizes(problem)
    if args.hessian:
        lines += [""] + report.hessian_section(problem, results)
    if args.batch is not None:
        batch_problem = make_problem(expression, point, args.wrt, batch=args.batch)
        batch_results = run_modes(batch_problem, args.method, False)
        lines += [""] + report.batch_table(batch_problem, batch_results)
        lines += report.agreement(batch_problem, batch_results)
    trace = args.trace or ("both" if default else None)
    if trace is not None:
        lines += report.traces(problem, ["forward", "reverse"] if trace == "both" else [trace])
    if args.dot is not None:
        gradient = {f"df/d{v.name}": g for v, g in zip(problem.variables, problem.gradient)}
        text = hd.to_dot({"f": problem.f}, derivatives=gradient or None)
        written = hd.render_dot(text, args.dot)
        lines += ["", f"picture of f and its gradient written to {written}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        print(build_report(args))
    except (UsageError, hd.HybridadError, ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
