"""A native Python entry point for single-point calls: ``kernel(x)`` without ctypes.

The per-call cost of a small kernel is all overhead (the arithmetic takes nanoseconds),
so the single-point call is compiled too: an LLVM function with CPython's
``METH_FASTCALL | METH_KEYWORDS`` signature, wrapped as a builtin function by
``PyCFunction_NewEx``. It takes exactly the arguments the Python path would pass on
unchanged (type ``ndarray``, dtype the float64 singleton, the group's shape,
C-contiguous and aligned), runs ``rows_objects`` for one row and returns the structure
the Python path returns: fresh arrays made with NumPy's C API, or, for ``out=``, the
caller's arrays written in place (each checked like an argument, and writable, nested
as the result, sharing no memory with an argument or another output). Anything else
(lists, batches, other dtypes, wrong shapes, other keywords) goes to the Python path
unchanged, which converts or raises the usual clear errors, so no unchecked pointer
ever reaches the kernel.

Nothing about object layout is assumed: the offsets of the fields read here are found
by probing live objects (``abi()``; the data pointer's by ``engine.numpy_data_offset``),
and if any probe disagrees the native entry is simply not used.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir

from ..layout import Structure
from . import engine

I8P = ir.IntType(8).as_pointer()
I32 = ir.IntType(32)
I64 = ir.IntType(64)

# NumPy constants and C-API table slots; all part of NumPy's stable ABI (1.7 to 2.x).
NPY_DOUBLE = 12
NPY_ARRAY_C_CONTIGUOUS = 0x0001
NPY_ARRAY_ALIGNED = 0x0100
NPY_ARRAY_WRITEABLE = 0x0400
_API_PYARRAY_TYPE = 2
_API_PYARRAY_RETURN = 76
_API_PYARRAY_NEW = 93
METH_FASTCALL_KEYWORDS = 0x0080 | 0x0002

# What the entry reads from its parameter array, by index.
FALLBACK, NDARRAY, FLOAT64, TUPLE, OUT_NAME, ARRAY_NEW, ARRAY_RETURN, TUPLE_NEW, \
    TUPLE_SET, VECTORCALL, DECREF, INCREF = range(12)
OUT_KEYWORD = sys.intern("out")


@dataclass(frozen=True)
class Abi:
    """Byte offsets inside CPython and NumPy objects, as probed in this process."""

    ob_type: int
    ob_size: int
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


def _tuple_offsets() -> tuple[int, int] | None:
    """Offsets of a tuple's length and first item, checked on two tuples."""
    marker = object()
    pair, five = (marker, 1), (marker, 1, 2, 3, 4)
    items = next((o for o in range(8, 65, 8) if _word(id(pair) + o) == id(marker)), None)
    if items is None or _word(id(five) + items) != id(marker):
        return None
    size = next((o for o in range(8, items, 8) if _word(id(pair) + o) == 2
                 and _word(id(five) + o) == 5), None)
    return None if size is None else (size, items)


def _probe_abi() -> Abi | None:
    """Offsets of ob_type, tuple length and items and the ndarray fields (data, nd,
    dimensions, descr, flags), each checked against a known object; None if any check
    fails."""
    probe = np.empty((3, 5))
    base = id(probe)
    ob_type = 8
    tuples = _tuple_offsets()
    if _word(base + ob_type) != id(np.ndarray) or tuples is None:
        return None
    try:
        data = engine.numpy_data_offset()
    except RuntimeError:
        return None
    # PyArrayObject_fields: data, nd (int), dimensions, strides, base, descr, flags (int)
    nd, dims, descr, flags = data + 8, data + 16, data + 40, data + 48
    dims_ok = (ctypes.c_int64 * 2).from_address(_word(base + dims) or 0)[:] == [3, 5] \
        if _word(base + dims) else False
    if (ctypes.c_int32.from_address(base + nd).value != 2 or not dims_ok
            or _word(base + descr) != id(probe.dtype)
            or ctypes.c_int32.from_address(base + flags).value != probe.flags.num):
        return None
    return Abi(ob_type, *tuples, data, nd, dims, descr, flags)


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
              ("PyTuple_New", "PyTuple_SetItem", "PyObject_Vectorcall", "Py_DecRef",
               "Py_IncRef"))]


def abi() -> Abi | None:
    """The probed layout, or None when this interpreter or NumPy is not understood."""
    if "abi" not in _probed:
        layout = _probe_abi()
        _probed["abi"] = layout if layout is not None and _functions() is not None else None
    return _probed["abi"]


# -- IR ------------------------------------------------------------------------------------
class _EntryBuilder:
    """``call(self, args, nargs, kwnames)``: checks, then one row through
    ``rows_objects`` into fresh arrays or the caller's ``out=``; the Python path for
    everything else."""

    def __init__(self, module: ir.Module, spec: EntrySpec, layout: Abi):
        self.spec, self.abi = spec, layout
        self.rows_objects = module.get_global("rows_objects")
        fn = ir.Function(module, ir.FunctionType(I8P, [I8P, I8P.as_pointer(), I64, I8P]),
                         "call")
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

    def all_of(self, conditions: list[ir.Value]) -> ir.Value:
        result = conditions[0]
        for c in conditions[1:]:
            result = self.b.and_(result, c)
        return result

    def call(self, index: int, result: ir.Type, args: list[tuple[ir.Type, ir.Value]]
             ) -> ir.Value:
        kind = ir.FunctionType(result, [t for t, _ in args])
        return self.b.call(self.param(index, kind.as_pointer()), [v for _, v in args])

    # the function ----------------------------------------------------------------------
    def build(self) -> None:
        b, layout = self.b, self.abi
        self_obj, args, nargs, kwnames = self.fn.args
        own = b.load(b.bitcast(b.gep(self_obj, [ir.Constant(I64, layout.tuple_items)]),
                               I8P.as_pointer()))        # self is (params array, ...)
        self.params = b.bitcast(self.field(own, layout.data, I8P), I64.as_pointer())
        self.fallback()
        groups = self.spec.group_shapes
        self.check(b.icmp_signed("==", nargs, ir.Constant(I64, len(groups))), "count_ok")
        inputs = [self.accept(b.load(b.gep(args, [ir.Constant(I64, g)])), shape, f"arg_{g}")
                  for g, shape in enumerate(groups)]
        fresh, keywords = self.fn.append_basic_block("fresh"), self.fn.append_basic_block("kw")
        b.cbranch(b.icmp_unsigned("==", kwnames, ir.Constant(I8P, None)), fresh, keywords)
        b.position_at_end(fresh)
        arrays = self.allocate()
        self.run(inputs, arrays)
        b.ret(self.assemble(arrays))
        b.position_at_end(keywords)
        out = self.out_argument(args, nargs, kwnames)
        leaves = self.out_leaves(out)
        self.disjoint(inputs, leaves)
        self.run(inputs, leaves)
        self.call(INCREF, ir.VoidType(), [(I8P, out)])
        b.ret(out)

    def fallback(self) -> None:
        """The Python path: ``fallback(*args, **kwargs)`` (every other case ends here)."""
        here = self.b.block
        self.b.position_at_end(self.fallback_block)
        _, args, nargs, kwnames = self.fn.args
        result = self.call(VECTORCALL, I8P, [(I8P, self.param(FALLBACK, I8P)),
                                             (I8P.as_pointer(), args), (I64, nargs),
                                             (I8P, kwnames)])
        self.b.ret(result)
        self.b.position_at_end(here)

    def accept(self, obj: ir.Value, shape: tuple[int, ...], name: str,
               writable: bool = False) -> ir.Value:
        """``obj`` after the checks of the Python path (layout.py): exactly an ndarray,
        the float64 singleton dtype, ``shape``, C-contiguous and aligned (and writable,
        for an output)."""
        b, layout = self.b, self.abi
        self.check(b.icmp_unsigned("==", self.field(obj, layout.ob_type, I8P),
                                   self.param(NDARRAY, I8P)), f"{name}_ndarray")
        wanted = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | (
            NPY_ARRAY_WRITEABLE if writable else 0)
        flags = b.and_(self.field(obj, layout.flags, I32), ir.Constant(I32, wanted))
        self.check(self.all_of([
            b.icmp_unsigned("==", self.field(obj, layout.descr, I8P),
                            self.param(FLOAT64, I8P)),
            b.icmp_signed("==", self.field(obj, layout.nd, I32), ir.Constant(I32, len(shape))),
            b.icmp_unsigned("==", flags, ir.Constant(I32, wanted))]), f"{name}_layout")
        if shape:
            dims = self.field(obj, layout.dims, I64.as_pointer())
            self.check(self.all_of([
                b.icmp_signed("==", b.load(b.gep(dims, [ir.Constant(I64, d)])),
                              ir.Constant(I64, n)) for d, n in enumerate(shape)]),
                f"{name}_shape")
        return obj

    def out_argument(self, args: ir.Value, nargs: ir.Value, kwnames: ir.Value) -> ir.Value:
        """The value of the one keyword, which must be ``out`` (the interned name)."""
        b, layout = self.b, self.abi
        self.check(self.all_of([
            b.icmp_signed("==", self.field(kwnames, layout.ob_size, I64), ir.Constant(I64, 1)),
            b.icmp_unsigned("==", self.field(kwnames, layout.tuple_items, I8P),
                            self.param(OUT_NAME, I8P))]), "out_keyword")
        return b.load(b.gep(args, [nargs]))

    def out_leaves(self, out: ir.Value) -> list[ir.Value]:
        """The output array of every block, read from ``out`` by the result's structure
        (tuples exactly; lists and anything else go to the Python path)."""
        b, layout = self.b, self.abi
        leaves: list[Any] = [None] * len(self.spec.block_shapes)
        stack: list[tuple[Structure, ir.Value]] = [(self.spec.structure, out)]
        while stack:
            part, obj = stack.pop()
            if isinstance(part, int):
                leaves[part] = self.accept(obj, self.spec.block_shapes[part], f"out_{part}",
                                           writable=True)
                continue
            # the type first: a length is read only from a tuple
            self.check(b.icmp_unsigned("==", self.field(obj, layout.ob_type, I8P),
                                       self.param(TUPLE, I8P)), "out_tuple")
            self.check(b.icmp_signed("==", self.field(obj, layout.ob_size, I64),
                                     ir.Constant(I64, len(part))), "out_length")
            stack.extend((sub, self.field(obj, layout.tuple_items + 8 * k, I8P))
                         for k, sub in enumerate(part))
        return leaves

    def disjoint(self, inputs: list[ir.Value], leaves: list[ir.Value]) -> None:
        """Continue only if no output array shares bytes with an argument or another
        output (the body reads arguments after writing outputs; the Python path computes
        apart and copies, as numpy does)."""
        b = self.b
        spans = [self.span(obj, shape) for obj, shape in
                 zip(leaves + inputs, self.spec.block_shapes + self.spec.group_shapes)]
        overlaps = []
        for k in range(len(leaves)):
            for other in range(k + 1, len(spans)):
                (start, end), (other_start, other_end) = spans[k], spans[other]
                if start is not None and other_start is not None:
                    overlaps.append(b.and_(b.icmp_unsigned("<", start, other_end),
                                           b.icmp_unsigned("<", other_start, end)))
        if overlaps:
            none = b.not_(overlaps[0] if len(overlaps) == 1 else
                          self.any_of(overlaps))
            self.check(none, "disjoint")

    def any_of(self, conditions: list[ir.Value]) -> ir.Value:
        result = conditions[0]
        for c in conditions[1:]:
            result = self.b.or_(result, c)
        return result

    def span(self, obj: ir.Value, shape: tuple[int, ...]) -> tuple[Any, Any]:
        """[start, end) of an array's bytes (None for an empty array)."""
        size = 8 * math.prod(shape)
        if size == 0:
            return None, None
        start = self.b.ptrtoint(self.field(obj, self.abi.data, I8P), I64)
        return start, self.b.add(start, ir.Constant(I64, size))

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

    def allocate(self) -> list[ir.Value]:
        """One fresh float64 array per output block, shaped like one row of it."""
        b, arrays = self.b, []
        for o, shape in enumerate(self.spec.block_shapes):
            dims = b.alloca(I64, max(len(shape), 1))
            for d, n in enumerate(shape):
                b.store(ir.Constant(I64, n), b.gep(dims, [ir.Constant(I64, d)]))
            null = ir.Constant(I8P, None)
            made = self.call(ARRAY_NEW, I8P, [
                (I8P, self.param(NDARRAY, I8P)), (I32, ir.Constant(I32, len(shape))),
                (I64.as_pointer(), dims), (I32, ir.Constant(I32, NPY_DOUBLE)), (I8P, null),
                (I8P, null), (I32, ir.Constant(I32, 0)), (I32, ir.Constant(I32, 0)),
                (I8P, null)])
            arrays.append(self.checked(made, list(arrays), f"allocated_{o}"))
        return arrays

    def run(self, inputs: list[ir.Value], outputs: list[ir.Value]) -> None:
        """Row 0 of ``rows_objects`` (no batched argument): the one-row call."""
        zero = ir.Constant(I64, 0)
        self.b.call(self.rows_objects, [*inputs, *outputs, zero, zero, ir.Constant(I64, 1)])

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
        a tuple (released if a tuple cannot be made). Structures are at most two deep."""
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
    """Add ``call(self, args, nargs, kwnames)`` (METH_FASTCALL | METH_KEYWORDS) to a
    module that has ``rows_objects``."""
    _EntryBuilder(module, spec, layout).build()


# -- the builtin ---------------------------------------------------------------------------
class _MethodDef(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


def make_builtin(address: int, fallback: Callable[..., Any], keep_alive: Any) -> Any:
    """A builtin function running the compiled ``call`` at ``address``.

    Its ``self`` is a tuple (parameter array, fallback, method definition, keep_alive,
    the ``out`` keyword): the builtin owns everything the native code reads, so it can
    never outlive it.
    """
    functions = _functions()
    assert functions is not None and abi() is not None
    params = np.array([id(fallback), id(np.ndarray), id(np.dtype(np.float64)), id(tuple),
                       id(OUT_KEYWORD), *functions], dtype=np.uint64)
    definition = _MethodDef(b"kernel", address, METH_FASTCALL_KEYWORDS, None)
    owner = (params, fallback, definition, keep_alive, OUT_KEYWORD)
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]
    return new(ctypes.addressof(definition), owner, None)
