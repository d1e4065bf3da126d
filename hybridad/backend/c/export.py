"""C99 source and header of a kernel (DESIGN §7): what both kinds of kernel share, and
the element-level kernels (``Kernel``).

The exported function is ``void name(long n_rows, const double *arg0, long stride0,
..., double *out0, ...)``: per argument group a pointer and a row stride in doubles (0:
one row shared by every row), per output block a pointer to ``n_rows`` rows, row-major
(one row when the kernel reduces). ``name_work`` is the same with a caller-owned
workspace of ``NAME_WORK_DOUBLES`` doubles as its last argument; ``name`` allocates that
workspace with malloc and frees it before returning (nothing when it is 0).

Element-level body: codegen.py's plan of the kernel (the CSE'd DAG of the value and
derivative blocks cut into segments, with scratch slots for values that cross a cut)
and its segment functions as IR text, translated by translate.py; the batch loop and
the reduction are written here, in C. ``reduce`` sums rows in pieces of
runner.REDUCE_ROWS into a partial each, added to the total in order, as the LLVM
kernel does, so the results are the same to the last bit.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.traverse import topo_order
from ..llvm import codegen
from ..llvm.runner import REDUCE_ROWS
from .translate import helper_definitions, translate

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# names the source's own headers (math.h, stdlib.h, stdint.h) or C itself claim
_C_NAMES = """
auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while main
acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp
ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf
erfc lgamma tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod
remainder remquo copysign nan nextafter nexttoward fdim fmax fmin fma j0 j1 jn y0 y1 yn
isnan isinf isfinite isnormal signbit fpclassify isgreater isless NAN INFINITY HUGE_VAL
malloc calloc realloc free abort exit atexit atof atoi atol strtod strtol abs labs div
ldiv rand srand qsort bsearch getenv system
"""
_TAKEN = frozenset(_C_NAMES.split())


def check_name(name: Any) -> str:
    """``name`` if it can name the exported C function, else a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"to_c: name must be a str (a C identifier), got "
                        f"{type(name).__name__} {name!r}")
    if not _IDENTIFIER.match(name):
        raise ValueError(f"to_c: name must be a C identifier (a letter or _, then "
                         f"letters, digits or _), got {name!r}")
    library = name in _TAKEN or name[-1:] in ("f", "l") and name[:-1] in _TAKEN
    if library or name.startswith("__") or re.match(r"_[A-Z]", name) or \
            name.endswith("_t"):
        raise ValueError(f"to_c: name must not be a C keyword or a name reserved by C "
                         f"or its math and standard libraries, got {name!r}")
    return name


@dataclass
class Port:
    """One argument group or output block of the C function."""

    size: int                       # doubles per row
    shape: tuple[int, ...]
    what: str


@dataclass
class Interface:
    """What the header documents and the wrappers take."""

    name: str
    args: list[Port]
    outs: list[Port]
    reduce: str | None
    work: int                       # doubles of workspace
    notes: list[str] = field(default_factory=list)
    piece: int = 0                  # rows summed into one partial (reduce)

    def prototype(self, work: bool = False) -> str:
        """``void name(long n_rows, ...)`` (``name_work`` with ``work``), wrapped at 88
        columns."""
        head = f"void {self.name}{'_work' if work else ''}("
        parts = ["long n_rows"] + [f"const double *arg{g}, long stride{g}"
                                   for g in range(len(self.args))]
        parts += [f"double *out{o}" for o in range(len(self.outs))]
        parts += ["double *work"] if work else []
        lines = [head]
        for k, part in enumerate(parts):
            text = part + (", " if k < len(parts) - 1 else ")")
            if len(lines[-1]) + len(text.rstrip()) > 88:
                lines[-1] = lines[-1].rstrip()
                lines.append(" " * len(head))
            lines[-1] += text
        return "\n".join(lines)

    @property
    def macro(self) -> str:
        return f"{self.name.upper()}_WORK_DOUBLES"


# -- element-level kernels ----------------------------------------------------------------
def kernel_to_c(kernel: Any, name: str = "f") -> tuple[str, str]:
    """C99 source and header of an element-level :class:`~hybridad.backend.Kernel`."""
    check_name(name)
    accumulate = kernel.reduce is not None
    spec = codegen.KernelSpec(tuple(g.symbols for g in kernel.groups),
                              tuple(b.exprs for b in kernel.blocks),
                              tuple(accumulate for _ in kernel.blocks))
    plan = codegen._plan(spec, codegen.SEGMENT_NODES)
    texts, _ = codegen._segment_texts(spec, plan, fastmath=False)
    translation = translate("\n".join(texts), f"{name}_")
    segments = [f"{name}_seg_{k}" for k in range(len(texts))]
    sizes = [len(b.exprs) for b in kernel.blocks]
    note = (f"Element level: {codegen.total_nodes(spec.blocks)} DAG nodes per row in "
            f"{len(texts)} segment function(s).")
    face = Interface(name, _element_args(kernel), _element_outputs(kernel), kernel.reduce,
                     sum(sizes) if accumulate else 0, [note], REDUCE_ROWS)
    body = _element_body(face, segments, max(plan.n_slots, 1), sizes)
    parts = (translation.prototypes + [""] +
             helper_definitions(translation.helpers, f"{name}_") + translation.definitions)
    return source(face, parts, body), header(face)


def _element_body(face: Interface, segments: list[str], slots: int,
                  sizes: list[int]) -> list[str]:
    """The statements of ``name_work``: the batch loop calling the segments for each
    row; with ``reduce``, pieces of REDUCE_ROWS rows summed apart and added in order."""
    n_in, n_out = len(face.args), len(face.outs)
    lines = [f"double *in[{max(n_in, 1)}], *out[{max(n_out, 1)}];",
             f"double scratch[{slots}];    /* values crossing segment functions */",
             "long r;" if face.reduce is None else "long r, k, start, end;"]
    inputs = [f"in[{g}] = (double *)arg{g} + r * stride{g};" for g in range(n_in)]
    calls = [f"{s}(in, out, scratch);" for s in segments]
    if face.reduce is None:
        lines += ["for (r = 0; r < n_rows; ++r) {"]
        lines += [f"    {s}" for s in inputs]
        lines += [f"    out[{o}] = out{o} + r * {n};" for o, n in enumerate(sizes)]
        return lines + [f"    {s}" for s in calls] + ["}", "(void)work;"]
    offsets = [sum(sizes[:o]) for o in range(n_out)]
    lines += _zero_outputs(sizes)
    lines += [f"for (start = 0; start < n_rows; start += {REDUCE_ROWS}) {{",
              f"    end = n_rows - start < {REDUCE_ROWS} ? n_rows : start + {REDUCE_ROWS};",
              "    /* the first piece sums into the outputs, each later one into work, */",
              "    /* which is then added to them */",
              "    if (start > 0) {",
              f"        for (k = 0; k < {sum(sizes)}; ++k) work[k] = 0.0;", "    }"]
    lines += [f"    out[{o}] = start == 0 ? out{o} : work + {offsets[o]};"
              for o in range(n_out)]
    lines += ["    for (r = start; r < end; ++r) {"] + [f"        {s}" for s in inputs + calls]
    lines += ["    }", "    if (start > 0) {"]
    lines += [f"        for (k = 0; k < {n}; ++k) out{o}[k] += work[{offsets[o]} + k];"
              for o, n in enumerate(sizes)]
    lines += ["    }", "}"] + _mean(face.reduce, sizes)
    return lines


def _zero_outputs(sizes: Sequence[int]) -> list[str]:
    return [f"for (k = 0; k < {n}; ++k) out{o}[k] = 0.0;" for o, n in enumerate(sizes)]


def _mean(reduce: str | None, sizes: Sequence[int]) -> list[str]:
    """Sums to means (0 / 0: NaN for no rows, as the Python kernels)."""
    if reduce != "mean":
        return []
    return [f"for (k = 0; k < {n}; ++k) out{o}[k] /= (double)n_rows;"
            for o, n in enumerate(sizes)]


def _names(symbols: Sequence[Any], limit: int = 6) -> str:
    names = [str(s.param) for s in symbols[:limit]]
    more = f", ... ({len(symbols)} in all)" if len(symbols) > limit else ""
    return ", ".join(names) + more


def _element_args(kernel: Any) -> list[Port]:
    ports = [Port(g.size, g.shape, _names(g.symbols)) for g in kernel.groups]
    if kernel.derivatives == "jvp":
        ports[-1].what = "v, the tangent (shaped as the differentiated argument)"
    elif kernel.derivatives == "vjp":
        ports[-1].what = "w, the cotangent (shaped as the values)"
    return ports


def _element_outputs(kernel: Any) -> list[Port]:
    from ..kernel import _wrt_groups

    kind = kernel.derivatives
    original = kernel.groups[:len(kernel.groups) - (1 if kind in ("jvp", "vjp") else 0)]
    wrt = _wrt_groups(kernel.options["wrt"], original, "to_c")
    values = _expression_text(kernel.values.exprs)
    what = {None: [], "jvp": ["Jacobian-vector product J v"],
            "vjp": ["vector-Jacobian product w^T J"],
            "gradient": [f"gradient with respect to arg{g}" for g in wrt],
            "jacobian": [f"Jacobian of the values with respect to arg{g}" for g in wrt],
            "hessian": [f"gradient with respect to arg{wrt[0]}",
                        f"Hessian with respect to arg{wrt[0]}"] if wrt else []}[kind]
    noun = "value" if len(kernel.values.exprs) == 1 else "values"
    labels = [f"{noun}{': ' + values if values else ''}"] + what
    return [Port(len(b.exprs), b.shape, label) for b, label in zip(kernel.blocks, labels)]


def _expression_text(exprs: Sequence[Any], limit: int = 160) -> str:
    """The values as text when short (a comment line of the header), else ""."""
    if len(topo_order(list(exprs))) > 64:
        return ""
    text = ", ".join(str(e) for e in exprs)
    return text.replace("*/", "* /").replace("/*", "/ *") if len(text) <= limit else ""


# -- what both kinds share ------------------------------------------------------------------
def source(face: Interface, parts: list[str], body: list[str],
           extra: Sequence[str] = ()) -> str:
    """The C source: includes, the translated functions (``parts``), ``extra`` (constant
    tables), ``name_work`` with ``body`` and ``name``."""
    work = face.work > 0
    lines = [f"/* {face.name}: generated by hybridad {_version()} from an expression DAG.",
             f"   C99, needs only libm: cc -std=c99 -O2 -c {face.name}.c; link with -lm.",
             "   No -ffast-math (NaN and rounding as hybridad's kernels); see the header.",
             "*/", "", "#include <math.h>", "#include <stdint.h>"]
    lines += ["#include <stdlib.h>"] if work else []
    lines += [""] + list(extra) + parts + [""]
    lines += [face.prototype(work=True), "{"]
    lines += [f"    {s}" for s in body] + ["}", ""]
    lines += [face.prototype(), "{"]
    lines += _allocating_call(face) + ["}", ""]
    return "\n".join(lines)


def _allocating_call(face: Interface) -> list[str]:
    """``name``'s body: ``name_work`` on a workspace from malloc (outputs NaN if there
    is no memory), or on none."""
    call = ", ".join(["n_rows"] + [f"arg{g}, stride{g}" for g in range(len(face.args))] +
                     [f"out{o}" for o in range(len(face.outs))])
    if face.work == 0:
        return [f"    {face.name}_work({call}, 0);"]
    rows = "1" if face.reduce else "n_rows"
    lines = [f"    double *work = (double *)malloc({face.work} * sizeof(double));",
             "    long k;", "    if (work == NULL) {    /* no memory: every output NaN */"]
    lines += [f"        for (k = 0; k < {rows} * {port.size}; ++k) out{o}[k] = NAN;"
              for o, port in enumerate(face.outs)]
    lines += ["        return;", "    }", f"    {face.name}_work({call}, work);",
              "    free(work);"]
    return lines


def header(face: Interface) -> str:
    """The header: the two prototypes and what they compute, take and write."""
    guard = f"HYBRIDAD_{face.name.upper()}_H"
    name, work = face.name, face.macro
    doc = _paragraphs(
        f"{name}: generated by hybridad {_version()}. C99, needs only libm (link with "
        f"-lm); no hybridad or Python at run time. {' '.join(face.notes)}",
        "Evaluates n_rows points (rows). Row r of argument k starts at argk + r * "
        "stridek (strides count doubles): stride 0 passes one row shared by every row "
        "(a parameter), the row size a batch stored row after row. Output k is "
        "row-major: " + (f"one row, the {face.reduce} over the rows" if face.reduce
                          else "n_rows rows of its size, row r at outk + r * size") +
        ". Outputs must not overlap the arguments or each other.")
    doc += ["", "Arguments (doubles per row; shape of one row; what they hold):"]
    for g, port in enumerate(face.args):
        doc += _item(f"arg{g}, stride{g}: {port.size}; {_shape(port.shape)}; {port.what}")
    doc += ["Outputs (doubles per row; shape of one row; what they hold):"]
    for o, port in enumerate(face.outs):
        doc += _item(f"out{o}: {port.size}; {_shape(port.shape)}; {port.what}")
    if face.reduce:
        doc += [""] + _paragraphs(
            f'reduce="{face.reduce}": rows are summed in pieces of {face.piece} rows, '
            f"each into a partial sum, and the partials added in order, as hybridad's "
            f"kernels do (accurate for long batches, and the same numbers)" +
            (", then divided by n_rows (NaN for no rows)." if face.reduce == "mean"
             else "."))
    doc += [""] + _paragraphs(
        f"{name}_work is {name} with a caller-owned workspace of {work} doubles as its "
        f"last argument (NULL when {work} is 0); {name} allocates it with malloc and "
        f"frees it before returning (if malloc fails, every output is NaN).",
        "Compile without -ffast-math: NaN and rounding follow IEEE, as in hybridad's "
        "kernels.")
    text = "\n".join((" * " + line).rstrip() for line in doc)
    return "\n".join([
        f"#ifndef {guard}", f"#define {guard}", "", "/*", text, " */", "",
        f"#define {work} {face.work}", "", "#ifdef __cplusplus", 'extern "C" {',
        "#endif", "", face.prototype() + ";", face.prototype(work=True) + ";", "",
        "#ifdef __cplusplus",
        "}", "#endif", "", f"#endif /* {guard} */", ""])


def _paragraphs(*texts: str) -> list[str]:
    """Comment lines of 76 columns, paragraphs apart."""
    lines: list[str] = []
    for text in texts:
        lines += ([""] if lines else []) + textwrap.wrap(text, 76, break_on_hyphens=False)
    return lines


def _item(text: str) -> list[str]:
    """An indented list item of 76 columns."""
    return textwrap.wrap(text, 76, initial_indent="  ", subsequent_indent="      ",
                         break_on_hyphens=False)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _version() -> str:
    from ... import __version__  # read late: hybridad imports this package early

    return __version__
