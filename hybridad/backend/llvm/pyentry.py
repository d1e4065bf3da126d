"""A native Python entry point for single-point calls: ``kernel(x)`` without ctypes.

The per-call cost of a small kernel is all overhead (the arithmetic takes nanoseconds),
so the single-point call is compiled too: an LLVM function with CPython's
``METH_FASTCALL`` signature, wrapped as a builtin function by ``PyCFunction_NewEx``.
It checks every argument exactly as the Python fast path does (type ``ndarray``, dtype
the float64 singleton, the group's shape, C-contiguous and aligned), allocates the
result arrays with NumPy's C API, runs ``rows`` for one row and returns the same
structure the Python path returns. Any argument it does not accept (lists, batches,
other dtypes, wrong shapes) goes to the Python path unchanged, which converts or
raises the usual clear errors, so no unchecked pointer ever reaches the kernel.

Nothing about object layout is assumed: the offsets of the fields read here are found
by probing live objects (``abi()``), and if any probe disagrees the native entry is
simply not used.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Callable, Union

import llvmlite.ir as ir
import numpy as np

I8P = ir.IntType(8).as_pointer()
I32 = ir.IntType(32)
I64 = ir.IntType(64)

# NumPy constants and C-API table slots; all part of NumPy's stable ABI (1.7 to 2.x).
NPY_DOUBLE = 12
NPY_ARRAY_C_CONTIGUOUS = 0x0001
NPY_ARRAY_ALIGNED = 0x0100
_API_PYARRAY_TYPE = 2
_API_PYARRAY_RETURN = 76
_API_PYARRAY_NEW = 93
METH_FASTCALL = 0x0080

# What the entry reads from its parameter array, by index.
FALLBACK, NDARRAY, FLOAT64, ARRAY_NEW, ARRAY_RETURN, TUPLE_NEW, TUPLE_SET, VECTORCALL, \
    DECREF = range(9)

Structure = Union[int, tuple["Structure", ...]]   # a block index or a tuple of structures


@dataclass(frozen=True)
class Abi:
    """Byte offsets inside CPython and NumPy objects, as probed in this process."""

    ob_type: int
    tuple_items: int
    data: int
    nd: int
    dims: int
    descr: int
    flags: int


@dataclass(frozen=True)
class EntrySpec:
    """The call's layout: one shape per argument group, one per output block, and how
    the blocks nest in the result (e.g. ``(0, 1)`` for value and gradient)."""

    group_shapes: tuple[tuple[int, ...], ...]
    block_shapes: tuple[tuple[int, ...], ...]
    structure: Structure


_probed: dict[str, Any] = {}


def _word(address: int) -> int | None:
    return ctypes.c_void_p.from_address(address).value


def _probe_abi() -> Abi | None:
    """Offsets of ob_type, tuple items and the ndarray fields (data, nd, dimensions,
    descr, flags), each checked against a known object; None if any check fails."""
    probe = np.empty((3, 5))
    base = id(probe)
    ob_type = 8
    if _word(base + ob_type) != id(np.ndarray):
        return None
    marker = object()
    pair = (marker, probe)
    tuple_items = next((o for o in range(8, 65, 8) if _word(id(pair) + o) == id(marker)),
                       None)
    data = next((o for o in range(8, 129, 8) if _word(base + o) == probe.ctypes.data), None)
    if tuple_items is None or data is None:
        return None
    # PyArrayObject_fields: data, nd (int), dimensions, strides, base, descr, flags (int)
    nd, dims, descr, flags = data + 8, data + 16, data + 40, data + 48
    dims_ok = (ctypes.c_int64 * 2).from_address(_word(base + dims) or 0)[:] == [3, 5] \
        if _word(base + dims) else False
    if (ctypes.c_int32.from_address(base + nd).value != 2 or not dims_ok
            or _word(base + descr) != id(probe.dtype)
            or ctypes.c_int32.from_address(base + flags).value != probe.flags.num):
        return None
    return Abi(ob_type, tuple_items, data, nd, dims, descr, flags)


def _numpy_api() -> ctypes.Array | None:
    """NumPy's C-API function table (the ``_ARRAY_API`` capsule)."""
    try:
        from numpy._core import _multiarray_umath as multiarray
    except ImportError:                                   # NumPy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    capsule = getattr(multiarray, "_ARRAY_API", None)
    if capsule is None:
        return None
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get(capsule, None)
    return (ctypes.c_void_p * 400).from_address(address)


def _functions() -> list[int] | None:
    """Addresses the entry calls, after checking the NumPy table on a real call."""
    api = _numpy_api()
    if api is None or api[_API_PYARRAY_TYPE] != id(np.ndarray):
        return None
    new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_int,
                            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_int, ctypes.c_void_p)(api[_API_PYARRAY_NEW])
    dims = (ctypes.c_int64 * 2)(4, 3)
    made = new(id(np.ndarray), 2, ctypes.addressof(dims), NPY_DOUBLE, None, None, 0, 0, None)
    if type(made) is not np.ndarray or made.shape != (4, 3) or made.dtype != np.float64:
        return None
    py = ctypes.pythonapi
    return [api[_API_PYARRAY_NEW], api[_API_PYARRAY_RETURN],
            *(ctypes.cast(getattr(py, name), ctypes.c_void_p).value for name in
              ("PyTuple_New", "PyTuple_SetItem", "PyObject_Vectorcall", "Py_DecRef"))]


def abi() -> Abi | None:
    """The probed layout, or None when this interpreter or NumPy is not understood."""
    if "abi" not in _probed:
        layout = _probe_abi()
        _probed["abi"] = layout if layout is not None and _functions() is not None else None
    return _probed["abi"]


# -- IR ------------------------------------------------------------------------------------
class _EntryBuilder:
    def __init__(self, module: ir.Module, spec: EntrySpec, layout: Abi, rows: ir.Function):
        self.spec, self.abi, self.rows = spec, layout, rows
        fn = ir.Function(module, ir.FunctionType(I8P, [I8P, I8P.as_pointer(), I64]), "call")
        self.fn = fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.fallback_block = fn.append_basic_block("fallback")

    # field access ----------------------------------------------------------------------
    def field(self, obj: ir.Value, offset: int, kind: ir.Type) -> ir.Value:
        b = self.b
        return b.load(b.bitcast(b.gep(obj, [ir.Constant(I64, offset)]), kind.as_pointer()))

    def param(self, index: int, kind: ir.Type) -> ir.Value:
        value = self.b.load(self.b.gep(self.params, [ir.Constant(I64, index)]))
        return self.b.inttoptr(value, kind) if isinstance(kind, ir.PointerType) else value

    def check(self, condition: ir.Value, name: str) -> None:
        """Continue in a new block when ``condition`` holds, else take the Python path."""
        ok = self.fn.append_basic_block(name)
        self.b.cbranch(condition, ok, self.fallback_block)
        self.b.position_at_end(ok)

    def call(self, index: int, result: ir.Type, args: list[tuple[ir.Type, ir.Value]]
             ) -> ir.Value:
        kind = ir.FunctionType(result, [t for t, _ in args])
        return self.b.call(self.param(index, kind.as_pointer()), [v for _, v in args])

    # the function ----------------------------------------------------------------------
    def build(self) -> None:
        b, layout = self.b, self.abi
        self_obj, args, nargs = self.fn.args
        own = b.load(b.bitcast(b.gep(self_obj, [ir.Constant(I64, layout.tuple_items)]),
                               I8P.as_pointer()))        # self is (params array, ...)
        self.params = b.bitcast(self.field(own, layout.data, I8P), I64.as_pointer())
        self.fallback()
        groups = self.spec.group_shapes
        self.check(b.icmp_signed("==", nargs, ir.Constant(I64, len(groups))), "count_ok")
        ndarray, f64 = self.param(NDARRAY, I8P), self.param(FLOAT64, I8P)
        data = [self.accept(b.load(b.gep(args, [ir.Constant(I64, g)])), shape, ndarray, f64, g)
                for g, shape in enumerate(groups)]
        arrays = self.allocate(ndarray)
        self.run(data, arrays)
        b.ret(self.assemble(arrays))

    def fallback(self) -> None:
        """The Python path: ``fallback(*args)`` (every non-native case ends here)."""
        here = self.b.block
        self.b.position_at_end(self.fallback_block)
        _, args, nargs = self.fn.args
        result = self.call(VECTORCALL, I8P, [(I8P, self.param(FALLBACK, I8P)),
                                             (I8P.as_pointer(), args), (I64, nargs),
                                             (I8P, ir.Constant(I8P, None))])
        self.b.ret(result)
        self.b.position_at_end(here)

    def accept(self, obj: ir.Value, shape: tuple[int, ...], ndarray: ir.Value,
               f64: ir.Value, g: int) -> ir.Value:
        """Data pointer of argument ``g`` after the checks of the Python fast path."""
        b, layout = self.b, self.abi
        self.check(b.icmp_unsigned("==", self.field(obj, layout.ob_type, I8P), ndarray),
                   f"ndarray_{g}")
        wanted = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED
        flags = b.and_(self.field(obj, layout.flags, I32), ir.Constant(I32, wanted))
        ok = b.and_(b.icmp_unsigned("==", self.field(obj, layout.descr, I8P), f64),
                    b.and_(b.icmp_signed("==", self.field(obj, layout.nd, I32),
                                         ir.Constant(I32, len(shape))),
                           b.icmp_unsigned("==", flags, ir.Constant(I32, wanted))))
        self.check(ok, f"layout_{g}")
        if shape:
            dims = self.field(obj, layout.dims, I64.as_pointer())
            same = [b.icmp_signed("==", b.load(b.gep(dims, [ir.Constant(I64, d)])),
                                  ir.Constant(I64, n)) for d, n in enumerate(shape)]
            all_same = same[0]
            for s in same[1:]:
                all_same = b.and_(all_same, s)
            self.check(all_same, f"shape_{g}")
        return self.field(obj, layout.data, I8P)

    def decref(self, objects: list[ir.Value]) -> None:
        for obj in objects:
            self.call(DECREF, ir.VoidType(), [(I8P, obj)])

    def checked(self, obj: ir.Value, owned: list[ir.Value], name: str) -> ir.Value:
        """``obj`` if not NULL; else release ``owned`` and return NULL (the exception,
        a MemoryError, is already set)."""
        b = self.b
        ok = self.fn.append_basic_block(name)
        failed = self.fn.append_basic_block(name + "_failed")
        b.cbranch(b.icmp_unsigned("!=", obj, ir.Constant(I8P, None)), ok, failed)
        b.position_at_end(failed)
        self.decref(owned)
        b.ret(ir.Constant(I8P, None))
        b.position_at_end(ok)
        return obj

    def allocate(self, ndarray: ir.Value) -> list[ir.Value]:
        """One fresh float64 array per output block, shaped like one row of it."""
        b, arrays = self.b, []
        for o, shape in enumerate(self.spec.block_shapes):
            dims = b.alloca(I64, max(len(shape), 1))
            for d, n in enumerate(shape):
                b.store(ir.Constant(I64, n), b.gep(dims, [ir.Constant(I64, d)]))
            null = ir.Constant(I8P, None)
            made = self.call(ARRAY_NEW, I8P, [
                (I8P, ndarray), (I32, ir.Constant(I32, len(shape))), (I64.as_pointer(), dims),
                (I32, ir.Constant(I32, NPY_DOUBLE)), (I8P, null), (I8P, null),
                (I32, ir.Constant(I32, 0)), (I32, ir.Constant(I32, 0)), (I8P, null)])
            arrays.append(self.checked(made, list(arrays), f"allocated_{o}"))
        return arrays

    def run(self, data: list[ir.Value], arrays: list[ir.Value]) -> None:
        """``rows`` for row 0, every stride 0."""
        b = self.b
        double_p = ir.DoubleType().as_pointer()
        n_in, n_out = len(data), len(arrays)
        ins = b.alloca(double_p, max(n_in, 1))
        for g, p in enumerate(data):
            b.store(b.bitcast(p, double_p), b.gep(ins, [ir.Constant(I64, g)]))
        outs = b.alloca(double_p, max(n_out, 1))
        for o, arr in enumerate(arrays):
            p = self.field(arr, self.abi.data, I8P)
            b.store(b.bitcast(p, double_p), b.gep(outs, [ir.Constant(I64, o)]))
        zeros = b.alloca(I64, max(n_in, n_out, 1))
        for k in range(max(n_in, n_out, 1)):
            b.store(ir.Constant(I64, 0), b.gep(zeros, [ir.Constant(I64, k)]))
        b.call(self.rows, [ins, zeros, outs, zeros, ir.Constant(I64, 0), ir.Constant(I64, 1)])

    def assemble(self, arrays: list[ir.Value]) -> ir.Value:
        """Scalars for 0-d blocks (PyArray_Return), then the result's tuples."""
        items = list(arrays)
        for o, shape in enumerate(self.spec.block_shapes):
            if not shape:
                others = items[:o] + items[o + 1:]
                items[o] = self.checked(self.call(ARRAY_RETURN, I8P, [(I8P, items[o])]),
                                        others, f"scalar_{o}")
        return self.nest(self.spec.structure, items, [items[k] for k in
                                                      _leaves(self.spec.structure)])

    def nest(self, structure: Structure, items: list[ir.Value], pending: list[ir.Value]
             ) -> ir.Value:
        """Build ``structure`` from ``items``; ``pending`` are the objects not yet owned by
        a tuple (released if a tuple cannot be made)."""
        if isinstance(structure, int):
            return items[structure]
        parts = [self.nest(s, items, pending) for s in structure]
        made = self.checked(self.call(TUPLE_NEW, I8P, [(I64, ir.Constant(I64, len(parts)))]),
                            list(pending), f"tuple_{len(self.fn.blocks)}")
        for k, part in enumerate(parts):
            self.call(TUPLE_SET, I32, [(I8P, made), (I64, ir.Constant(I64, k)), (I8P, part)])
            if part in pending:
                pending.remove(part)
        pending.append(made)
        return made


def _leaves(structure: Structure) -> list[int]:
    if isinstance(structure, int):
        return [structure]
    return [k for s in structure for k in _leaves(s)]


def entry_function(module: ir.Module, spec: EntrySpec, layout: Abi) -> None:
    """Add ``call(self, args, nargs)`` (METH_FASTCALL) to a module that has ``rows``."""
    _EntryBuilder(module, spec, layout, module.get_global("rows")).build()


# -- the builtin ---------------------------------------------------------------------------
class _MethodDef(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


def make_builtin(address: int, fallback: Callable[..., Any], keep_alive: Any) -> Any:
    """A builtin function running the compiled ``call`` at ``address``.

    Its ``self`` is a tuple (parameter array, fallback, method definition, keep_alive):
    the builtin owns everything the native code reads, so it can never outlive it.
    """
    functions = _functions()
    assert functions is not None and abi() is not None
    params = np.array([id(fallback), id(np.ndarray), id(np.dtype(np.float64)), *functions],
                      dtype=np.uint64)
    definition = _MethodDef(b"kernel", address, METH_FASTCALL, None)
    owner = (params, fallback, definition, keep_alive)
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]
    return new(ctypes.addressof(definition), owner, None)
