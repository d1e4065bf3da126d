"""examples/quickstart.py: every route gives the textbook value and gradient at (2, 5)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"
VALUE = 11.652071455223084
GRADIENT = np.array([5.5, 1.716337814536774])




quickstart = load_example("quickstart", "quickstart_example")


@pytest.fixture(scope="module")
def default_run():
    return quickstart.main([])


def test_the_three_constructions_are_one_node(default_run):
    assert default_run["expression"] == "log(x1) + x1*x2 - sin(x2)"
    assert default_run["same_node"] is True
    assert default_run["gradient_text"] == ["1/x1 + x2", "x1 - cos(x2)"]


def test_every_route_gives_the_value_and_gradient(default_run):
    assert_allclose(default_run["exact"], GRADIENT, rtol=1e-15)
    for route in ("symbolic", "kernel"):
        value, gradient = default_run[route]
        assert value == pytest.approx(VALUE, rel=1e-15)
        assert_allclose(gradient, GRADIENT, rtol=1e-15)
    value, forward, reverse = default_run["tape"]
    assert value == pytest.approx(VALUE, rel=1e-15)
    assert_allclose(forward, GRADIENT, rtol=1e-15)
    assert_allclose(reverse, GRADIENT, rtol=1e-15)
    assert_allclose(default_run["grad"], GRADIENT, rtol=1e-15)


def test_kernel_batch_matches_pointwise_formula(default_run):
    values, gradients = default_run["kernel_batch"]
    points = np.array([[2.0, 5.0], [3.0, 6.0], [4.0, 10.0]])
    a, b = points.T
    assert_allclose(values, np.log(a) + a * b - np.sin(b), rtol=1e-14)
    assert_allclose(gradients, np.stack([1 / a + b, a - np.cos(b)], axis=1), rtol=1e-14)


def test_finite_differences_agree_to_their_accuracy(default_run):
    assert_allclose(default_run["central"], GRADIENT, rtol=1e-9)
    assert_allclose(default_run["complex"], GRADIENT, rtol=1e-15)
    assert default_run["check_grad"] < 1e-8


def test_printed_report(capsys):
    quickstart.main([])
    out = capsys.readouterr().out
    assert "give one node: True" in out
    assert "df/dx1 = 1/x1 + x2, df/dx2 = x1 - cos(x2)" in out
    assert "value 11.652071455223084" in out
    assert out.count("[5.5, 1.71633781453677") == 5     # symbolic, 2x tape, grad, kernel


def test_traces_and_another_point(capsys):
    result = quickstart.main(["--at", "1.5", "-0.5", "--traces"])
    out = capsys.readouterr().out
    assert "Reverse adjoint trace" in out
    value, gradient = result["kernel"]
    assert value == pytest.approx(np.log(1.5) - 0.75 - np.sin(-0.5), rel=1e-14)
    assert_allclose(gradient, [1 / 1.5 - 0.5, 1.5 - np.cos(-0.5)], rtol=1e-14)


def test_nonpositive_x1_is_refused():
    with pytest.raises(SystemExit):
        quickstart.main(["--at", "0", "1"])


def test_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert "value 11.652071455223084, gradient [5.5, 1.7163378145367738]" in out
