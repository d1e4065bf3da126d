"""examples/dask_logistic_regression.py: gradient descent on a dask cluster equals the
same descent in-process, on 2·10⁵ rows (the example's default is 10⁷)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dask_logistic_regression.py"
example = load_example("dask_logistic_regression", "dask_logistic_regression_example")


@pytest.fixture(scope="module")
def printed():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = example.main(["--rows", "200000", "--chunk-rows", "25000", "--steps", "8",
                               "--features", "4"])
    return result, buffer.getvalue()


def table(out: str) -> dict[str, list[float]]:
    """The two runs' rows: name -> [start loss, final loss, bias, seconds per step]."""
    rows = {}
    for line in out.splitlines():
        if line.startswith(("  dask,", "  in-process,")):
            rows[line[:32].strip()] = [float(v) for v in line[32:].split()]
    return rows


def test_the_header_names_rows_chunks_and_workers(printed):
    _, out = printed
    assert ("logistic regression on dask: 200000 rows x 4 features in 8 chunks of up to "
            "25000 rows, 2 workers x 1 thread") in out


def test_cluster_and_in_process_descents_agree(printed):
    result, out = printed
    rows = table(out)
    cluster, local = rows["dask, 2 workers"], rows["in-process, 2 thread(s)"]
    assert cluster[0] == local[0] == pytest.approx(np.log(2), abs=1e-6)   # w = 0, b = 0
    assert cluster[1] == pytest.approx(local[1], rel=1e-13)              # final loss
    assert cluster[1] < cluster[0] - 0.05                                # it learned
    assert result["loss_difference"] < 1e-13
    assert result["parameter_difference"] < 1e-12
    np.testing.assert_allclose(result["dask"].w, result["local"].w, rtol=1e-10)
    printed_diff = float(out.split("max |parameter difference|")[1].split()[0])
    assert printed_diff == pytest.approx(result["parameter_difference"], rel=0.1, abs=1e-17)


def test_the_weights_head_for_the_true_ones(printed):
    result, _ = printed
    w, w_true = result["dask"].w, result["w_true"]
    assert np.corrcoef(w, w_true)[0, 1] > 0.95


def test_help_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert "--rows" in out and "--chunk-rows" in out and "10 million rows" in out
