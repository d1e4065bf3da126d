"""The command line: every mode side by side on the default example and on any
expression, Hessian, batch, traces, pictures; errors are one paragraph, status 2."""

import math
import shutil
import subprocess
import sys

import pytest

import hybridad as hd
from hybridad.__main__ import main

MODES = ["symbolic", "forward tape", "reverse tape", "LLVM kernel", "finite diff (central)"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "hybridad", *args], capture_output=True,
                          text=True, timeout=180)


def row(out, name):
    """The numbers of a table row, one per mode."""
    line = next(line for line in out.splitlines()
                if line.startswith(name + " ") and line.split()[1:2] != ["="])
    return [float(v) for v in line.split()[1:]]


def test_default_example_every_mode_agrees_with_the_seeds():
    result = run()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("f = log(x1) + x1*x2 - sin(x2)\nat x1 = 2, x2 = 5")
    values, d1, d2 = row(out, "f"), row(out, "df/dx1"), row(out, "df/dx2")
    assert len(values) == len(d1) == len(d2) == 5
    assert values[:4] == [11.6520714552231] * 4 and values[4] == pytest.approx(11.6520714552231)
    assert d1[:4] == [5.5] * 4 and d1[4] == pytest.approx(5.5, rel=1e-9)
    assert d2[:4] == [1.71633781453677] * 4 and d2[4] == pytest.approx(1.716337814536, rel=1e-9)
    timing = next(line for line in out.splitlines() if line.startswith("µs per call"))
    assert len(timing.split()) == 3 + 5 and all(float(t) > 0 for t in timing.split()[3:])
    assert "exact modes:        0.0e+00  (identical)" in out
    fd = next(line for line in out.splitlines() if line.startswith("  finite differences:"))
    assert 1e-13 < float(fd.split()[2]) < 1e-8
    assert "DAG size: f 5 ops; f with its gradient 9 ops" in out
    # the textbook traces: the primal once, the tangent for x1, the adjoints
    assert out.count("Forward primal trace") == 1
    assert "Forward tangent trace (seed x1)" in out and "Reverse adjoint trace" in out
    assert "x̄1 = v̄_-1 = 5.5" in out and "x̄2 = v̄_0 = 1.716" in out


def test_any_expression_with_wrt_holds_the_others_fixed(capsys):
    assert main(["x**3 + 2*y", "--at", "x=2", "y=1", "--wrt", "x"]) == 0
    out = capsys.readouterr().out
    assert "y held fixed" in out and "df/dy" not in out
    assert row(out, "df/dx")[:4] == [12.0] * 4
    assert "Forward primal trace" not in out                  # traces only when asked


def test_hessian_batch_and_trace(capsys):
    assert main(["log(x1) + x1*x2 - sin(x2)", "--at", "x1=2", "x2=5", "--hessian",
                 "--batch", "50", "--trace", "reverse"]) == 0
    out = capsys.readouterr().out
    hess = [row(out, "x1"), row(out, "x2")]
    assert hess[0] == pytest.approx([-0.25, 1.0]) and hess[1][0] == pytest.approx(1.0)
    assert hess[1][1] == pytest.approx(math.sin(5.0), rel=1e-14)
    assert "largest disagreement (Hessian" in out
    assert "batch of 50 points" in out
    for mode in MODES:
        assert any(line.strip().startswith(mode) for line in out.split("batch of 50")[1]
                   .splitlines())
    assert out.count("exact modes:        0.0e+00  (identical)") >= 1
    assert "Reverse adjoint trace" in out and "Forward tangent trace" not in out


def test_dot_picture(tmp_path, capsys):
    path = tmp_path / "f.dot"
    assert main(["sin(x)*exp(y)", "--at", "x=1", "y=2", "--dot", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("digraph") and "sin" in text and "exp" in text
    assert f"written to {path}" in capsys.readouterr().out


def test_picture_formats_need_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["x*y", "--at", "x=1", "y=2", "--dot", str(tmp_path / "f.svg")]) == 2
    assert "dot" in capsys.readouterr().err


@pytest.mark.parametrize("args,fragment", [
    (["sinn(x)", "--at", "x=1"], "unknown function 'sinn'"),
    (["x +", "--at", "x=1"], "error"),
    (["x*y", "--at", "x=1"], "no value for y"),
    (["x", "--at", "x=abc"], "must be a number"),
    (["x", "--at", "x"], "NAME=VALUE"),
    (["x", "--at", "x=1", "--wrt", "z"], "--wrt names z"),
    (["x", "--at", "x=1", "--batch", "0"], "--batch must be a positive"),
    (["__import__('os')", "--at", "x=1"], "error"),
])
def test_bad_input_exits_2_with_one_paragraph(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_help_shows_examples_and_the_modes():
    result = run("--help")
    assert result.returncode == 0 and "examples:" in result.stdout
    assert "--hessian" in result.stdout and "--batch" in result.stdout
    assert "reverse tape" in result.stdout


def test_constant_expression_has_no_derivatives(capsys):
    with pytest.raises(SystemExit) as stopped:           # argparse: --at needs a value
        main(["2 + 3", "--at"])
    assert stopped.value.code == 2
    capsys.readouterr()
    assert main(["2.5"]) == 0
    out = capsys.readouterr().out
    assert row(out, "f")[:4] == [2.5] * 4
    assert isinstance(hd.parse("2.5"), hd.Expr)


@pytest.mark.parametrize("expression,point", [("log(x)", "x=-1"), ("sqrt(x)", "x=0")])
def test_nan_and_inf_are_compared_without_warnings(expression, point):
    result = run(expression, "--at", point)
    assert result.returncode == 0 and result.stderr == ""
    assert "exact modes:        0.0e+00  (identical)" in result.stdout


def test_let_bindings_parse(capsys):
    assert main(["u = x*y; u*sin(u)", "--at", "x=1", "y=2"]) == 0
    out = capsys.readouterr().out
    assert row(out, "df/dx")[0] == pytest.approx(2 * math.sin(2) + 4 * math.cos(2), rel=1e-14)


def test_bare_trace_flag_prints_both_tables():
    # DESIGN §2's `[--trace]` is a flag: a new user's bare --trace exited 2
    # ("expected one argument")
    done = run("log(x1) + x1*x2 - sin(x2)", "--at", "x1=2", "x2=5", "--trace")
    assert done.returncode == 0, done.stderr
    assert "Forward tangent trace" in done.stdout and "Reverse adjoint trace" in done.stdout
    only = run("log(x1) + x1*x2 - sin(x2)", "--at", "x1=2", "x2=5", "--trace", "forward")
    assert "Forward tangent trace" in only.stdout
    assert "Reverse adjoint trace" not in only.stdout
