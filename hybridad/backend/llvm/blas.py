"""BLAS for compiled kernels: scipy's ``dgemm`` and ``dgemv``, called from generated code.

``scipy.linalg.cython_blas`` exports the Fortran BLAS scipy links against as PyCapsules
in ``__pyx_capi__``; a capsule holds the function's address and its C signature. The
address is registered with llvmlite under our own symbol name, so a kernel calls it as
an external function, with no Python in between. The signature is checked (every
integer argument an ``int *``: 32-bit LP64 BLAS) before the address is used.
"""

from __future__ import annotations

import ctypes
from typing import Any

# our symbol name, the Fortran argument kinds (all by reference) and the LLVM declaration
# of each BLAS function used: dgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta,
# c, ldc) and dgemv(trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
FUNCTIONS = {
    "dgemm": ("hybridad_dgemm",
              ("char", "char", "int", "int", "int", "d", "d", "int", "d", "int", "d", "d",
               "int"),
              "i8*, i8*, i32*, i32*, i32*, double*, double*, i32*, double*, i32*, double*, "
              "double*, i32*"),
    "dgemv": ("hybridad_dgemv",
              ("char", "int", "int", "d", "d", "int", "d", "int", "d", "d", "int"),
              "i8*, i32*, i32*, double*, double*, i32*, double*, i32*, double*, double*, "
              "i32*"),
}
SYMBOL = FUNCTIONS["dgemm"][0]


class Blas:
    """The addresses of scipy's dgemm and dgemv, registered with LLVM once per process."""

    _registered: "Blas | None" = None

    def __init__(self, addresses: dict[str, int]):
        self.addresses = addresses

    @classmethod
    def load(cls) -> "Blas | None":
        """The process's Blas, or None when scipy's BLAS is missing or a function does not
        have the expected 32-bit-integer signature (kernels then use loops)."""
        if cls._registered is not None:
            return cls._registered
        addresses = {}
        for name, (_, kinds, _) in FUNCTIONS.items():
            address = _capsule_address(name, kinds)
            if address is None:
                return None
            addresses[name] = address
        import llvmlite.binding as llvm

        for name, address in addresses.items():
            llvm.add_symbol(FUNCTIONS[name][0], address)
        cls._registered = cls(addresses)
        return cls._registered

    def declare(self, e: Any, name: str = "dgemm") -> str:
        """Declare ``name`` in the module being written by emitter ``e``; its symbol."""
        symbol, _, parameters = FUNCTIONS[name]
        e.declarations.setdefault(symbol, f'declare void @"{symbol}"({parameters})')
        return f'"{symbol}"'


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
