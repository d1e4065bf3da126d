"""Code generation for use outside Python: ``hd.codegen.to_c``."""

from __future__ import annotations

from typing import Any

__all__ = ["to_c"]


def to_c(args: Any, exprs: Any, derivatives: str | None = None, *, name: str = "f",
         wrt: Any = None, reduce: str | None = None, mode: str = "auto",
         scalarize: bool | None = None) -> tuple[str, str]:
    """C99 ``(source, header)`` of the kernel ``hd.lambdify(args, exprs, derivatives,
    wrt=, reduce=, mode=, scalarize=)`` would build, as ``kernel.to_c(name)``: primal and
    derivatives, the batch loop and the reduction in ``void name(long n_rows, const
    double *arg0, long stride0, ..., double *out0, ...)``, documented in the header.
    Nothing is JIT-compiled for element-level kernels; a tensor program too large to
    unroll is planned as loop nests (contractions as plain loops, no BLAS).

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> source, header = hd.codegen.to_c([x1, x2], hd.log(x1) + x1 * x2 - hd.sin(x2),
    ...                                  derivatives="gradient", name="f")
    >>> "void f(long n_rows, const double *arg0, long stride0, double *out0, " \\
    ...     "double *out1);" in header
    True
    """
    from .backend.c import check_name
    from .backend.kernel import Kernel, _check_options, _tensor_arguments
    from .backend.tensor_kernel import TensorLambdified, choose_scalarize

    check_name(name)
    if _tensor_arguments(args) and not choose_scalarize(exprs, scalarize):
        _check_options(derivatives, reduce, "llvm", 2, 1)
        kernel: Any = TensorLambdified(args, exprs, derivatives, wrt=wrt, reduce=reduce)
    else:                                # interpreted backend: built, not compiled
        kernel = Kernel(args, exprs, derivatives, wrt=wrt, reduce=reduce, backend="numpy",
                        mode=mode)
    return kernel.to_c(name)
