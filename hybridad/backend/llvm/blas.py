"""BLAS for compiled kernels: scipy's ``dgemm``, called from generated code.

``scipy.linalg.cython_blas`` exports the Fortran BLAS scipy links against as PyCapsules
in ``__pyx_capi__``; a capsule holds the function's address and its C signature. The
address is registered with llvmlite under our own symbol name, so a kernel calls it as
an external function, with no Python in between. The signature is checked (every
integer argument an ``int *``: 32-bit LP64 BLAS) before the address is used.
"""

from __future__ import annotations

import ctypes
from typing import Any

SYMBOL = "hybridad_dgemm"
# the arguments of Fortran dgemm: transa, transb, m, n, k, alpha, a, lda, b, ldb, beta,
# c, ldc; all by reference
_DGEMM_KINDS = ("char", "char", "int", "int", "int", "d", "d", "int", "d", "int", "d", "d",
                "int")
_DECLARATION = (f'declare void @"{SYMBOL}"(i8*, i8*, i32*, i32*, i32*, double*, double*, '
                f"i32*, double*, i32*, double*, double*, i32*)")


class Blas:
    """The address of scipy's dgemm, registered with LLVM once per process."""

    _registered: "Blas | None" = None

    def __init__(self, address: int):
        self.address = address

    @classmethod
    def load(cls) -> "Blas | None":
        """The process's Blas, or None when scipy's BLAS is missing or its dgemm does not
        have the expected 32-bit-integer signature (kernels then use loops)."""
        if cls._registered is not None:
            return cls._registered
        address = _capsule_address("dgemm", _DGEMM_KINDS)
        if address is None:
            return None
        import llvmlite.binding as llvm

        llvm.add_symbol(SYMBOL, address)
        cls._registered = cls(address)
        return cls._registered

    def declare(self, e: Any) -> str:
        """Declare dgemm in the module being written by emitter ``e``; its symbol."""
        e.declarations.setdefault(SYMBOL, _DECLARATION)
        return f'"{SYMBOL}"'


def _capsule_address(name: str, kinds: tuple[str, ...]) -> int | None:
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    capsule = cython_blas.__pyx_capi__.get(name)
    if capsule is None:
        return None
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    signature = get_name(capsule)
    if signature is None or not _matches(signature.decode(), kinds):
        return None
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                    ctypes.c_char_p]
    return get_pointer(capsule, signature)


def _matches(signature: str, kinds: tuple[str, ...]) -> bool:
    """Whether a capsule's C signature ``void (char *, int *, ..., <double> *)`` has
    pointer arguments of ``kinds`` ('char', 'int' or 'd' for scipy's double typedef)."""
    if not signature.startswith("void (") or not signature.endswith(")"):
        return False
    arguments = [a.strip() for a in signature[len("void ("):-1].split(",")]
    if len(arguments) != len(kinds):
        return False
    for argument, kind in zip(arguments, kinds):
        if not argument.endswith("*"):
            return False
        base = argument[:-1].strip()
        if kind == "char" and base != "char" or kind == "int" and base != "int":
            return False
        if kind == "d" and not (base == "double" or base.endswith("_d")):
            return False
    return True
