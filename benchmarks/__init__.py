"""hybridad's benchmark runner: the same problems through hybridad (symbolic evaluation,
tape, LLVM kernels) and every installed peer, interleaved, verified, medians and ratios.

    python -m benchmarks                    # full sizes; writes benchmarks/RESULTS.md + results.png
    python -m benchmarks --quick            # tiny sizes (writes RESULTS-quick.md)
    python -m benchmarks --only rosenbrock-10,seeds --tools tape,llvm,jax --repeat 7

Modules: problems (the problems, written once), hybrid (hybridad's modes), peers (SymPy,
SymEngine, JAX, torch.func, CasADi, hand-written C), convert (DAG -> SymEngine/CasADi),
measure (setup, checks, interleaved timing), report (tables, RESULTS.md, plot), cli.
"""
