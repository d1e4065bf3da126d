"""Tables, the machine description, RESULTS.md and the bar plot."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .measure import Measurement, ProblemResult

PACKAGES = ("hybridad", "numpy", "sympy", "llvmlite", "symengine", "jax", "jaxlib", "torch",
            "casadi", "matplotlib")


def fmt_us(seconds: float | None) -> str:
    """Microseconds with about three significant digits."""
    if seconds is None:
        return "—"
    us = seconds * 1e6
    return f"{us:.3f}" if us < 1 else f"{us:.2f}" if us < 10 else \
        f"{us:.1f}" if us < 1000 else f"{us:,.0f}"


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


def row_note(row: Measurement) -> str:
    """Status and note: 'MISMATCH: ...', 'skipped: ...', 'error: ...' or the note, with
    pipes escaped for the markdown table."""
    text = row.note if row.status == "ok" else \
        f"{row.status}: {row.note}" if row.note else row.status
    return text.replace("|", "\\|")


def problem_table(result: ProblemResult, repeat: int) -> str:
    """Markdown table of one problem: timed rows by median, then the others."""
    problem = result.problem
    ref = result.reference()
    against = ref.label if ref else "no hybridad mode ran"
    summary = (f"{problem.n_inputs} inputs, {problem.n_outputs} output(s); median of "
               f"{repeat}; ratio to {against}; setup includes the first call")
    lines = [f"### {problem.name}: {problem.title}", "", summary, "",
             f"| tool | {problem.unit} | ratio | setup ms | note |",
             "|---|--:|--:|--:|---|"]
    timed = sorted((r for r in result.rows if r.median is not None), key=lambda r: r.median)
    rest = [r for r in result.rows if r.median is None]
    for row in timed + rest:
        label = f"**{row.label}**" if row is ref else row.label
        lines.append(f"| {label} | {fmt_us(row.median)} | {fmt_ratio(result.ratio(row))} | "
                     f"{fmt_ms(row.setup_s)} | {row_note(row)} |")
    return "\n".join(lines)


def setup_table(results: Sequence[ProblemResult]) -> str:
    """Compile/setup milliseconds, problems by tools (each tool's fastest variant that
    computes everything asked: hybridad's primal-only row does not count)."""
    tools: list[str] = []
    for result in results:
        for row in result.rows:
            if row.tool not in tools:
                tools.append(row.tool)
    lines = ["### Compile / setup time (ms, setup plus first call; fastest variant)", "",
             "| problem | " + " | ".join(tools) + " |",
             "|---|" + "--:|" * len(tools)]
    for result in results:
        cells = []
        for tool in tools:
            times = [r.setup_s for r in result.rows
                     if r.tool == tool and r.status in ("ok", "MISMATCH") and r.setup_s
                     and not r.partial]
            cells.append(fmt_ms(min(times)) if times else "—")
        lines.append(f"| {result.problem.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the machine -------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def gcc_version() -> str:
    try:
        out = subprocess.run(["gcc", "--version"], capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "not found"


def machine_lines() -> list[str]:
    """Markdown bullet lines describing the machine and the software."""
    versions = ", ".join(f"{p} {package_version(p)}" for p in PACKAGES)
    return [f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
            f"- CPU: {cpu_model()}, {os.cpu_count()} cores",
            f"- OS: {platform.platform()}",
            f"- Python {platform.python_version()}; gcc: {gcc_version()}",
            f"- {versions}"]


# -- files -------------------------------------------------------------------------------
def markdown(results: Sequence[ProblemResult], repeat: int, command: str,
             quick: bool) -> str:
    title = "# hybridad benchmarks" + (" (quick sizes: a smoke run)" if quick else "")
    method = ("All tools run in one process, interleaved (round-robin per repetition); "
              "times are medians, per call of a single point or per whole batch. Every "
              "tool's result is checked against the hybridad tape (rtol 1e-9) before "
              "timing; MISMATCH marks a failed check. Outputs stay in each tool's native "
              "type (conversion to numpy is not timed). Setup is building the tool's "
              "function (hybridad: the DAG, its derivatives, the tape or kernel; peers: "
              "conversion or tracing, differentiation, compilation) plus the first call; "
              "imports and one-time initialization run on a warm-up problem first and are "
              "not counted.")
    parts = [title, "", f"Generated by `{command}`.", "", *machine_lines(), "", method, ""]
    for result in results:
        parts += [problem_table(result, repeat), ""]
    parts += [setup_table(results), ""]
    return "\n".join(parts)


def plot(results: Sequence[ProblemResult], path: Path) -> str:
    """Horizontal bars of the median times, one panel per problem; returns a note."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    shown = [r for r in results if any(m.median for m in r.rows)]
    if not shown:
        return "nothing timed: no plot"
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 3.2 * rows),
                             squeeze=False)
    for ax, result in zip(axes.ravel(), shown):
        timed = sorted((m for m in result.rows if m.median), key=lambda m: -m.median)
        colors = ["tab:red" if m.status != "ok" else
                  "tab:blue" if m.hybridad else "tab:gray" for m in timed]
        ax.barh([m.label for m in timed], [m.median * 1e6 for m in timed], color=colors)
        ax.set_xscale("log")
        ax.set_title(result.problem.name, fontsize=10)
        ax.set_xlabel(result.problem.unit, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.suptitle("hybridad (blue) and peers (gray; red: failed check), median times, log scale",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot written to {path}"
