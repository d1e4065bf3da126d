"""A five-minute tour of hybridad on f(x1, x2) = log(x1) + x1*x2 - sin(x2).

Shows, at the point (2, 5) by default:

1. three ways to build f: operators, ``hd.parse("...")`` and a Python function; the
   first two return the very same DAG node (hash-consing), and the function, run on
   symbols, builds it too;
2. the symbolic gradient (a DAG, printed as text) and its value;
3. the tape: value, forward sweeps (one tangent per input) and one reverse sweep;
4. ``hybridad.func.grad`` of the Python function (traced once, then compiled);
5. a compiled LLVM kernel from ``hd.lambdify(..., derivatives="gradient")``, on one
   point and on a batch;
6. finite differences (``hd.numeric.gradient``, central and complex step) and
   ``hd.check_grad`` against the exact gradient.

Every route gives value 11.652071455223084 and gradient [5.5, 1.716337814536774]
(df/dx1 = 1/x1 + x2, df/dx2 = x1 - cos(x2)).

    python examples/quickstart.py
    python examples/quickstart.py --at 1.5 -0.5 --traces
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

import hybridad as hd
from hybridad.func import grad

TEXT = "log(x1) + x1*x2 - sin(x2)"


def f_python(x: Any) -> Any:
    """f written as a plain Python function of a 2-vector (traced on symbols)."""
    return hd.log(x[0]) + x[0] * x[1] - hd.sin(x[1])


def f_numpy(x: np.ndarray) -> Any:
    """f with numpy functions, for finite differences (works on complex x too)."""
    return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


def closed_form_gradient(point: np.ndarray) -> np.ndarray:
    """The gradient by hand: (1/x1 + x2, x1 - cos(x2))."""
    a, b = point
    return np.array([1.0 / a + b, a - np.cos(b)])


def build_three_ways() -> dict[str, Any]:
    """f from operators, from text and from a Python function run on the symbols."""
    x1, x2 = hd.symbols("x1 x2")
    from_operators = hd.log(x1) + x1 * x2 - hd.sin(x2)
    from_text = hd.parse(TEXT)
    from_function = f_python(np.array([x1, x2], dtype=object))
    return {"symbols": (x1, x2), "f": from_operators,
            "same_node": from_text is from_operators and from_function is from_operators}


def symbolic_part(f: hd.Expr, symbols: tuple, point: np.ndarray) -> dict[str, Any]:
    """The gradient as a DAG, its text, and its value at the point."""
    env = dict(zip(symbols, point, strict=True))
    gradient = hd.gradient(f, list(symbols))
    return {"gradient_text": [str(g) for g in gradient],
            "value": float(f.evaluate(env)),
            "gradient": np.array([float(g.evaluate(env)) for g in gradient]),
            "ops": (hd.count_ops(f), hd.count_ops(list(gradient)))}


def tape_part(f: hd.Expr, symbols: tuple, point: np.ndarray) -> dict[str, Any]:
    """Value, forward sweeps (one per input direction) and one reverse sweep."""
    tape = hd.Tape([f], list(symbols))
    forward = np.array([tape.jvp(point, e)[0] for e in np.eye(len(symbols))])
    return {"tape": tape, "value": float(tape.evaluate(point)[0]), "forward": forward,
            "reverse": tape.gradient(point)}


def kernel_part(f: hd.Expr, symbols: tuple, point: np.ndarray) -> dict[str, Any]:
    """One compiled kernel: value and gradient on one point and on a small batch."""
    kernel = hd.lambdify(list(symbols), f, derivatives="gradient")
    value, gradient = kernel(point)
    batch = np.array([point, point + 1.0, point * 2.0])
    values, gradients = kernel(batch)
    return {"value": float(value), "gradient": np.array(gradient), "batch_values": values,
            "batch_gradients": gradients, "info": kernel.info()}


def finite_difference_part(point: np.ndarray) -> dict[str, Any]:
    """Central differences, complex step and check_grad's largest relative error."""
    return {"central": hd.numeric.gradient(f_numpy, point, method="central"),
            "complex": hd.numeric.gradient(f_numpy, point, method="complex"),
            "check_grad": hd.check_grad(f_python, point)}


def show_vector(v: np.ndarray) -> str:
    """A 2-vector with every digit (repr of each float)."""
    return f"[{float(v[0])!r}, {float(v[1])!r}]"


def print_report(point: np.ndarray, built: dict, sym: dict, tape: dict, traced: np.ndarray,
                 kern: dict, fd: dict, exact: np.ndarray, show_traces: bool) -> None:
    """The tour's printed output."""
    print(f"1. f = {built['f']}")
    print(f"   operators, hd.parse({TEXT!r}) and the Python function give one node: "
          f"{built['same_node']}")
    print(f"\n2. symbolic gradient: df/dx1 = {sym['gradient_text'][0]}, "
          f"df/dx2 = {sym['gradient_text'][1]}")
    print(f"   DAG sizes: f {sym['ops'][0]} ops, gradient {sym['ops'][1]} ops")
    print(f"   at (x1, x2) = ({point[0]:g}, {point[1]:g}): value {sym['value']!r}, "
          f"gradient {show_vector(sym['gradient'])}")
    print(f"\n3. tape ({tape['tape'].n_instructions} instructions): value "
          f"{tape['value']!r}")
    print(f"   forward sweeps (seed x1, seed x2): {show_vector(tape['forward'])}")
    print(f"   reverse sweep (seed y):            {show_vector(tape['reverse'])}")
    if show_traces:
        print(tape["tape"].trace(point, mode="reverse"))
    print(f"\n4. hybridad.func.grad(f_python):      {show_vector(traced)}")
    print(f"\n5. compiled kernel: value {kern['value']!r}, gradient {show_vector(kern['gradient'])}")
    print(f"   {kern['info']['nodes']} DAG nodes, compiled in "
          f"{kern['info']['compile_seconds'] * 1e3:.0f} ms; a batch of 3 points gives values "
          f"{np.array2string(kern['batch_values'], precision=4)}")
    print("\n6. finite differences against the exact gradient")
    print(f"   {'':<14}{'df/dx1':>20}{'df/dx2':>20}{'max |error|':>13}")
    for name, v in (("exact", exact), ("central", fd["central"]),
                    ("complex step", fd["complex"])):
        print(f"   {name:<14}{float(v[0])!r:>20}{float(v[1])!r:>20}"
              f"{np.abs(v - exact).max():>13.2e}")
    print(f"   hd.check_grad(f_python) relative error: {fd['check_grad']:.2e}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", nargs=2, type=float, default=[2.0, 5.0],
                        metavar=("X1", "X2"), help="the point (default 2 5)")
    parser.add_argument("--traces", action="store_true",
                        help="also print the textbook primal and adjoint trace tables")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tour, print it and return every route's value and gradient."""
    args = build_parser().parse_args(argv)
    point = np.array(args.at, dtype=np.float64)
    if point[0] <= 0:
        build_parser().error("--at: x1 must be positive (log(x1))")
    built = build_three_ways()
    f, symbols = built["f"], built["symbols"]
    sym = symbolic_part(f, symbols, point)
    tape = tape_part(f, symbols, point)
    traced = np.asarray(grad(f_python)(point))
    kern = kernel_part(f, symbols, point)
    fd = finite_difference_part(point)
    exact = closed_form_gradient(point)
    print_report(point, built, sym, tape, traced, kern, fd, exact, args.traces)
    return {"point": point, "expression": str(f), "same_node": built["same_node"],
            "gradient_text": sym["gradient_text"], "exact": exact,
            "symbolic": (sym["value"], sym["gradient"]),
            "tape": (tape["value"], tape["forward"], tape["reverse"]),
            "grad": traced, "kernel": (kern["value"], kern["gradient"]),
            "kernel_batch": (kern["batch_values"], kern["batch_gradients"]),
            "central": fd["central"], "complex": fd["complex"],
            "check_grad": fd["check_grad"]}


if __name__ == "__main__":
    main()
