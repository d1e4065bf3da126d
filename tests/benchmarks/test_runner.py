"""The benchmark runner (python -m benchmarks) on its --quick sizes with the tools that are
always installed (hybridad evaluate and tape, SymPy): table structure, the result checks
(a wrong adapter is flagged), interleaving, skips. Timings are never asserted; results are
written to tmp paths only, never over benchmarks/RESULTS.md."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hybridad as hd
from benchmarks import cli, hybrid, measure, report
from benchmarks.measure import Prepared, Row, Skip
from benchmarks.problems import all_problems, select

ALWAYS = "evaluate,tape,sympy"
FAST = ["--repeat", "2", "--target-ms", "0.3"]


@pytest.fixture(scope="module")
def quick_results():
    """Every --quick problem through evaluate, tape and sympy (a few seconds)."""
    adapters = cli.choose_adapters(ALWAYS.split(","))
    return cli.run(all_problems(quick=True), adapters, repeat=2, target_s=3e-4)


def table_rows(markdown: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and body rows of the table under ``### heading...``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {heading}"))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("### "):
            break
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip("|").split("|")])
    return table[0], table[2:]


def wrong_rows(problem):
    """An adapter that returns the tape's result slightly off (relative 1e-6)."""
    def setup():
        expected = hybrid.tape_reference(problem)
        return Prepared(lambda: expected, lambda out: tuple(a * (1 + 1e-6) for a in out))
    return [Row("wrong", "deliberately wrong", setup)]


def test_every_quick_problem_checks_out(quick_results):
    names = [r.problem.name for r in quick_results]
    assert names == [p.name for p in all_problems(quick=True)]
    for result in quick_results:
        statuses = {m.label: m.status for m in result.rows}
        assert statuses["hybridad evaluate"] == "ok", result.problem.name
        assert statuses["hybridad tape"] == "ok", result.problem.name
        assert statuses["sympy lambdify"] in ("ok", "skipped"), result.problem.name
        ref = result.reference()
        assert ref is not None and ref.hybridad
        assert result.ratio(ref) == pytest.approx(1.0)
        for m in result.rows:
            if m.status == "ok":
                assert len(m.times) == 2 and all(t > 0 for t in m.times)
                assert m.setup_s is not None and m.prepared is None


def test_sympy_is_skipped_by_its_size_cap_on_the_logistic_map(quick_results):
    logistic = next(r for r in quick_results if r.problem.name == "logistic-20")
    sympy_row = next(m for m in logistic.rows if m.tool == "sympy")
    assert sympy_row.status == "skipped" and "size cap" in sympy_row.note


def test_problem_table_structure(quick_results):
    for result in quick_results:
        text = report.problem_table(result, repeat=2)
        header, body = table_rows(text, result.problem.name)
        assert header == ["tool", result.problem.unit, "ratio", "setup ms", "note"]
        assert all(len(row) == 5 for row in body)
        timed = [float(row[1].replace(",", "")) for row in body if row[1] != "—"]
        assert len(timed) == sum(1 for m in result.rows if m.median is not None)
        assert timed == sorted(timed)
        bold = [row for row in body if row[0].startswith("**")]
        assert len(bold) == 1 and bold[0][2] == "1.00"


def test_setup_table_has_a_row_per_problem(quick_results):
    header, body = table_rows(report.setup_table(quick_results), "Compile")
    assert header == ["problem", "evaluate", "tape", "sympy"]
    assert [row[0] for row in body] == [r.problem.name for r in quick_results]


def test_wrong_adapter_is_flagged_and_main_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(cli.ADAPTERS, "wrong", wrong_rows)
    out = tmp_path / "RESULTS.md"
    code = cli.main(["--quick", "--only", "seeds,jacobian-inputs-4x16", "--tools",
                     "tape,wrong", "--out", str(out), "--no-plot", *FAST])
    assert code == 1
    text = out.read_text()
    for name in ("seeds", "jacobian-inputs-4x16"):
        _, body = table_rows(text, name)
        wrong = next(row for row in body if row[0] == "deliberately wrong")
        assert wrong[4].startswith("MISMATCH: result 0: max abs difference")
    assert "MISMATCH against the hybridad tape" in capsys.readouterr().out


def test_mismatch_tolerance_and_shapes():
    a = np.array([1.0, 0.0, -3.0])
    assert measure.mismatch((a * (1 + 1e-12),), (a,)) == ""
    assert measure.mismatch((a + 1e-14,), (a,)) == ""          # atol scaled by max |ref|
    assert "shape" in measure.mismatch((a[:2],), (a,))
    assert "max abs difference" in measure.mismatch((a * (1 + 1e-7),), (a,))
    assert "2 results" in measure.mismatch((a, a), (a,))
    assert measure.mismatch((a[:1],), (a[:1], a), compare=1) == ""   # value-only rows


def test_skipped_and_failing_adapters_do_not_stop_the_run():
    def skipping(problem):
        raise Skip("not installed here")

    def failing(problem):
        def setup():
            raise RuntimeError("boom\nsecond line")
        return [Row("failing", "failing tool", setup)]

    problem = select(all_problems(quick=True), ["seeds"])[0]
    result = measure.run_problem(problem, {"tape": hybrid.tape_rows, "skipping": skipping,
                                           "failing": failing},
                                 hybrid.tape_reference, repeat=1, target_s=1e-4)
    rows = {m.label: m for m in result.rows}
    assert rows["skipping"].status == "skipped"
    assert rows["skipping"].note == "not installed here"
    assert rows["failing tool"].status == "error"
    assert rows["failing tool"].note == "RuntimeError: boom"
    assert rows["hybridad tape"].status == "ok"
    _, body = table_rows(report.problem_table(result, 1), "seeds")
    assert [row[0] for row in body][-2:] == ["skipping", "failing tool"]


def test_timing_is_round_robin_over_tools(monkeypatch):
    calls = []
    monkeypatch.setattr(measure, "loops_for", lambda call, target: 1)
    monkeypatch.setattr(measure, "time_loop",
                        lambda call, number: calls.append(call()) or 1e-6)
    rows = [measure.Measurement(t, t, "ok", prepared=Prepared(lambda t=t: t, tuple))
            for t in "abc"]
    measure.time_interleaved(rows, repeat=3, target_s=1e-3)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(r.times == [1e-6] * 3 for r in rows)


def test_llvm_adapter_reports_a_missing_backend(monkeypatch):
    monkeypatch.delattr(hd, "lambdify", raising=False)
    problem = select(all_problems(quick=True), ["seeds"])[0]
    rows = measure.rows_for(problem, {"llvm": hybrid.llvm_rows})
    meas = measure.prepare_row(rows[0], None)
    assert meas.status == "skipped" and "llvm backend not available" in meas.note


def test_cli_selection_and_default_paths(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["--only", "no-such-problem", "--out", str(tmp_path / "r.md")])
    with pytest.raises(SystemExit):
        cli.main(["--tools", "no-such-tool", "--out", str(tmp_path / "r.md")])
    names = [p.name for p in select(all_problems(quick=True), ["rosenbrock-10"])]
    assert names == ["rosenbrock-10", "rosenbrock-10-batch"]      # not rosenbrock-100...
    names = [p.name for p in select(all_problems(), ["rosenbrock-10", "jacobian"])]
    assert names == ["rosenbrock-10", "rosenbrock-10-batch", "jacobian-inputs-1024x16",
                     "jacobian-inputs-16x1024", "jacobian-weights-64x16",
                     "jacobian-batch-8x64x16"]
    args = cli.build_parser().parse_args(["--quick"])
    out, plot = cli.output_paths(args)
    assert out.name == "RESULTS-quick.md" and plot.name == "results-quick.png"
    args = cli.build_parser().parse_args(["--out", str(tmp_path / "x.md")])
    assert cli.output_paths(args) == (tmp_path / "x.md", tmp_path / "results.png")


def test_markdown_and_plot_files(tmp_path, quick_results):
    text = report.markdown(quick_results[:2], 2, "python -m benchmarks --quick", quick=True)
    assert text.startswith("# hybridad benchmarks (quick sizes")
    assert "- CPU: " in text and " cores" in text and "- Python " in text
    assert "numpy " in text and "sympy " in text
    pytest.importorskip("matplotlib")
    path = tmp_path / "plot.png"
    assert report.plot(quick_results[:2], path) == f"plot written to {path}"
    assert path.stat().st_size > 1000
