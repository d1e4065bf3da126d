"""benchmarks/tape_crossover.py: its least-squares fit recovers known constants, and a
quick run prints the table (smoke test; timings themselves are never asserted)."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tape_crossover.py"


@pytest.fixture(scope="module")
def crossover():
    spec = importlib.util.spec_from_file_location("tape_crossover", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["tape_crossover"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def synthetic_case(crossover, constants, family, n_in, n_out, batch, edges, ops):
    """A case whose times the model with ``constants`` predicts exactly."""
    primal = 1e-3
    forward = primal + edges * constants["FORWARD_EDGE_COST"] \
        + ops * constants["ELEMENT_COST"] * n_in * batch
    reverse = primal + edges * (constants["REVERSE_EDGE_COST"]
                                + constants["STORE_COST"] * batch) \
        + ops * constants["ELEMENT_COST"] * n_out * batch
    return crossover.Case(family, n_in, n_out, batch, edges, ops, forward, reverse, primal)


def test_fit_recovers_the_constants_of_exact_data(crossover):
    truth = {"FORWARD_EDGE_COST": 2e-6, "REVERSE_EDGE_COST": 3e-6, "ELEMENT_COST": 1e-9,
             "STORE_COST": 4e-8}
    shapes = [(1024, 16, 49152, 65000), (16, 1024, 49152, 65000), (64, 64, 12288, 16000),
              (2, 256, 1023, 1200), (512, 1, 3070, 3500)]
    cases = [synthetic_case(crossover, truth, "layer", n_in, n_out, batch, edges, ops)
             for n_in, n_out, edges, ops in shapes for batch in (1, 16)]
    fitted = crossover.fit_constants(cases)
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=1e-6)
    assert all(crossover.modelled_choice(c, fitted) == c.faster for c in cases)


def test_quick_run_prints_the_table(crossover, capsys):
    crossover.main(["--quick", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "auto picked the faster mode in" in out
    assert "constants fitted:" in out
    assert out.count("layer") >= 2 and "reduction" in out and "fan-out" in out
