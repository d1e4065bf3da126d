"""examples/plots.py draws the README's three figures (quick sizes) and returns sane numbers."""

from pathlib import Path

import pytest
from example_loader import load_example

pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plots.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




example = load_example("plots", "plots_example")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, example.main(["--quick", "--out", str(out), "--repeat", "2"])


def test_three_valid_png_files(run):
    out, result = run
    assert set(result["files"]) == {"swell", "jacobian", "throughput"}
    for name in ("swell.png", "jacobian_modes.png", "throughput.png"):
        path = out / name
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 20_000, name                 # a real figure, not an empty canvas
        assert path in result["files"].values()


def test_swell_numbers(run):
    swell = run[1]["swell"]
    assert swell["n"] == list(range(1, 13))
    for n, size in zip(swell["n"], swell["hd_dag"]):
        if n >= 2:
            assert size == 7 * n - 10, n                # the README's 7n - 10
    assert swell["hd_tree"][swell["n"].index(12)] == 65536
    assert swell["sympy_n_max"] >= 2                    # SymPy ran until its budget
    assert swell["sympy_tree"] > swell["sympy_cse"] > swell["hd_dag"][swell["sympy_n_max"] - 1]


def test_jacobian_numbers(run):
    jac = run[1]["jacobian"]
    assert [(t.n_in, t.n_out) for t in jac["timings"]] == example.QUICK_SHAPES
    for t in jac["timings"]:
        for part in (t.tape, t.kernel, t.build, t.compile):
            assert all(0 < part[mode] < 10 for mode in ("forward", "reverse"))
        assert t.nodes["forward"] == t.nodes["reverse"]  # both modes simplify to one DAG
    assert set(jac["winners"]) == {"tape", "kernel", "build"}


def test_throughput_found_every_hybridad_row(run):
    tp = run[1]["throughput"]
    assert tp["problems"] == list(example.PLOTTED)
    assert all(tp["hybridad_found"].values())
    assert tp["caption"].startswith("from benchmarks/RESULTS.md, 20")   # the date line
    for times in tp["times"].values():
        assert all(v > 0 for v in times.values() if v is not None)


def test_crossovers_and_winners():
    ratios = [1 / 4, 1, 4, 16]
    assert example.crossovers(ratios, [1, 1, 2, 4], [2, 2, 1, 1]) == pytest.approx([2.0])
    assert example.crossovers(ratios, [1, 1, 1, 1], [1.05, 1, 0.98, 1]) == []
    assert example.winner(1.0, 1.2) == "forward"
    assert example.winner(1.0, 1.05) == "tie"


def test_parse_results_reads_the_tables():
    text = ("- date: 2026-01-01 10:00\n- CPU: Test CPU, 2 cores\n\n### seeds: Seeds\n\n"
            "| tool | µs per call | ratio | setup ms | note |\n|---|--:|--:|--:|---|\n"
            "| **hybridad llvm** | 0.487 | 1.00 | 53.4 |  |\n"
            "| jax jit(jacfwd) | 1,415 | 3 | 1 | |\n| jax jit(jacrev) | 40.7 | 1 | 1 | |\n"
            "| sympy lambdify | — | — | — | skipped: size cap |\n")
    problems = example.parse_results(text)
    seeds = problems["seeds"]
    assert seeds.unit == "µs per call"
    assert seeds.times["hybridad llvm"] == 0.487
    assert example.pick(seeds, "jax jit(*") == ("jax jit(jacrev)", 40.7)
    assert example.pick(seeds, "sympy lambdify") is None
    assert example.missing_text(seeds, "sympy lambdify", "SymPy") == "SymPy: skipped (size cap)"
    assert example.missing_text(seeds, "C gcc", "C") == "C: not in this benchmark"
    assert example.machine_caption(text).endswith("2026-01-01 10:00, Test CPU, 2 cores")


def test_only_rejects_unknown_figures():
    with pytest.raises(SystemExit):
        example.main(["--only", "swell,bars"])
