"""Compiled kernels: ``lambdify`` builds value and derivative blocks on the DAG and
compiles them with the LLVM backend (or runs them on tapes / symbolic evaluation)."""

from .kernel import Kernel, clear_kernel_cache, lambdify

__all__ = ["Kernel", "clear_kernel_cache", "lambdify"]
