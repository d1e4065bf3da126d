"""examples/logistic_regression.py: the mean-reducing kernel is exact and training works."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "logistic_regression.py"




example = load_example("logistic_regression", "logistic_regression_example")
ARGS = ["--rows", "4000", "--features", "6", "--threads", "2"]


@pytest.fixture(scope="module")
def run():
    return example.main(ARGS)


def test_kernel_matches_the_closed_form(run):
    assert run["check_start"] < 1e-10
    assert run["check_random"] < 1e-10


def test_kernel_gradient_directly():
    data = example.make_data(500, 4, seed=3)
    kernel = example.loss_kernel(4, threads=1)
    w, b = np.array([0.5, -1.0, 0.25, 2.0]), -0.4
    loss, (grad_w, grad_b) = kernel(data.X, w, b, data.y)
    z = data.X @ w + b
    p = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(np.mean(-data.y * np.log(p) - (1 - data.y) * np.log1p(-p)),
                                 rel=1e-12)
    assert_allclose(grad_w, data.X.T @ (p - data.y) / 500, rtol=1e-10)
    assert grad_b == pytest.approx(np.mean(p - data.y), rel=1e-10)


def test_training_lowers_the_loss_to_the_optimum(run):
    gd, lbfgs = run["gd"]["training"], run["lbfgs"]["training"]
    assert run["start_loss"] == pytest.approx(np.log(2), rel=1e-14)
    assert lbfgs.loss < gd.loss < run["start_loss"]
    assert gd.loss - lbfgs.loss < 1e-2                     # a few steps get close
    data = run["data"]
    theta = np.append(lbfgs.w, lbfgs.b)
    _, grad_w, grad_b = example.closed_form(data.X, data.y, theta[:-1], theta[-1])
    assert np.max(np.abs(np.append(grad_w, grad_b))) < 1e-6   # a stationary point


def test_learned_weights_and_accuracy(run):
    data = run["data"]
    for name in ("gd", "lbfgs"):
        assert run[name]["correlation"] > 0.95, name
        assert run[name]["accuracy"] > run["true_accuracy"] - 0.03, name
    assert run["lbfgs"]["training"].b == pytest.approx(data.b_true, abs=0.15)
    assert run["true_accuracy"] > 0.65                      # well above chance


def test_one_kernel_call_per_evaluation(run):
    gd = run["gd"]["training"]
    assert gd.kernel_calls == 21                           # 20 steps and the final loss


def test_printed_report(capsys):
    example.main(["--rows", "1000", "--features", "3", "--gd-steps", "5", "--threads", "1"])
    out = capsys.readouterr().out
    assert "1000 training rows x 3 features, 250 held-out rows" in out
    rows = {line[:30].strip(): line[30:].split() for line in out.splitlines()
            if line.startswith("  ") and line[2:3].isalpha()}
    assert float(rows["start (w = 0, b = 0)"][0]) == pytest.approx(np.log(2), abs=1e-6)
    lbfgs = next(v for k, v in rows.items() if k.startswith("L-BFGS-B"))
    assert float(lbfgs[0]) < float(rows["gradient descent, 5 steps"][0])
    assert float(lbfgs[2]) > 0.95                           # correlation with w_true


def test_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--rows", "500", "--features", "3"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert "500 training rows x 3 features, 125 held-out rows" in out
    assert "start (w = 0, b = 0)           0.693147" in out
