"""Expression swell on the logistic map l_{k+1} = 4 l_k (1 - l_k), l_1 = x.

For n = 1..N prints the size of d l_n / dx four ways, and the seconds each took:

* SymPy: ``sympy.diff`` of SymPy's l_n, as a tree (operations counted with an n-ary Add
  or Mul as n - 1 binary operations, the way hybridad counts);
* SymPy + cse: the same derivative after ``sympy.cse`` (replacements plus reduced form);
* hybridad: ``hd.diff`` of hybridad's l_n, as a DAG (``hd.count_ops``), and the size its
  tree would have (``count_ops(tree=True)``, counted over the DAG).

SymPy's time grows about 2.2x per step, so its columns stop once its total time passes
``--sympy-budget`` seconds (default 20); hybridad's columns continue to N.

    python examples/swell.py            # n = 1..30
    python examples/swell.py --n 60 --sympy-budget 60
"""

from __future__ import annotations

import argparse
import time

import sympy

import hybridad as hd


def logistic(x, n: int):
    """l_n for the logistic map with l_1 = x (works for hybridad and SymPy symbols)."""
    value = x
    for _ in range(n - 1):
        value = 4 * value * (1 - value)
    return value


def sympy_tree_ops(expr: sympy.Basic) -> int:
    """Operations in SymPy's expression tree, counted over its shared subexpressions."""
    size: dict[sympy.Basic, int] = {}
    stack = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if node in size:
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in size)
            continue
        k = len(node.args)
        own = 0 if k == 0 else (k - 1 if (node.is_Add or node.is_Mul) else 1)
        size[node] = own + sum(size[a] for a in node.args)
    return size[expr]


def hybridad_row(n: int) -> dict:
    x = hd.symbols("x")
    start = time.perf_counter()
    derivative = hd.diff(logistic(x, n), x)
    seconds = time.perf_counter() - start
    return {"hd_dag": hd.count_ops(derivative), "hd_tree": hd.count_ops(derivative, tree=True),
            "hd_s": seconds}


def sympy_row(n: int) -> dict:
    x = sympy.Symbol("x")
    start = time.perf_counter()
    derivative = sympy.diff(logistic(x, n), x)
    diff_seconds = time.perf_counter() - start
    start = time.perf_counter()
    replacements, reduced = sympy.cse(derivative)
    cse_seconds = time.perf_counter() - start
    cse_size = sum(sympy_tree_ops(e) for _, e in replacements) + sum(
        sympy_tree_ops(e) for e in reduced)
    return {"sp_tree": sympy_tree_ops(derivative), "sp_s": diff_seconds, "cse": cse_size,
            "cse_s": diff_seconds + cse_seconds}


def measure(n_max: int, sympy_budget: float) -> list[dict]:
    """One row per n; SymPy columns are None once its budget is spent."""
    rows, spent = [], 0.0
    for n in range(1, n_max + 1):
        row = {"n": n, **hybridad_row(n)}
        if spent <= sympy_budget:
            row.update(sympy_row(n))
            spent += row["cse_s"]
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    head = (f"{'n':>3} {'SymPy tree':>12} {'s':>8} {'SymPy+cse':>10} {'s':>8} "
            f"{'hybridad DAG':>13} {'s':>8} {'hybridad as tree':>18}")
    lines = [head, "-" * len(head)]
    for r in rows:
        sp_part = (f"{r['sp_tree']:>12} {r['sp_s']:>8.4f} {r['cse']:>10} {r['cse_s']:>8.4f}"
                   if "sp_tree" in r else f"{'(budget)':>12} {'':>8} {'':>10} {'':>8}")
        lines.append(f"{r['n']:>3} {sp_part} {r['hd_dag']:>13} {r['hd_s']:>8.4f} "
                     f"{r['hd_tree']:>18}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="largest n (default 30)")
    parser.add_argument("--sympy-budget", type=float, default=20.0,
                        help="seconds of SymPy time before its columns stop (default 20)")
    args = parser.parse_args(argv)
    print(format_rows(measure(args.n, args.sympy_budget)))


if __name__ == "__main__":
    main()
