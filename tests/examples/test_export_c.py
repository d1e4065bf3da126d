"""examples/export_c.py writes f.c, f.h and main.c; compiled, main prints the seeds'
value and gradient."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from example_loader import load_example

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "export_c.py"
VALUE, GRADIENT = 11.652071455223084, [5.5, 1.716337814536774]

example = load_example("export_c", "export_c_example")


def test_writes_the_files_without_compiling(tmp_path):
    result = example.main(["--out", str(tmp_path / "c"), "--no-run"])
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["f.c", "f.h", "main.c"] and result["output"] is None
    assert "void f(long n_rows, const double *arg0, long stride0, double *out0, " \
        "double *out1);" in (tmp_path / "c" / "f.h").read_text()
    assert result["kernel"] == pytest.approx([VALUE, *GRADIENT], rel=1e-15)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
def test_runs_as_a_script_and_prints_the_gradient(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    printed = {line.split("=")[0].strip(): float(line.split("=")[1])
               for line in out.splitlines() if line.startswith(("f ", "df/"))}
    assert printed["f"] == pytest.approx(VALUE, rel=1e-15)
    assert [printed["df/dx1"], printed["df/dx2"]] == pytest.approx(GRADIENT, rel=1e-15)
    assert "largest difference 0.0e+00" in out
