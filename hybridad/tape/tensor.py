"""Tapes at tensor level: instructions are whole-array numpy operations.

:class:`TensorTape` compiles expressions over tensor symbols into a flat program (a
``_Program``) whose instructions are the DAG's operation nodes, each evaluated on whole
arrays by the registry's numpy rule (:func:`~hybridad.core.evaluate.apply_numpy`), so a
matrix product is one BLAS call through ``np.matmul`` / ``np.einsum``, never a loop over
elements (``hd.Tape`` scalarizes tensors; this tape does not).

Programs
    Instructions run in topological order (children first, depth-first as
    :func:`~hybridad.core.traverse.topo_order` gives them). Slots ``0 .. n_inputs-1``
    hold the inputs, then one slot per distinct constant (``const`` and ``array`` leaves,
    preloaded), then the work slots. Each instruction names its argument slots and its
    output slot. A work slot is released right after the instruction that reads it last
    (its array is dropped then, not when the slot is next written) and reused by a later
    instruction, as in :mod:`hybridad.tape.linearize`; an instruction's result takes a
    slot *before* its arguments are released, because numpy holds both at once. So
    ``peak_slots`` is the most intermediate arrays alive at once, and ``peak_bytes`` the
    most bytes they hold (float64, shapes known statically; a result that numpy returns
    as a view, such as a reshape or a broadcast, is counted as if it were a copy, so the
    figure is an upper bound). Inputs and constants are not counted: the caller and the
    expression own them.

Sweeps
    The reverse and forward sweeps are programs too, compiled once (lazily) from the
    symbolic tensor derivatives: ``weighted_adjoints(outputs, cotangent symbols,
    inputs)`` for :meth:`TensorTape.vjp`, ``directional(outputs, {input: tangent
    symbol})`` for :meth:`TensorTape.jvp`, and ``[output] + adjoints`` for
    :meth:`TensorTape.value_and_gradient`, so the work the value and its gradient share
    is done once. The derivative DAGs are compact (the gradient of an MLP is a handful
    of matrix products), so a sweep does the matrix products hand-written
    backpropagation does. As in any reverse sweep, the forward values the adjoints need
    stay alive until the adjoints reach them (a chain of n steps keeps about n).

Batches
    Every value may carry one leading batch dimension (values without it are shared by
    every row). An instruction none of whose arguments is batched runs once, unbatched.
    An *elementwise* instruction (a registry entry with ``structural == False``) runs
    once on the whole batch: a batched operand of node shape ``s`` is reshaped to
    ``(B,) + (1,) * (out.ndim - len(s)) + s`` and numpy broadcasting does the rest, with
    no knowledge of the primitive. A *structural* instruction with a batched argument
    runs once through its registry entry's batching rule (matmul, sum, max, min, reshape,
    transpose, broadcast_to, indexing, concatenate, einsum, take have one); an entry
    without one runs row by row (its numpy rule sees exactly the shapes it was written
    for) and the rows are stacked.
"""

from __future__ import annotations

import itertools
import math
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np

from ..calculus.diff import directional, weighted_adjoints
from ..core.build import ONE, as_operand
from ..core.evaluate import apply_numpy
from ..core.expr import ARRAY, CONSTANT, SYMBOL, Expr, is_live_symbol, symbol
from ..core.printing import ATOM, _format_node, format_array, format_constant
from ..core.registry import PRIMITIVES
from ..core.traverse import dependents, topo_order

#: bytes of one element (every value is float64)
ITEMSIZE = 8
#: the node text in a trace line is cut to this many characters
TEXT_WIDTH = 60
SWEEPS = ("evaluate", "vjp", "jvp", "value_and_gradient")
# operations numpy answers with a view of their first argument's memory (a reshape of a
# contiguous array; the tape's reshapes see arrays it made, which are)
VIEWS = frozenset({"transpose", "broadcast_to", "getitem", "reshape"})

_serials = itertools.count(1)


class _Instruction:
    """``slots[out] = apply_numpy(node, [slots[a] for a in args])``; afterwards the slots
    in ``release`` (holding the nodes ``released``) are dropped."""

    __slots__ = ("node", "out", "args", "elementwise", "pads", "release", "released")

    def __init__(self, node: Expr, out: int, args: tuple[int, ...]) -> None:
        self.node = node
        self.out = out
        self.args = args
        self.elementwise = not PRIMITIVES[node.op].structural
        # for an elementwise op on a batch: each operand's shape aligned to the result's
        # rank (None when it already has that rank)
        self.pads = tuple((1,) * (node.ndim - a.ndim) + a.shape if a.ndim < node.ndim
                          else None for a in node.args) if self.elementwise else ()
        self.release: tuple[int, ...] = ()
        self.released: tuple[Expr, ...] = ()


class _Program:
    """The instructions computing ``roots`` from ``inputs`` (symbols), slots reused by
    liveness. See the module docstring."""

    def __init__(self, roots: Sequence[Expr], inputs: Sequence[Expr]) -> None:
        self.roots = list(roots)
        self.inputs = list(inputs)
        order = topo_order(self.roots)
        slot: dict[Expr, int] = {s: i for i, s in enumerate(self.inputs)}
        self.constants: list[tuple[int, Any]] = []
        ops: list[Expr] = []
        missing = sorted(n.param for n in order if n.op == SYMBOL and n not in slot)
        if missing:
            raise ValueError(f"TensorTape: the outputs use symbols that are not inputs: "
                             f"{', '.join(missing)}")
        for node in order:
            if node.op in (CONSTANT, ARRAY):
                slot[node] = len(slot)
                value = np.float64(node.param) if node.op == CONSTANT else node.param
                self.constants.append((slot[node], value))
            elif node.args:
                ops.append(node)
        self.n_fixed = len(slot)

        last: dict[Expr, float] = {}
        for t, node in enumerate(ops):
            for a in node.args:
                last[a] = t
        for root in self.roots:
            last[root] = math.inf
        released_at: dict[int, list[Expr]] = {}
        for node, t in last.items():
            if t != math.inf and node.args:          # leaves keep their fixed slots
                released_at.setdefault(int(t), []).append(node)

        free: list[int] = []
        n_work = 0
        self.instructions: list[_Instruction] = []
        for t, node in enumerate(ops):
            if free:
                out = free.pop()
            else:
                out, n_work = self.n_fixed + n_work, n_work + 1
            slot[node] = out
            instruction = _Instruction(node, out, tuple(slot[a] for a in node.args))
            dead = released_at.get(t, [])
            instruction.released = tuple(dead)
            instruction.release = tuple(slot[n] for n in dead)
            free.extend(reversed(instruction.release))
            self.instructions.append(instruction)
        self.n_slots = self.n_fixed + n_work
        self.peak_slots = n_work
        self.output_slots = [slot[r] for r in self.roots]

    @property
    def n_instructions(self) -> int:
        return len(self.instructions)

    @cached_property
    def batchable(self) -> set[Expr]:
        """Nodes whose value carries the batch when every input does."""
        return dependents(topo_order(self.roots), self.inputs)

    def peak_bytes(self, batch: int | None = None, outputs: bool = True) -> int:
        """Most bytes of intermediate arrays alive at once; with ``batch``, as if every
        input carried that leading batch dimension (nodes that depend on no input are
        computed once); without ``outputs``, the result arrays are not counted (what a
        sweep holds beyond what it returns: a backward pass's saved values)."""
        results = set() if outputs else set(self.roots)

        def size(node: Expr) -> int:
            if node in results:
                return 0
            scale = batch if batch is not None and node in self.batchable else 1
            return node.size * ITEMSIZE * scale

        # a view owns no memory and keeps its base's alive: bytes are freed when the last
        # node holding an owner's memory (the owner or a view of it) is released
        owner: dict[Expr, Expr] = {}
        owned: dict[Expr, int] = {}
        holders: dict[Expr, int] = {}
        live = peak = 0
        for instruction in self.instructions:
            node = instruction.node
            base = owner.get(node.args[0], node.args[0]) if node.op in VIEWS else node
            owner[node] = base
            if base is node:
                owned[node] = size(node)
                live += owned[node]
            holders[base] = holders.get(base, 0) + 1
            peak = max(peak, live)
            for released in instruction.released:
                base = owner.get(released, released)
                holders[base] = holders.get(base, 1) - 1
                if holders[base] == 0:
                    live -= owned.get(base, 0)
        return peak

    def run(self, values: list[np.ndarray], batched: list[bool], batch: int | None,
            record: Callable[[int, Any], None] | None = None) -> list[np.ndarray]:
        """Execute on checked float64 ``values`` (one per input; ``batched[i]`` when
        value i carries the leading batch dimension of size ``batch``); ``record(t,
        result)`` is called after instruction t (for traces)."""
        slots: list[Any] = [None] * self.n_slots
        slots[:len(values)] = values
        for k, value in self.constants:
            slots[k] = value
        flags = [False] * self.n_slots
        flags[:len(batched)] = batched
        with np.errstate(all="ignore"):
            for t, instruction in enumerate(self.instructions):
                args = [slots[a] for a in instruction.args]
                if batch is not None and any(flags[a] for a in instruction.args):
                    result = _batched(instruction, args, [flags[a] for a in instruction.args],
                                      batch)
                    flags[instruction.out] = True
                else:
                    result = apply_numpy(instruction.node, args)
                    flags[instruction.out] = False
                slots[instruction.out] = result
                if record is not None:
                    record(t, result)
                for k in instruction.release:
                    slots[k] = None
        results, seen = [], set()
        for root, k in zip(self.roots, self.output_slots):
            value = np.asarray(slots[k], dtype=np.float64)
            if batch is not None and not flags[k]:
                value = np.broadcast_to(value, (batch,) + root.shape).copy()
            elif (k < self.n_fixed or k in seen or not value.flags.writeable
                  or not value.flags.owndata):
                value = value.copy()              # never hand out an input or a view
            seen.add(k)
            results.append(value)
        return results


def _batched(instruction: _Instruction, args: list[Any], flags: list[bool],
             batch: int) -> np.ndarray:
    """One instruction on batched arguments (see the module docstring)."""
    node = instruction.node
    if instruction.elementwise:
        # a batched operand of lower rank than the result gets 1s after the batch axis
        aligned = [v.reshape((batch,) + pad) if flag and pad is not None else v
                   for v, pad, flag in zip(args, instruction.pads, flags)]
        result = np.asarray(apply_numpy(node, aligned))
        target = (batch,) + node.shape
        return result if result.shape == target else np.broadcast_to(result, target)
    rule = PRIMITIVES[node.op].batch
    if rule is not None:                     # the entry's batching rule: one call
        return np.asarray(rule(node, args, flags))
    rows = [apply_numpy(node, [v[i] if flag else v for v, flag in zip(args, flags)])
            for i in range(batch)]
    return np.stack(rows) if rows else np.zeros((0,) + node.shape)


def _fresh_symbols(hint: str, shapes: Sequence[tuple[int, ...]]) -> list[Expr]:
    """Tensor symbols ``_tt<n>_<hint><k>`` of ``shapes`` that no live expression uses."""
    while True:
        prefix = f"_tt{next(_serials)}_{hint}"
        names = [f"{prefix}{k}" for k in range(len(shapes))]
        if not any(is_live_symbol(name) for name in names):
            return [symbol(name, shape) for name, shape in zip(names, shapes)]


class TensorTape:
    """A tensor-level tape of ``outputs`` (an expression or a list) as functions of
    the symbols ``inputs`` (every symbol the outputs use, each a distinct input).

    >>> import numpy as np, hybridad as hd
    >>> X, W = hd.tensor("tt_doc_X", (4, 3)), hd.tensor("tt_doc_W", (3, 2))
    >>> tape = TensorTape(hd.sum(hd.tanh(X @ W)), [X, W])
    >>> value, (dX, dW) = tape.value_and_gradient(np.ones((4, 3)), np.zeros((3, 2)))
    >>> float(value), dX.shape, dW.shape, float(dW.sum())
    (0.0, (4, 3), (3, 2), 24.0)
    """

    def __init__(self, outputs: Expr | Sequence[Expr], inputs: Sequence[Expr]) -> None:
        single = isinstance(outputs, Expr)
        outs = [outputs] if single else list(outputs)
        self.outputs: list[Expr] = [as_operand(o) for o in outs]
        self.inputs: list[Expr] = [inputs] if isinstance(inputs, Expr) else list(inputs)
        for s in self.inputs:
            if not (isinstance(s, Expr) and s.op == SYMBOL):
                raise TypeError(f"TensorTape: inputs must be symbols (hd.tensor or "
                                f"hd.symbols), got {s!r}")
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError("TensorTape: inputs must be distinct symbols")
        self._programs: dict[str, _Program] = {
            "evaluate": _Program(self.outputs, self.inputs)}

    # -- sizes ---------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    @property
    def n_instructions(self) -> int:
        """Instructions of :meth:`evaluate` (one per operation node)."""
        return self._programs["evaluate"].n_instructions

    @property
    def peak_slots(self) -> int:
        """Most intermediate arrays alive at once during :meth:`evaluate`."""
        return self._programs["evaluate"].peak_slots

    def peak_bytes(self, batch: int | None = None, sweep: str = "evaluate",
                   outputs: bool = True) -> int:
        """Most bytes of intermediate arrays alive at once (float64, from the static
        shapes) during ``sweep`` (``"evaluate"``, ``"vjp"``, ``"jvp"`` or
        ``"value_and_gradient"``); with ``batch``, as if every value carried that
        leading batch dimension; ``outputs=False`` leaves the result arrays out."""
        if batch is not None and (not isinstance(batch, (int, np.integer)) or batch < 0):
            raise ValueError(f"TensorTape.peak_bytes: batch must be a non-negative int, "
                             f"got {batch!r}")
        return self.program(sweep).peak_bytes(None if batch is None else int(batch), outputs)

    def program(self, sweep: str = "evaluate") -> _Program:
        """The compiled program of ``sweep`` (built on first use, then cached): its
        ``instructions``, ``n_instructions``, ``peak_slots`` and ``peak_bytes()``."""
        if sweep not in SWEEPS:
            raise ValueError(f"TensorTape: sweep must be one of {', '.join(SWEEPS)}, got "
                             f"{sweep!r}")
        if sweep not in self._programs:
            self._programs[sweep] = self._compile(sweep)
        return self._programs[sweep]

    def _compile(self, sweep: str) -> _Program:
        if sweep == "vjp":
            cotangents = _fresh_symbols("cot", [o.shape for o in self.outputs])
            roots = weighted_adjoints(self.outputs, cotangents, self.inputs)
            return _Program(roots, self.inputs + cotangents)
        if sweep == "jvp":
            tangents = _fresh_symbols("tan", [s.shape for s in self.inputs])
            roots = directional(self.outputs, dict(zip(self.inputs, tangents)))
            return _Program(roots, self.inputs + tangents)
        self._check_scalar_output("value_and_gradient")
        output = self.outputs[0]
        gradients = weighted_adjoints([output], [ONE], self.inputs)
        return _Program([output] + gradients, self.inputs)

    def __repr__(self) -> str:
        return (f"TensorTape({_count(self.n_outputs, 'output')}, "
                f"{_count(self.n_inputs, 'input')}, "
                f"{_count(self.n_instructions, 'instruction')}, peak "
                f"{_count(self.peak_slots, 'slot')}, {self.peak_bytes()} bytes)")

    # -- evaluation and sweeps ---------------------------------------------------------
    def evaluate(self, *values: Any) -> list[np.ndarray]:
        """One array per output, ``shape`` or ``(batch,) + shape``, from one value per
        input (its symbol's shape, or with one leading batch dimension; unbatched
        values are shared by every row)."""
        return self._execute("evaluate", list(values))

    def vjp(self, values: Sequence[Any], cotangents: Sequence[Any]) -> list[np.ndarray]:
        """Reverse sweep: Σ_k cotangents[k] · ∂ output_k / ∂ input, one array per input
        (its shape, batched if any value or cotangent is)."""
        self._check_sequence(values, "vjp", "values", self.n_inputs, "input")
        self._check_sequence(cotangents, "vjp", "cotangents", self.n_outputs, "output")
        return self._execute("vjp", list(values) + list(cotangents))

    def jvp(self, values: Sequence[Any], tangents: Sequence[Any]) -> list[np.ndarray]:
        """Forward sweep: Σ_i ∂ output / ∂ input_i · tangents[i], one array per output
        (its shape, batched if any value or tangent is)."""
        self._check_sequence(values, "jvp", "values", self.n_inputs, "input")
        self._check_sequence(tangents, "jvp", "tangents", self.n_inputs, "input")
        return self._execute("jvp", list(values) + list(tangents))

    def value_and_gradient(self, *values: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        """The single scalar-shaped output and its gradient with respect to every input,
        from one program (shared work done once)."""
        self._check_scalar_output("value_and_gradient")
        results = self._execute("value_and_gradient", list(values))
        return results[0], results[1:]

    # -- traces ------------------------------------------------------------------------
    def trace(self, *values: Any, sweep: str = "evaluate") -> str:
        """The program as text: one line per instruction with its step number, output
        slot, op, the node's text (cut to ``TEXT_WIDTH`` characters), the shapes of its
        result and arguments and, when values are given, the result's norm (Frobenius,
        over the whole batch). ``values`` are the program's inputs: the tape's inputs,
        followed for ``sweep="vjp"`` by one cotangent per output and for ``"jvp"`` by
        one tangent per input."""
        program = self.program(sweep)
        norms: dict[int, float] = {}
        batch = None
        if values:
            checked, batched, batch = self._check_values(list(values), sweep, "trace")

            def record(t: int, result: Any) -> None:
                norms[t] = float(np.linalg.norm(result))

            program.run(checked, batched, batch, record)
        texts = _node_texts(program)
        names = [s.param for s in program.inputs]
        lines = [f"TensorTape {sweep}: {_count(len(program.inputs), 'input')}, "
                 f"{_count(len(program.roots), 'output')}, "
                 f"{_count(program.n_instructions, 'instruction')}, peak "
                 f"{_count(program.peak_slots, 'slot')} / {program.peak_bytes(batch)} bytes"
                 + ("" if batch is None else f" (batch {batch})")]
        for k, s in enumerate(program.inputs):
            lines.append(f"  in   s{k} = {names[k]} {_shape_text(s.shape)}")
        for k, value in program.constants:
            text = (format_constant(float(value))[0] if np.ndim(value) == 0
                    else format_array(value))
            lines.append(f"  const s{k} = {_cut(text)} {_shape_text(np.shape(value))}")
        for t, instruction in enumerate(program.instructions):
            node = instruction.node
            arguments = ", ".join(f"s{a} {_shape_text(x.shape)}"
                                  for a, x in zip(instruction.args, node.args))
            line = (f"  {t:>4}  s{instruction.out} = {node.op}({arguments}) -> "
                    f"{_shape_text(node.shape)}   # {texts[node]}")
            if t in norms:
                line += f"   |v| = {norms[t]:.6g}"
            lines.append(line)
        for k, (root, out) in enumerate(zip(program.roots, program.output_slots)):
            lines.append(f"  out  y{k} = s{out} {_shape_text(root.shape)}")
        return "\n".join(lines)

    # -- validation --------------------------------------------------------------------
    def _check_scalar_output(self, caller: str) -> None:
        if self.n_outputs != 1 or self.outputs[0].shape != ():
            shapes = ", ".join(str(o.shape) for o in self.outputs)
            raise ValueError(f"TensorTape.{caller} needs a single scalar-shaped output, "
                             f"the tape has {self.n_outputs} of shapes {shapes}; use vjp()")

    @staticmethod
    def _check_sequence(values: Any, caller: str, name: str, count: int, what: str
                        ) -> None:
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"TensorTape.{caller}: {name} must be a list or tuple with one "
                            f"array per {what}, got {type(values).__name__}")
        if len(values) != count:
            raise ValueError(f"TensorTape.{caller}: {name} needs {count} arrays (one per "
                             f"{what}), got {len(values)}")

    def _signature(self, sweep: str) -> tuple[list[tuple[int, ...]], list[str]]:
        """The shapes of ``sweep``'s program inputs, and how error messages name them."""
        shapes = [s.shape for s in self.inputs]
        labels = [f"input {k} ({s.param})" for k, s in enumerate(self.inputs)]
        if sweep == "vjp":
            shapes += [o.shape for o in self.outputs]
            labels += [f"the cotangent of output {k}" for k in range(self.n_outputs)]
        elif sweep == "jvp":
            shapes += [s.shape for s in self.inputs]
            labels += [f"the tangent of input {k} ({s.param})"
                       for k, s in enumerate(self.inputs)]
        return shapes, labels

    def _execute(self, sweep: str, values: list[Any]) -> list[np.ndarray]:
        checked, batched, batch = self._check_values(values, sweep, sweep)
        return self.program(sweep).run(checked, batched, batch)

    def _check_values(self, values: list[Any], sweep: str, caller: str
                      ) -> tuple[list[np.ndarray], list[bool], int | None]:
        """float64 arrays of the expected shapes (or batched), checked before any
        computation, whether each is batched, and the batch size (None: no batch)."""
        shapes, labels = self._signature(sweep)
        if len(values) != len(shapes):
            raise ValueError(f"TensorTape.{caller}: expected {len(shapes)} values "
                             f"({', '.join(labels)}), got {len(values)}")
        checked, batched, sizes = [], [], {}
        for value, shape, label in zip(values, shapes, labels):
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"TensorTape.{caller}: {label} must be a numeric array, got "
                                f"{type(value).__name__} of dtype {array.dtype}")
            if array.shape == shape:
                batched.append(False)
            elif array.ndim == len(shape) + 1 and array.shape[1:] == shape:
                batched.append(True)
                sizes[label] = array.shape[0]
            else:
                raise ValueError(f"TensorTape.{caller}: {label} must have shape {shape} or "
                                 f"(batch, *{shape}), got {array.shape}")
            checked.append(array.astype(np.float64, copy=False))
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{label}: {n}" for label, n in sizes.items())
            raise ValueError(f"TensorTape.{caller}: batched values have different batch "
                             f"sizes ({listed})")
        return checked, batched, next(iter(sizes.values()), None)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


def _cut(text: str, width: int = TEXT_WIDTH) -> str:
    text = text.replace("\n", "; ")
    return text if len(text) <= width else text[:width - 3] + "..."


def _node_texts(program: _Program) -> dict[Expr, str]:
    """Each node's infix text (shared subexpressions written out), cut to TEXT_WIDTH:
    built bottom-up from the arguments' cut texts, so linear in the program size."""
    texts: dict[Expr, tuple[str, int]] = {}
    for node in topo_order(program.roots):
        text, precedence = _format_node(node, texts)
        texts[node] = (text, precedence) if len(text) <= TEXT_WIDTH else (_cut(text), ATOM)
    return {node: text for node, (text, _) in texts.items()}
