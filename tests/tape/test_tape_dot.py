"""Tape.to_dot: inputs, instructions and outputs as nodes, partials on the edges."""

import re

from dot_reader import check_syntax, edges, nodes

import hybridad as hd
from hybridad.core.dot import DERIVATIVE_COLOUR
from hybridad.tape import Tape

x1, x2 = hd.symbols("x1 x2")
F = hd.log(x1) + x1 * x2 - hd.sin(x2)


def instruction(found, formula):
    (ident,) = [k for k, a in found.items() if re.fullmatch(r"i\d+", k)
                and a["label"].split("\\n")[0].split(" = ", 1)[1] == formula]
    return ident


def test_textbook_tape_picture():
    t = Tape(F, [x1, x2])
    text = t.to_dot()
    check_syntax(text)
    found = nodes(text)
    assert found["in0"]["label"] == "x1\\nr0" and found["in1"]["label"] == "x2\\nr1"
    assert sum(1 for k in found if re.fullmatch(r"i\d+", k)) == t.n_instructions == 7
    assert found["out0"]["label"] == f"y1\\nr{t.program.output_registers[0]}"
    final = instruction(found, "v4 - v5")
    assert (final, "out0", None) in edges(text)


def test_textbook_edges_carry_the_local_partials():
    text = Tape(F, [x1, x2]).to_dot()
    found = nodes(text)
    labelled = {(found[t]["label"].split("\\n")[0], found[h]["label"].split("\\n")[0], lab)
                for t, h, lab in edges(text)}
    assert {("x1", "v1 = log(x1)", "1/x1"), ("x1", "v3 = x1*x2", "x2"),
            ("x2", "v3 = x1*x2", "x1"), ("x2", "v5 = sin(x2)", "cos(x2)"),
            ("v1 = log(x1)", "v4 = v1 + v3", "1"),
            ("v4 = v1 + v3", "v7 = v4 - v5", "0: 1"),
            ("v5 = sin(x2)", "v7 = v4 - v5", "1: -1")} <= labelled


def test_partial_only_instructions_are_coloured():
    found = nodes(Tape(F, [x1, x2]).to_dot())
    for formula in ("1/x1", "cos(x2)"):
        assert found[instruction(found, formula)]["fillcolor"] == DERIVATIVE_COLOUR
    for formula in ("log(x1)", "x1*x2", "sin(x2)", "v4 - v5"):
        assert "fillcolor" not in found[instruction(found, formula)]


def test_constants_and_several_outputs():
    t = Tape([x1 ** 3, 2.0, x2], [x1, x2])
    text = t.to_dot()
    check_syntax(text)
    found = nodes(text)
    constants = {a["label"].split("\\n")[0]: k for k, a in found.items() if k.startswith("c")}
    assert {"2", "3"} <= set(constants)
    outputs = {h: t_ for t_, h, _ in edges(text) if h.startswith("out")}
    assert outputs["out1"] == constants["2"] and outputs["out2"] == "in1"
    assert found["out2"]["label"] == "y3\\nr1"


def test_where_condition_edge_has_no_partial():
    t = Tape(hd.where(x1 > x2, x1 * x1, x2), [x1, x2])
    text = t.to_dot()
    check_syntax(text)
    found = nodes(text)
    where = instruction(found, "where(v1, v2, x2)")
    labels = [lab for _, h, lab in edges(text) if h == where]
    assert labels == ["0", "1: v1", "2: where(v1, 0, 1)"]   # where(c, 1, 0) is c itself
    square = instruction(found, "x1*x1")
    assert [lab for _, h, lab in edges(text) if h == square] == ["x1", "x1"]


def test_deep_tape_keeps_labels_short_and_is_deterministic():
    e = x1
    for _ in range(2000):
        e = hd.tanh(e) * x2
    t = Tape(e, [x1, x2])
    text = t.to_dot()
    assert text == t.to_dot()
    found = nodes(text)
    assert sum(1 for k in found if re.fullmatch(r"i\d+", k)) == t.n_instructions
    assert max(len(lab) for _, _, lab in edges(text) if lab) <= 40
    assert "1 - v" in text  # tanh's partial, written with the primal value's name
