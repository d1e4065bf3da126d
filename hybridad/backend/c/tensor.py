"""C99 export of tensor kernels (``TensorLambdified``): loop nests, no BLAS.

The program is loops.py's :class:`LoopProgram` of the kernel's outputs, planned as for
the LLVM kernel but with contractions as generated loop nests (``blas=None``) and math
functions by their C names (``vector_math=False``); its IR text, with a table of plain
data pointers as the entry's argument (``ir(None)``), is translated by translate.py.
Per row of the batch, ``name_work`` points the table at the row's arguments and
outputs and runs the program. Scratch buffers live in the workspace; ``reduce`` sums
rows in pieces of tensor_kernel.REDUCE_PIECE rows (one partial each, added in order),
as ``TensorLambdified`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...core.build import as_operand
from ...core.expr import Expr
from ..llvm.loops import Buffer, LoopProgram
from .export import Interface, Port, check_name, header, source
from .translate import c_double, helper_definitions, translate


def tensor_to_c(kernel: Any, name: str = "f") -> tuple[str, str]:
    """C99 source and header of a :class:`~hybridad.backend.tensor_kernel.
    TensorLambdified`."""
    from ..tensor_kernel import REDUCE_PIECE

    check_name(name)
    outputs = [e for block in kernel.blocks for e in block]
    unique = list(dict.fromkeys(outputs))
    program = LoopProgram(unique, kernel.args, None, vector_math=False)
    translation = translate(program.ir(None), f"{name}_")
    scratch = sum(b.index for b in program.buffers if b.kind == "scratch")
    sizes = [o.size for o in unique]
    note = (f"Loop nests over {len(program.buffers)} buffers ({scratch} doubles of "
            f"scratch), contractions as plain loops.")
    face = Interface(name, [Port(a.size, a.shape, str(a.param)) for a in kernel.args],
                     _outputs(kernel, outputs), kernel.reduce,
                     scratch + (2 * sum(sizes) if kernel.reduce else 0), [note],
                     REDUCE_PIECE)
    tables = _tables(name, program.buffers)
    first = [outputs.index(u) for u in unique]   # the output each unique value goes to
    copies = [(o, first[unique.index(e)]) for o, e in enumerate(outputs)
              if o not in first]
    body = _body(face, name, program.buffers, first, copies, sizes, scratch, REDUCE_PIECE)
    parts = (translation.prototypes + [""] +
             helper_definitions(translation.helpers, f"{name}_") + translation.definitions)
    return source(face, parts, body, tables), header(face)


def _tables(name: str, buffers: list[Buffer]) -> list[str]:
    """Constant arrays and index arrays of the program as static C arrays."""
    lines = []
    for k, buffer in enumerate(buffers):
        if buffer.kind not in ("constant", "index"):
            continue
        values = np.asarray(buffer.value).ravel()
        if buffer.kind == "constant":
            kind, items = "double", [c_double(float(v)) for v in values]
        else:
            kind, items = "int64_t", [str(int(v)) for v in values]
        items = items or ["0"]
        rows = [", ".join(items[i:i + 8]) for i in range(0, len(items), 8)]
        lines.append(f"static const {kind} {name}_buffer{k}[{len(items)}] = {{\n    " +
                     ",\n    ".join(rows) + "\n};")
    return lines + ([""] if lines else [])


def _body(face: Interface, name: str, buffers: list[Buffer], first: list[int],
          copies: list[tuple[int, int]], sizes: list[int], scratch: int,
          piece: int) -> list[str]:
    """The statements of ``name_work``: the table of buffers, the row loop."""
    counters = "long r, k, start, end;" if face.reduce else \
        "long r, k;" if copies else "long r;"
    lines = [f"char *table[{max(len(buffers), 1)}];", counters]
    rows_out = [face.outs[o].size for o in range(len(face.outs))]
    offsets = [sum(sizes[:j]) for j in range(len(sizes))]
    fixed, inputs, outputs = [], [], []
    for k, buffer in enumerate(buffers):
        if buffer.kind in ("constant", "index"):
            fixed.append(f"table[{k}] = (char *){name}_buffer{k};")
        elif buffer.kind == "scratch":           # the program adds each one's offset
            fixed.append(f"table[{k}] = (char *)work;")
        elif buffer.kind == "input":
            g = buffer.index
            inputs.append(f"table[{k}] = (char *)(arg{g} + r * stride{g});")
        else:
            j = buffer.index
            o = first[j]
            outputs.append((k, j, o))
    lines += fixed
    if face.reduce is None:
        lines += ["for (r = 0; r < n_rows; ++r) {"] + [f"    {s}" for s in inputs]
        lines += [f"    table[{k}] = (char *)(out{o} + r * {rows_out[o]});"
                  for k, _, o in outputs]
        lines += [f"    {name}_run(table);"]
        lines += [f"    for (k = 0; k < {rows_out[o]}; ++k) out{o}[r * {rows_out[o]} + k] = "
                  f"out{src}[r * {rows_out[src]} + k];" for o, src in copies]
        return lines + ["}"] + (["(void)work;"] if face.work == 0 else [])
    total = sum(sizes)
    lines += [f"double *row = work + {scratch};        /* one row's results */",
              f"double *piece = row + {total};      /* a piece's partial sums */"]
    lines += [f"table[{k}] = (char *)(row + {offsets[j]});" for k, j, _ in outputs]
    lines += [f"for (k = 0; k < {sizes[j]}; ++k) out{first[j]}[k] = 0.0;"
              for j in range(len(sizes))]
    lines += [f"for (start = 0; start < n_rows; start += {piece}) {{",
              f"    end = n_rows - start < {piece} ? n_rows : start + {piece};",
              f"    for (k = 0; k < {total}; ++k) piece[k] = 0.0;",
              "    for (r = start; r < end; ++r) {"] + [f"        {s}" for s in inputs]
    lines += [f"        {name}_run(table);",
              f"        for (k = 0; k < {total}; ++k) piece[k] += row[k];", "    }"]
    lines += [f"    for (k = 0; k < {sizes[j]}; ++k) out{first[j]}[k] += "
              f"piece[{offsets[j]} + k];" for j in range(len(sizes))]
    lines += ["}"]
    if face.reduce == "mean":
        lines += [f"for (k = 0; k < {sizes[j]}; ++k) out{first[j]}[k] /= (double)n_rows;"
                  for j in range(len(sizes))]
    lines += [f"for (k = 0; k < {rows_out[o]}; ++k) out{o}[k] = out{src}[k];"
              for o, src in copies]
    return lines


def _outputs(kernel: Any, outputs: list[Expr]) -> list[Port]:
    """What each output holds, in TensorLambdified's order."""
    values = kernel.blocks[0]
    labels = [f"value {k}" if len(values) > 1 else "value" for k in range(len(values))]
    _, _, derivatives, wrt, _, _ = kernel._init
    picked = kernel.args if wrt is None else [as_operand(w) for w in (
        [wrt] if isinstance(wrt, Expr) else wrt)]
    if derivatives == "gradient":
        labels += [f"gradient with respect to {w.param}" for w in picked]
    elif derivatives == "jacobian":
        labels += [f"Jacobian of {label} with respect to {w.param}"
                   for label in labels[:len(values)] for w in picked]
    elif derivatives == "hessian":
        labels += [f"gradient with respect to {picked[0].param}",
                   f"Hessian with respect to {picked[0].param}"]
    return [Port(e.size, e.shape, label) for e, label in zip(outputs, labels)]
