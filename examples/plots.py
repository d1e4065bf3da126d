"""The README's figures: expression swell, forward against reverse Jacobians, and the
compiled kernels' time per call against the peer tools.

Writes three PNG files (150 dpi) into ``--out`` (default docs/figures):

* ``swell.png``: size of d l_n/dx for the logistic map l_1 = x, l_{k+1} = 4 l_k (1 - l_k)
  against n: SymPy's derivative as a tree and after ``sympy.cse``, hybridad's DAG
  (``hd.count_ops``) and the tree it stands for (``count_ops(tree=True)``), measured by
  the functions of ``examples/swell.py``; a second panel shows the time to build each
  derivative. SymPy stops once its time passes ``--sympy-budget`` seconds.
* ``jacobian_modes.png``: forward against reverse Jacobian of y = tanh(W x + b) for
  shapes (n_in, n_out) with n_in * n_out fixed, against n_out / n_in: the numpy tape
  (``Tape.jacobian(x, mode=...)``), the compiled kernel's call
  (``hd.lambdify(..., derivatives="jacobian", mode=...)``) and the kernel's build time
  (symbolic Jacobian plus LLVM compile), shaded by the faster mode (within 10 % is a tie).
  The product is 2048, not 4096: building a forward-mode kernel costs about n_in passes
  over the whole DAG (7.5 s at (512, 4), ~28 s at (1024, 4)).
* ``throughput.png``: hybridad's LLVM kernels against the peers, read from
  ``benchmarks/RESULTS.md`` (nothing is rerun), time per call on a log scale.

    python examples/plots.py                            # about a minute on 2 cores
    python examples/plots.py --only swell,throughput
    python examples/plots.py --quick --out /tmp/figures   # tiny sizes (smoke test)

matplotlib is needed: ``pip install -e ".[bench]"`` (or ``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator
from numpy.testing import assert_allclose

import hybridad as hd

matplotlib.use("Agg")                   # files only, no display (before any figure exists)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "docs" / "figures"
DEFAULT_RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FIGURES = ("swell", "jacobian", "throughput")
DPI = 150
TIE = 1.10                              # a mode "wins" only when 10 % faster

Shape = tuple[int, int]                 # (n_in, n_out)
FULL_SHAPES: list[Shape] = [(512, 4), (256, 8), (128, 16), (64, 32), (32, 64), (16, 128),
                            (8, 256), (4, 512)]
QUICK_SHAPES: list[Shape] = [(16, 2), (8, 4), (4, 8), (2, 16)]
MODE_COLORS = {"forward": "tab:blue", "reverse": "tab:orange"}
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")      # 0.5, 10, 1000 on log axes


def load_sibling(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the examples are scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def median_seconds(call: Callable[[], Any], repeat: int, inner: int = 1) -> float:
    """Median over ``repeat`` runs of the mean time of ``inner`` back-to-back calls."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at DPI and close it."""
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# -- 1. expression swell ------------------------------------------------------------------
def swell_series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(n, value) for the rows that have ``key`` (SymPy's stop at its budget)."""
    kept = [r for r in rows if key in r]
    return [r["n"] for r in kept], [r[key] for r in kept]


def plot_swell(rows: list[dict], budget: float, path: Path) -> Path:
    """Sizes (left) and build times (right) of d l_n/dx against n, log y."""
    fig, (size_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 5))
    styles = {"sp_tree": ("SymPy diff, as a tree", "tab:red", "-", "o"),
              "cse": ("SymPy diff + cse", "tab:orange", "-", "s"),
              "hd_dag": ("hybridad DAG (count_ops)", "tab:blue", "-", "D"),
              "hd_tree": ("tree the hybridad DAG stands for", "tab:blue", ":", None)}
    for key, (label, color, line, marker) in styles.items():
        n, v = zip(*[(n, v) for n, v in zip(*swell_series(rows, key)) if v > 0])
        size_ax.plot(n, v, line, color=color, marker=marker,
                     markersize=3.5, label=label, linewidth=2 if key == "hd_dag" else 1.5)
    n_last, dag_last = rows[-1]["n"], rows[-1]["hd_dag"]
    formula = "7n − 10 " if dag_last == 7 * n_last - 10 else ""
    size_ax.annotate(f"{formula}({dag_last} at n = {n_last})", (n_last, dag_last),
                     xytext=(0, -16), textcoords="offset points", ha="right",
                     color="tab:blue", fontsize=9)
    sympy_n = swell_series(rows, "sp_tree")[0]
    if sympy_n and sympy_n[-1] < n_last:
        for ax in (size_ax, time_ax):
            ax.axvline(sympy_n[-1] + 0.5, color="gray", linestyle="--", linewidth=0.8)
        room = n_last - sympy_n[-1] >= 5
        size_ax.text(sympy_n[-1] + (0.8 if room else 0.2), 2,
                     f"SymPy stops here\n(time budget {budget:g} s)", fontsize=8,
                     color="gray", va="bottom", ha="left" if room else "right")
    size_ax.set(yscale="log", xlabel="n (logistic map iterations)",
                ylabel="size of d lₙ/dx (binary operations, log scale)",
                title="Expression swell: d lₙ/dx, lₖ₊₁ = 4 lₖ (1 − lₖ)")
    size_ax.legend(fontsize=8, loc="upper left")

    times = {"sp_s": ("SymPy diff", "tab:red", "o"), "cse_s": ("SymPy diff + cse",
                                                              "tab:orange", "s"),
             "hd_s": ("hybridad diff", "tab:blue", "D")}
    for key, (label, color, marker) in times.items():
        n, v = swell_series(rows, key)
        time_ax.plot(n, v, "-", color=color, marker=marker, markersize=3.5, label=label)
    time_ax.set(yscale="log", xlabel="n (logistic map iterations)",
                ylabel="time to build the derivative (s, log scale)",
                title="Time to differentiate")
    time_ax.legend(fontsize=8, loc="upper left")
    for ax in (size_ax, time_ax):
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def swell_figure(n_max: int, budget: float, out: Path) -> dict[str, Any]:
    """Measure with examples/swell.py, print its table, draw swell.png."""
    swell = load_sibling("swell")
    swell.sympy_row(3)                  # warm-up: SymPy's first diff and cse set up caches
    rows = swell.measure(n_max, budget)
    print(f"1. expression swell of d l_n/dx (SymPy time budget {budget:g} s)")
    print(swell.format_rows(rows))
    path = plot_swell(rows, budget, out / "swell.png")
    sympy_rows = [r for r in rows if "sp_tree" in r]
    last = sympy_rows[-1] if sympy_rows else {}
    return {"path": path, "n": [r["n"] for r in rows], "hd_dag": [r["hd_dag"] for r in rows],
            "hd_tree": [r["hd_tree"] for r in rows], "hd_seconds": [r["hd_s"] for r in rows],
            "sympy_n_max": last.get("n"), "sympy_tree": last.get("sp_tree"),
            "sympy_cse": last.get("cse"), "sympy_seconds": sum(r["cse_s"] for r in sympy_rows)}


# -- 2. forward against reverse Jacobians ----------------------------------------------------
@dataclass
class ModeTiming:
    """Seconds for one shape: tape Jacobian, kernel call, kernel build, LLVM compile."""

    n_in: int
    n_out: int
    tape: dict[str, float] = field(default_factory=dict)
    kernel: dict[str, float] = field(default_factory=dict)
    build: dict[str, float] = field(default_factory=dict)
    compile: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.n_out / self.n_in


def layer(n_in: int, n_out: int, seed: int) -> tuple[np.ndarray, list, np.ndarray, np.ndarray,
                                                      np.ndarray]:
    """Symbols x, outputs tanh(W x + b), and W, b and a point x (W scaled by 1/sqrt(n_in))."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)
    b, point = rng.standard_normal(n_out), rng.standard_normal(n_in)
    x = hd.symarray("x", n_in)
    return x, list(np.tanh(W @ x + b)), W, b, point


def exact_jacobian(W: np.ndarray, b: np.ndarray, point: np.ndarray) -> np.ndarray:
    """diag(1 - tanh(W x + b)^2) W."""
    return (1 - np.tanh(W @ point + b) ** 2)[:, None] * W


def interleaved_medians(calls: dict[str, Callable[[], Any]], repeat: int, inner: int = 1
                        ) -> dict[str, float]:
    """Median seconds per call of each of ``calls``, timed round-robin (each repetition
    times every call once), so that drift on the machine hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(1, repeat)):
        for name, call in calls.items():
            samples[name].append(median_seconds(call, 1, inner))
    return {name: statistics.median(times) for name, times in samples.items()}


def build_kernel(x: np.ndarray, outputs: list, mode: str, result: ModeTiming) -> Any:
    """Compile the Jacobian kernel in ``mode`` from scratch (cache emptied first) and
    record its build time, LLVM compile time and DAG nodes in ``result``."""
    hd.clear_kernel_cache()
    start = time.perf_counter()
    kernel = hd.lambdify(list(x), outputs, derivatives="jacobian", mode=mode)
    result.build[mode] = time.perf_counter() - start
    info = kernel.info()
    result.compile[mode], result.nodes[mode] = info["compile_seconds"], info["nodes"]
    return kernel


def measure_shape(n_in: int, n_out: int, repeat: int, seed: int = 0) -> ModeTiming:
    """Time both modes on the tape and as compiled kernels, checking every Jacobian
    against diag(tanh') W first."""
    x, outputs, W, b, point = layer(n_in, n_out, seed)
    expected = exact_jacobian(W, b, point)
    result = ModeTiming(n_in, n_out)
    tape = hd.Tape(outputs, list(x))
    kernels = {mode: build_kernel(x, outputs, mode, result) for mode in MODE_COLORS}
    for mode, kernel in kernels.items():
        for what, jac in (("tape", tape.jacobian(point, mode=mode)), ("kernel", kernel(point)[1])):
            assert_allclose(jac, expected, rtol=1e-10, atol=1e-13,
                            err_msg=f"{what} {mode} Jacobian at {(n_in, n_out)}")
    result.tape = interleaved_medians(
        {mode: (lambda m=mode: tape.jacobian(point, mode=m)) for mode in MODE_COLORS}, repeat)
    result.kernel = interleaved_medians(
        {mode: (lambda k=kernel: k(point)) for mode, kernel in kernels.items()}, repeat,
        inner=200)
    del kernels
    hd.clear_kernel_cache()
    return result


def winner(forward: float, reverse: float) -> str:
    """'forward', 'reverse' or 'tie' (neither TIE times faster)."""
    if reverse > TIE * forward:
        return "forward"
    if forward > TIE * reverse:
        return "reverse"
    return "tie"


def crossovers(ratios: Sequence[float], forward: Sequence[float], reverse: Sequence[float]
               ) -> list[float]:
    """Ratios n_out/n_in where the faster mode switches: between two shapes won by
    different modes (ties skipped), where log(reverse/forward) crosses 0, interpolated
    in log(ratio)."""
    log_r = np.log(np.asarray(ratios))
    gap = np.log(np.asarray(reverse) / np.asarray(forward))
    decisive = [k for k in range(len(gap)) if winner(forward[k], reverse[k]) != "tie"]
    found = []
    for i, j in itertools.pairwise(decisive):
        if np.sign(gap[i]) == np.sign(gap[j]):
            continue
        k = next(k for k in range(i, j) if gap[k] * gap[k + 1] <= 0)
        t = gap[k] / (gap[k] - gap[k + 1])
        found.append(float(np.exp(log_r[k] + t * (log_r[k + 1] - log_r[k]))))
    return found


def ratio_label(ratio: float) -> str:
    """4 -> '4', 0.25 -> '1/4', 0.0099 -> '1/101' (three significant digits)."""
    return f"{ratio:.3g}" if ratio >= 1 else f"1/{1 / ratio:.3g}"


def shade_winners(ax: plt.Axes, ratios: Sequence[float], forward: Sequence[float],
                  reverse: Sequence[float]) -> None:
    """Background band around each shape in the colour of the faster mode."""
    edges = np.sqrt(np.asarray(ratios[:-1]) * np.asarray(ratios[1:]))
    lows = [ratios[0] / math.sqrt(ratios[1] / ratios[0]), *edges]
    highs = [*edges, ratios[-1] * math.sqrt(ratios[-1] / ratios[-2])]
    for low, high, f, r in zip(lows, highs, forward, reverse):
        won = winner(f, r)
        if won != "tie":
            ax.axvspan(low, high, color=MODE_COLORS[won], alpha=0.10, linewidth=0)


def plain_log_y(ax: plt.Axes) -> None:
    """Log y axis with ticks at 1, 2, 3, 5 times powers of ten, written as plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_mode_panel(ax: plt.Axes, timings: list[ModeTiming], what: str, scale: float,
                    unit: str, title: str) -> list[float]:
    """Forward and reverse lines of ``what`` ('tape', 'kernel', 'build') against the
    shape ratio, shaded by winner, crossovers marked; returns the crossovers."""
    ratios = [t.ratio for t in timings]
    series = {mode: [getattr(t, what)[mode] for t in timings] for mode in MODE_COLORS}
    shade_winners(ax, ratios, series["forward"], series["reverse"])
    for mode, values in series.items():
        ax.plot(ratios, [v * scale for v in values], "-", marker="o" if mode == "forward"
                else "s", color=MODE_COLORS[mode], label=f"{mode} mode", markersize=4)
    found = crossovers(ratios, series["forward"], series["reverse"])
    for c in found:
        ax.axvline(c, color="black", linestyle="--", linewidth=1)
        ax.text(c, 0.97, f" crossover\n n_out/n_in ≈ {ratio_label(c)}",
                transform=ax.get_xaxis_transform(), fontsize=7.5, va="top")
    winners = {winner(f, r) for f, r in zip(*series.values())}
    if not found and len(winners) == 1:
        (only,) = winners
        ax.text(0.5, 0.97, "tie at every shape (within 10 %)" if only == "tie" else
                f"{only} mode faster at every shape", transform=ax.transAxes, ha="center",
                va="top", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ratios, [f"{ratio_label(t.ratio)}\n{t.n_in}×{t.n_out}" for t in timings],
                  fontsize=6.5)
    ax.xaxis.set_minor_locator(NullLocator())
    plain_log_y(ax)
    ax.set(xlabel="n_out / n_in  (shape n_in × n_out)", ylabel=unit, title=title)
    ax.grid(True, alpha=0.3)
    return found


def plot_modes(timings: list[ModeTiming], path: Path) -> tuple[Path, dict[str, list[float]]]:
    """Three panels: tape Jacobian, kernel call, kernel build; returns the crossovers."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 5))
    product = timings[0].n_in * timings[0].n_out
    panels = [("tape", 1e3, "time per Jacobian (ms, log scale)", "numpy tape: Tape.jacobian"),
              ("kernel", 1e6, "time per call (µs, log scale)",
               "compiled kernel: call (same DAG both modes)"),
              ("build", 1.0, "build time (s, log scale)",
               "compiled kernel: build (symbolic J + LLVM)")]
    found = {what: plot_mode_panel(ax, timings, what, scale, unit, title)
             for ax, (what, scale, unit, title) in zip(axes, panels)}
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"Forward vs reverse Jacobian of tanh(W x + b), n_in · n_out = {product}, "
                 "one point; shading: the faster mode (blue forward, orange reverse)",
                 fontsize=11)
    fig.tight_layout()
    return save(fig, path), found


def modes_table(timings: list[ModeTiming]) -> str:
    """The measured medians, one row per shape."""
    head = (f"{'n_in':>5} {'n_out':>5} {'out/in':>7} | {'tape fwd ms':>11} {'rev ms':>8} "
            f"{'faster':>7} | {'kernel fwd µs':>13} {'rev µs':>7} {'faster':>7} | "
            f"{'build fwd s':>11} {'rev s':>6} {'(LLVM s)':>9} {'nodes':>6}")
    lines = [head, "-" * len(head)]
    for t in timings:
        lines.append(
            f"{t.n_in:>5} {t.n_out:>5} {ratio_label(t.ratio):>7} | "
            f"{t.tape['forward'] * 1e3:>11.2f} {t.tape['reverse'] * 1e3:>8.2f} "
            f"{winner(t.tape['forward'], t.tape['reverse']):>7} | "
            f"{t.kernel['forward'] * 1e6:>13.2f} {t.kernel['reverse'] * 1e6:>7.2f} "
            f"{winner(t.kernel['forward'], t.kernel['reverse']):>7} | "
            f"{t.build['forward']:>11.2f} {t.build['reverse']:>6.2f} "
            f"{t.compile['forward']:>4.2f}/{t.compile['reverse']:<4.2f} "
            f"{t.nodes['forward']:>6}")
    return "\n".join(lines)


def jacobian_figure(shapes: list[Shape], repeat: int, out: Path) -> dict[str, Any]:
    """Measure every shape, print the table, draw jacobian_modes.png."""
    print(f"\n2. forward vs reverse Jacobian of tanh(W x + b), one point, median of {repeat}")
    timings = [measure_shape(n_in, n_out, repeat) for n_in, n_out in shapes]
    print(modes_table(timings))
    path, found = plot_modes(timings, out / "jacobian_modes.png")
    for what, values in found.items():
        text = ", ".join(ratio_label(c) for c in values) or "none"
        print(f"   {what}: faster mode switches at n_out/n_in ≈ {text}")
    if all(t.nodes["forward"] == t.nodes["reverse"] for t in timings):
        print("   kernel: both modes give DAGs of the same size at every shape (the entries "
              "simplify alike); the mode changes the build time, not the call")
    return {"path": path, "shapes": shapes, "timings": timings, "crossovers": found,
            "winners": {what: [winner(getattr(t, what)["forward"], getattr(t, what)["reverse"])
                               for t in timings] for what in ("tape", "kernel", "build")}}


# -- 3. throughput against the peers ---------------------------------------------------------
@dataclass
class BenchProblem:
    """One problem's table in RESULTS.md: µs per call (or per batch) by tool label."""

    name: str
    title: str
    unit: str
    times: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


# (legend label, colour, the RESULTS.md label or a label prefix ending in '*', its short
# name where the bar is missing)
PEERS = [("hybridad llvm", "tab:blue", "hybridad llvm", "hybridad"),
         ("C gcc -O3 (hand-written)", "tab:green", "C gcc -O3 (hand-written)", "C"),
         ("SymEngine llvm", "tab:purple", "symengine llvm", "SymEngine"),
         ("JAX jit (faster transform)", "tab:orange", "jax jit(*", "JAX"),
         ("CasADi buffer, fresh outputs", "tab:brown", "casadi buffer fresh", "CasADi"),
         ("SymPy lambdify", "tab:gray", "sympy lambdify", "SymPy"),
         ("torch.func (faster transform)", "tab:red", "torch.func *", "torch")]
PLOTTED = {"seeds": "seeds' example\nvalue + gradient",
           "rosenbrock-10": "Rosenbrock n = 10\nvalue + gradient",
           "rosenbrock-1000": "Rosenbrock n = 1000\nvalue + gradient",
           "rosenbrock-10-batch": "Rosenbrock n = 10\n10,000 points (per batch)",
           "jacobian-inputs-1024x16": "Jacobian tanh(W x + b)\n(n_in, n_out) = (1024, 16)",
           "hessian-rosenbrock-100": "Hessian\nRosenbrock n = 100"}


def parse_number(cell: str) -> float | None:
    """'1,177' -> 1177.0; '—' -> None."""
    cell = cell.replace(",", "").strip()
    try:
        return float(cell)
    except ValueError:
        return None


def parse_results(text: str) -> dict[str, BenchProblem]:
    """The per-problem tables of RESULTS.md (headed '### name: title')."""
    problems: dict[str, BenchProblem] = {}
    current: BenchProblem | None = None
    for line in text.splitlines():
        heading = re.match(r"### ([\w.-]+): (.*)", line)
        if heading:
            current = BenchProblem(heading[1], heading[2], "")
            problems[current.name] = current
        elif current and line.startswith("| tool |"):
            current.unit = line.split("|")[2].strip()
        elif current and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            label = cells[0].strip("*")
            current.times[label] = parse_number(cells[1])
            current.notes[label] = cells[-1]
    return problems


def machine_caption(text: str) -> str:
    """'from benchmarks/RESULTS.md, <date>, <CPU>, <command>' from the file's header."""
    fields = dict(re.findall(r"^- (date|CPU): (.*)$", text, flags=re.MULTILINE))
    command = re.search(r"Generated by `([^`]*)`", text)
    parts = ["from benchmarks/RESULTS.md", fields.get("date", "date unknown"),
             fields.get("CPU", "machine unknown")]
    if command:
        parts.append(command[1])
    return ", ".join(parts)


def pick(problem: BenchProblem, pattern: str) -> tuple[str, float] | None:
    """The row ``pattern`` names (a prefix if it ends in '*', the fastest then)."""
    if pattern.endswith("*"):
        rows = [(label, t) for label, t in problem.times.items()
                if label.startswith(pattern[:-1]) and t is not None]
        return min(rows, key=lambda row: row[1]) if rows else None
    t = problem.times.get(pattern)
    return (pattern, t) if t is not None else None


def missing_text(problem: BenchProblem, pattern: str, short: str) -> str:
    """Why a bar is missing: the table's note ('SymPy: skipped (size cap)') or absence."""
    note = problem.notes.get(pattern.rstrip("*"), "")
    if not note:
        return f"{short}: not in this benchmark"
    status, _, rest = note.partition(": ")
    reason = rest.split(":")[0]
    return f"{short}: {status} ({reason})" if reason else f"{short}: {status}"


def number_text(value: float | None) -> str:
    """Three significant digits, thousands separated, no exponent; '—' for None."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def value_text(us: float) -> str:
    """Microseconds as a short bar label."""
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us:.2g} µs" if us < 10 else f"{us:.3g} µs"


def plot_throughput(problems: dict[str, BenchProblem], names: list[str], caption: str,
                    path: Path) -> Path:
    """Grouped horizontal bars (log x): one group per problem, one bar per tool."""
    fig, ax = plt.subplots(figsize=(9, 9))
    height = 0.8 / len(PEERS)
    labelled: set[str] = set()
    for g, name in enumerate(names):
        for k, (label, color, pattern, short) in enumerate(PEERS):
            y = g + (k - (len(PEERS) - 1) / 2) * height
            found = pick(problems[name], pattern)
            if found is None:
                ax.text(0.12, y, missing_text(problems[name], pattern, short), va="center",
                        fontsize=6, color="dimgray")
                continue
            ax.barh(y, found[1], height=height, color=color,
                    label=None if label in labelled else label, linewidth=0.6,
                    edgecolor="black" if k == 0 else "none")
            labelled.add(label)
            ax.text(found[1] * 1.08, y, value_text(found[1]), va="center", fontsize=6)
    ax.set_yticks(range(len(names)), [PLOTTED.get(n, n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.1, 3e4)
    ax.xaxis.set_major_formatter(PLAIN)
    ax.set_xlabel("time per call (µs, log scale; the 10,000-point row: per batch)")
    ax.set_title("hybridad's compiled kernels against other tools (shorter is faster)",
                 fontsize=11, pad=20)
    ax.text(0.5, 1.015, caption, transform=ax.transAxes, ha="center", va="bottom",
            fontsize=8.5, color="dimgray")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(p[0]) for p in PEERS if p[0] in labels]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, ncol=3,
              loc="upper center", bbox_to_anchor=(0.42, -0.07), frameon=False)
    fig.tight_layout()
    return save(fig, path)


def throughput_figure(results: Path, out: Path) -> dict[str, Any]:
    """Parse RESULTS.md, print the plotted numbers, draw throughput.png."""
    text = results.read_text(encoding="utf-8")
    problems = parse_results(text)
    names = [n for n in PLOTTED if n in problems]
    caption = machine_caption(text)
    print(f"\n3. time per call from {results} ({caption}), µs")
    heads = [re.split(r" \(|,", label)[0] for label, *_ in PEERS]   # 'CasADi buffer'
    print(f"{'problem':<24}" + "".join(f"{head:>15}" for head in heads))
    table: dict[str, dict[str, float | None]] = {}
    for name in names:
        table[name] = {label: (pick(problems[name], p) or (None, None))[1]
                       for label, _, p, _ in PEERS}
        print(f"{name:<24}" + "".join(f"{number_text(v):>15}" for v in table[name].values()))
    missing = [n for n in PLOTTED if n not in problems]
    if missing:
        print(f"   not in {results.name}: {', '.join(missing)}")
    path = plot_throughput(problems, names, caption, out / "throughput.png")
    return {"path": path, "caption": caption, "problems": names, "times": table,
            "hybridad_found": {n: table[n]["hybridad llvm"] is not None for n in names}}


# -- the command line ----------------------------------------------------------------------
def parse_only(text: str) -> list[str]:
    """'swell,throughput' -> ['swell', 'throughput'], in the given order."""
    picked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [p for p in picked if p not in FIGURES]
    if unknown or not picked:
        raise argparse.ArgumentTypeError(f"--only takes a comma list of {', '.join(FIGURES)}; "
                                         f"got {text!r}")
    return picked


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the PNG files (default docs/figures)")
    parser.add_argument("--only", type=parse_only, default=list(FIGURES),
                        help="comma list of figures: swell,jacobian,throughput (default all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--n", type=int, default=None,
                        help="largest n of the logistic map (default 40; --quick 12)")
    parser.add_argument("--sympy-budget", type=float, default=None,
                        help="seconds of SymPy time before it stops (default 10; --quick 0.5)")
    parser.add_argument("--repeat", type=int, default=9, help="timings per median (9)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="the benchmark tables (default benchmarks/RESULTS.md)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, print and draw the chosen figures; return the files and key numbers."""
    parser = build_parser()
    args = parser.parse_args(argv)
    n_max = args.n or (12 if args.quick else 40)
    budget = args.sympy_budget if args.sympy_budget is not None else \
        (0.5 if args.quick else 10.0)
    if n_max < 2 or args.repeat < 1:
        parser.error("need --n >= 2 and --repeat >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"files": {}}
    for name in args.only:
        start = time.perf_counter()
        if name == "swell":
            result[name] = swell_figure(n_max, budget, args.out)
        elif name == "jacobian":
            shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
            result[name] = jacobian_figure(shapes, args.repeat, args.out)
        else:
            result[name] = throughput_figure(args.results, args.out)
        result["files"][name] = result[name]["path"]
        print(f"   wrote {result[name]['path']} ({time.perf_counter() - start:.1f} s)")
    return result


if __name__ == "__main__":
    main()
