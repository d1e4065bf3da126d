"""Every ```python block of the README runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    namespace: dict = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)  # noqa: S102


# -- the shell commands and the printed output -----------------------------------------------
SHELL_LINES = [line.split("  #")[0].strip()
               for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
               for line in block.splitlines() if line.startswith("python -m hybridad ")]


def test_readme_has_command_lines():
    assert len(SHELL_LINES) >= 4


@pytest.mark.parametrize("line", SHELL_LINES)
def test_readme_command_line_runs(line, tmp_path):
    """Each `python -m hybridad ...` line of the README exits 0 (files land in tmp)."""
    import shlex
    import subprocess
    import sys

    args = shlex.split(line)[3:]
    result = subprocess.run([sys.executable, "-m", "hybridad", *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    exact = [float(line.split()[2]) for line in result.stdout.splitlines()
             if line.startswith("  exact modes:")]
    assert exact and max(exact) < 1e-14          # libm and numpy may differ by an ulp


def test_readme_main_job_output_is_what_the_command_prints():
    """The README's pasted table equals the real output, except the timing numbers."""
    import subprocess
    import sys

    text = README.read_text()
    pasted = re.search(r"## The main job.*?```text\n(.*?)```", text, flags=re.S).group(1)
    real = subprocess.run([sys.executable, "-m", "hybridad"], capture_output=True, text=True,
                          timeout=300).stdout.splitlines()
    varying = ("µs per call", "LLVM kernel: compiled in", "  ...")
    for line in pasted.splitlines():
        if line.startswith(varying) or line.strip() == "...":
            continue
        assert line in real, line
