"""Vector variants of math functions for loop kernels: glibc's libmvec.

LLVM's loop vectorizer turns ``y[i] = exp(x[i])`` into 4-wide vector code, but without
a vector math library each lane still calls the scalar ``exp``: log-sum-exp over 10⁶
elements ran at a third of numpy's speed. libmvec (part of glibc) has vector variants
named by the x86-64 vector function ABI, ``_ZGV<isa>N<lanes><v per argument>_<name>``
(isa b = SSE, c = AVX, d = AVX2, e = AVX-512), accurate to 4 ulp.

A loop kernel calls such a function through a scalar alias (``hybridad_vm_exp``, bound
to libm's ``exp``) whose call sites carry LLVM's ``vector-function-abi-variant``
attribute listing the vector variants; the vectorizer then calls those in the vector
body and the alias in the remainder. The alias has a name LLVM does not know, so it is
never turned back into the ``llvm.exp`` intrinsic (which would lose the variants).
Element-level kernels keep the intrinsics: their results stay bit-identical to libm.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from functools import cache, lru_cache

# math functions libmvec provides for double, by arity
FUNCTIONS = {name: 1 for name in (
    "exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "asinh", "acosh", "atanh", "exp2", "exp10", "log2", "log10", "log1p", "expm1",
    "cbrt", "erf", "erfc")} | {"pow": 2, "atan2": 2, "hypot": 2}

# (ISA letter, lanes, CPU feature it needs); per lane count the first available wins
_ISAS = (("b", 2, "sse2"), ("d", 4, "avx2"), ("c", 4, "avx"), ("e", 8, "avx512f"))

ALIAS_PREFIX = "hybridad_vm_"


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """libmvec, or None where there is none (not glibc, not x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    for name in (ctypes.util.find_library("mvec"), "libmvec.so.1"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


@lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")


@lru_cache(maxsize=1)
def _host_features() -> frozenset[str]:
    import llvmlite.binding as llvm

    return frozenset(name for name, on in llvm.get_host_cpu_features().items() if on)


def _vector_name(isa: str, lanes: int, name: str, arity: int) -> str:
    return f"_ZGV{isa}N{lanes}{'v' * arity}_{name}"


@cache
def variants(name: str, arity: int) -> tuple[tuple[int, str], ...]:
    """(lanes, vector symbol) of ``name`` for this CPU, one per lane count; empty when
    libmvec lacks the function or is absent."""
    library = _library()
    if library is None or FUNCTIONS.get(name) != arity or not hasattr(_libm(), name):
        return ()
    features, chosen = _host_features(), {}
    for isa, lanes, feature in _ISAS:
        symbol = _vector_name(isa, lanes, name, arity)
        if lanes not in chosen and feature in features and hasattr(library, symbol):
            chosen[lanes] = symbol
    return tuple(sorted(chosen.items()))


def alias(name: str) -> str:
    """The scalar symbol a loop kernel calls for ``name`` (bound to libm's function)."""
    return ALIAS_PREFIX + name


def abi_attribute(name: str, arity: int) -> str:
    """The call-site attribute naming ``name``'s vector variants (LLVM's VFABI form:
    ``_ZGV_LLVM_N<lanes><v...>_<scalar>(<vector symbol>)``, comma separated)."""
    listed = ",".join(f"_ZGV_LLVM_N{lanes}{'v' * arity}_{alias(name)}({symbol})"
                      for lanes, symbol in variants(name, arity))
    return f'"vector-function-abi-variant"="{listed}"'


def symbols() -> dict[str, int]:
    """Addresses to register with the JIT: every alias (libm's scalar function) and
    every vector variant this CPU uses."""
    found: dict[str, int] = {}
    for name, arity in FUNCTIONS.items():
        chosen = variants(name, arity)
        if chosen:
            found[alias(name)] = _address(_libm(), name)
        for _, symbol in chosen:
            found[symbol] = _address(_library(), symbol)
    return found


def _address(library: ctypes.CDLL, symbol: str) -> int:
    return ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value
