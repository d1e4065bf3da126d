"""Compiled kernels: ``lambdify`` builds value and derivative blocks on the DAG and
compiles them with the LLVM backend (or runs them on tapes / symbolic evaluation)."""

from .kernel import Kernel, lambdify

__all__ = ["Kernel", "lambdify"]
