"""Command line of the benchmark runner."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import hybrid, peers
from .measure import ProblemResult, Row, prepare_row, rows_for, run_problem
from .problems import Problem, all_problems, select
from .report import markdown, plot, problem_table, setup_table

HERE = Path(__file__).resolve().parent
ADAPTERS: dict[str, Callable[[Problem], list[Row]]] = {**hybrid.ADAPTERS, **peers.ADAPTERS}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time the same problems through hybridad and the installed peers.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median)")
    parser.add_argument("--only", type=_names, default=None,
                        help="problems by name or name prefix, comma separated")
    parser.add_argument("--tools", type=_names, default=None,
                        help=f"tools, comma separated, from {','.join(ADAPTERS)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default benchmarks/RESULTS.md, "
                             "RESULTS-quick.md with --quick)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="bar plot (default results.png next to --out)")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="length of one timed sample (default 20, 2 with --quick)")
    parser.add_argument("--list", action="store_true", help="list problems and tools, exit")
    return parser


def choose_adapters(tools: Sequence[str] | None) -> dict[str, Callable[[Problem], list[Row]]]:
    if not tools:
        return dict(ADAPTERS)
    unknown = [t for t in tools if t not in ADAPTERS]
    if unknown:
        raise ValueError(f"unknown tool(s) {', '.join(unknown)}; the tools are "
                         f"{', '.join(ADAPTERS)}")
    return {t: ADAPTERS[t] for t in tools}


def output_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    out = args.out or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    if args.no_plot:
        return out, None
    return out, args.plot or out.with_name("results-quick.png" if args.quick and not args.out
                                           else "results.png")


def warm_up(adapters: dict[str, Callable[[Problem], list[Row]]]) -> None:
    """Set every row up once on the smallest problem and discard it, so that one-time
    costs (lazy imports, JIT backends starting) do not count as the first problem's setup."""
    for row in rows_for(all_problems(quick=True)[0], adapters):
        prepare_row(row, None)


def run(problems: Sequence[Problem], adapters: dict[str, Callable[[Problem], list[Row]]],
        repeat: int, target_s: float) -> list[ProblemResult]:
    """Every problem in turn, printing its table as soon as it is measured."""
    warm_up(adapters)
    results = []
    for problem in problems:
        print(f"[{problem.name}] setting up and checking ...", file=sys.stderr, flush=True)
        result = run_problem(problem, adapters, hybrid.tape_reference, repeat, target_s)
        print(problem_table(result, repeat) + "\n", flush=True)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        problems = select(all_problems(args.quick), args.only)
        adapters = choose_adapters(args.tools)
    except ValueError as error:
        parser.error(str(error))
    if args.list:
        print("problems: " + ", ".join(p.name for p in problems))
        print("tools: " + ", ".join(ADAPTERS))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    target_s = (args.target_ms or (2.0 if args.quick else 20.0)) / 1e3
    results = run(problems, adapters, args.repeat, target_s)
    print(setup_table(results))
    out, plot_path = output_paths(args)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    out.write_text(markdown(results, args.repeat, command.strip(), args.quick))
    print(f"\nresults written to {out}")
    if plot_path is not None:
        print(plot(results, plot_path))
    bad = [f"{r.problem.name}: {m.label}" for r in results for m in r.rows
           if m.status == "MISMATCH"]
    if bad:
        print("MISMATCH against the hybridad tape: " + "; ".join(bad))
    return 1 if bad else 0
