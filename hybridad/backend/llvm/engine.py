"""Compile kernel IR with llvmlite's MCJIT; cache compiled code by IR text.

The target machine is the host CPU (kernels run where they are compiled; a pickled
kernel recompiles on load). Math functions without an LLVM intrinsic resolve to the C
library's libm, registered by address so the JIT never depends on the dynamic
loader's search order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from . import vecmath
from .emitter import LIBM

_lock = threading.Lock()
_state: dict[str, object] = {}


def _initialize() -> llvm.TargetMachine:
    """LLVM's native target, libm symbols and the host target machine, once."""
    if "target" not in _state:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        for name in LIBM:
            llvm.add_symbol(name, ctypes.cast(getattr(libm, name), ctypes.c_void_p).value)
        for name, address in vecmath.symbols().items():
            llvm.add_symbol(name, address)
        target = llvm.Target.from_triple(llvm.get_process_triple())
        _state["target"] = target
        _state["libm"] = libm
    return _state["target"]  # type: ignore[return-value]


def target_machine(opt_level: int) -> llvm.TargetMachine:
    """A new host target machine. Never shared: an MCJIT engine takes ownership of its
    target machine and frees it with the engine (a shared one crashed when a second
    kernel was freed)."""
    target = _initialize()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=opt_level, jit=True)


def process_triple() -> str:
    _initialize()
    return llvm.get_process_triple()


def numpy_data_offset() -> int:
    """Byte offset of the data pointer inside a numpy array object.

    It is 16 in CPython's usual layout (after the reference count and type), but other
    builds differ; found by looking for a known array's pointer, never assumed.
    """
    if "data_offset" not in _state:
        probe = np.zeros(3)
        address = probe.ctypes.data
        for offset in range(8, 129, 8):
            if ctypes.c_void_p.from_address(id(probe) + offset).value == address:
                _state["data_offset"] = offset
                break
        else:
            raise RuntimeError("cannot locate the data pointer of numpy arrays in this "
                               "Python build; use backend='tape'")
    return _state["data_offset"]  # type: ignore[return-value]


@dataclass
class Compiled:
    """A JIT-compiled module: keeps the engine (which owns the code) alive."""

    engine: llvm.ExecutionEngine
    rows: int   # function addresses
    rows_objects: int
    call: int   # the native Python entry (0 when the module has none)
    seconds: float


_cache: dict[tuple[str, int], Compiled] = {}


def _engine(text: str, opt_level: int, loops: bool) -> llvm.ExecutionEngine:
    """IR ``text`` optimized (see :func:`optimized_module`) and compiled for this CPU."""
    tm = target_machine(opt_level)
    engine = llvm.create_mcjit_compiler(optimized_module(text, opt_level, loops, tm), tm)
    engine.finalize_object()
    return engine


def optimized_module(text: str, opt_level: int, loops: bool,
                     tm: llvm.TargetMachine | None = None) -> llvm.ModuleRef:
    """IR ``text`` parsed, verified and optimized at ``opt_level`` for this CPU (the SLP
    vectorizer on; the loop vectorizer too for ``loops``: tensor kernels)."""
    tm = tm or target_machine(opt_level)
    module = llvm.parse_assembly(text)
    module.verify()
    if opt_level > 0:
        tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        tuning.slp_vectorization = True
        if loops:
            tuning.loop_vectorization = True
        builder = llvm.create_pass_builder(tm, tuning)
        builder.getModulePassManager().run(module, builder)
    return module


def compile_ir(text: str, opt_level: int) -> tuple[Compiled, bool]:
    """Compiled code for ``text`` and whether it came from the cache."""
    import time

    key = (text, opt_level)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit, True
        start = time.perf_counter()
        engine = _engine(text, opt_level, loops=False)
        compiled = Compiled(engine, engine.get_function_address("rows"),
                            engine.get_function_address("rows_objects"),
                            engine.get_function_address("call"),
                            time.perf_counter() - start)
        _cache[key] = compiled
        return compiled, False


def clear_cache() -> None:
    """Forget compiled kernels (their code stays alive while a kernel uses it)."""
    with _lock:
        _cache.clear()
        _function_cache.clear()


def cache_size() -> int:
    return len(_cache) + len(_function_cache)


_function_cache: dict[tuple[str, int, str], tuple[Any, int, float]] = {}


def compile_function(text: str, opt_level: int, name: str) -> tuple[Any, int, float, bool]:
    """(engine, address of ``name``, compile seconds, cache hit) for a module of IR
    ``text``. The engine owns the machine code: whoever calls the address must keep it
    (clearing the cache then frees nothing in use)."""
    import time

    key = (text, opt_level, name)
    with _lock:
        hit = _function_cache.get(key)
        if hit is not None:
            return hit[0], hit[1], hit[2], True
        start = time.perf_counter()
        engine = _engine(text, opt_level, loops=True)
        address = engine.get_function_address(name)
        seconds = time.perf_counter() - start
        _function_cache[key] = (engine, address, seconds)
        return engine, address, seconds, False
