"""The command line: default example, any expression, errors with status 2."""

import subprocess
import sys

import pytest

from hybridad.__main__ import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "hybridad", *args], capture_output=True,
                          text=True, timeout=120)


def test_default_example_prints_value_and_gradient_both_ways():
    result = run()
    assert result.returncode == 0
    out = result.stdout
    assert "11.6520714552231" in out
    line1 = next(line for line in out.splitlines() if line.startswith("df/dx1"))
    line2 = next(line for line in out.splitlines() if line.startswith("df/dx2"))
    assert line1.split()[1] == "5.5" and float(line1.split()[2]) == pytest.approx(5.5, 1e-9)
    assert line2.split()[1].startswith("1.716337814536")
    assert float(line2.split()[2]) == pytest.approx(1.7163378145, rel=1e-9)


def test_any_expression_with_wrt(capsys):
    assert main(["x**3 + 2*y", "--at", "x=2", "y=1", "--wrt", "x"]) == 0
    out = capsys.readouterr().out
    assert "df/dx" in out and "df/dy" not in out
    assert "12" in next(line for line in out.splitlines() if line.startswith("df/dx"))


@pytest.mark.parametrize("args,fragment", [
    (["sinn(x)", "--at", "x=1"], "unknown function 'sinn'"),
    (["x +", "--at", "x=1"], "error"),
    (["x*y", "--at", "x=1"], "no value for y"),
    (["x", "--at", "x=abc"], "must be a number"),
    (["x", "--at", "x"], "NAME=VALUE"),
    (["__import__('os')", "--at", "x=1"], "error"),
])
def test_bad_input_exits_2_with_one_paragraph(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_examples():
    result = run("--help")
    assert result.returncode == 0 and "examples:" in result.stdout
