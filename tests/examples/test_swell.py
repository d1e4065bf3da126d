"""examples/swell.py runs and prints the logistic-map sizes."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "swell.py"


def test_swell_example_prints_the_table():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--n", "12", "--sympy-budget", "2"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    rows = {int(line.split()[0]): line.split() for line in out.splitlines()[2:]}
    assert set(rows) == set(range(1, 13))
    assert rows[10][-3] == "60"            # hybridad DAG size of d l_10/dx: 7n - 10
    assert rows[10][1] == "40832"          # SymPy's tree for n = 10
    assert rows[12][-1] == "65536"         # what hybridad's DAG stands for as a tree
