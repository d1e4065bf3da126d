"""Graphviz DOT pictures of expressions: shared nodes once, colours, labels, files."""

import shutil
import subprocess

import numpy as np
import pytest
from dot_reader import check_syntax, edges, nodes

import hybridad as hd
from hybridad.core import dot as dot_module

x, y = hd.symbols("x y")
x1, x2 = hd.symbols("x1 x2")
ORANGE = dot_module.DERIVATIVE_COLOUR



def ids_labelled(text, label):
    return [k for k, a in nodes(text).items() if a.get("label") == label]


# -- structure ---------------------------------------------------------------------------
def test_shared_subexpression_is_drawn_once():
    s = hd.sin(x)
    text = hd.to_dot(s * s + s)
    check_syntax(text)
    ops = [k for k in nodes(text) if k.startswith("n")]
    assert len(ops) == 4  # x, sin, *, +
    (sin_id,) = ids_labelled(text, "sin")
    assert sum(1 for tail, _, _ in edges(text) if tail == sin_id) == 3  # * twice, + once


def test_each_root_gets_an_output_box_with_an_edge():
    text = hd.to_dot([x + y, x * y, x + y])
    boxes = {k: a["label"] for k, a in nodes(text).items() if k.startswith("out")}
    assert boxes == {"out0": "out[0]", "out1": "out[1]", "out2": "out[2]"}
    (plus,) = ids_labelled(text, "+")
    assert (plus, "out0", None) in edges(text) and (plus, "out2", None) in edges(text)
    assert nodes(hd.to_dot(x * y))["out0"]["label"] == "f"


def test_derivative_only_nodes_are_coloured_shared_ones_not():
    f = hd.sin(x) * y
    text = hd.to_dot(f, derivatives=hd.diff(f, x))
    check_syntax(text)
    found = nodes(text)
    (cos_id,) = ids_labelled(text, "cos")
    (sin_id,) = ids_labelled(text, "sin")
    (y_id,) = ids_labelled(text, "y")
    assert found[cos_id]["fillcolor"] == ORANGE and "filled" in found[cos_id]["style"]
    assert "fillcolor" not in found[sin_id] and "fillcolor" not in found[y_id]
    assert found["dout0"] == {"label": "df", "shape": "box", "style": "filled",
                              "fillcolor": ORANGE}
    assert "fillcolor" not in found["out0"]
    assert "only in the derivatives" in text


def test_gradient_dict_of_derivatives_keeps_primal_numbers():
    f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    grad = dict(zip(["df/dx1", "df/dx2"], hd.gradient(f, [x1, x2])))
    with_grad, alone = hd.to_dot(f, derivatives=grad), hd.to_dot(f)
    check_syntax(with_grad)
    assert {k: a for k, a in nodes(alone).items() if k.startswith("n")}.items() <= \
        nodes(with_grad).items()
    labels = {a["label"] for k, a in nodes(with_grad).items() if k.startswith("dout")}
    assert labels == {"df/dx1", "df/dx2"}


# -- labels ------------------------------------------------------------------------------
def test_labels_of_symbols_constants_and_operations():
    e = [2 * x, 0.5 + hd.exp(x), hd.sin(x) ** 3.14159265, x / y, x - y, -hd.cos(y),
         hd.maximum(x, y)]
    text = hd.to_dot(e)
    found = nodes(text)
    labels = {a["label"] for a in found.values()}
    assert {"x", "y", "2", "0.5", "3.14159", "*", "+", "**", "/", "-", "sin", "exp", "cos",
            "maximum"} <= labels
    assert found[ids_labelled(text, "x")[0]]["shape"] == "ellipse"
    assert found[ids_labelled(text, "2")[0]]["shape"] == "plaintext"
    minus = ids_labelled(text, "-")  # x - y and the unary negation
    assert sorted(sum(1 for _, h, _ in edges(text) if h == m) for m in minus) == [1, 2]


def test_non_commutative_operands_are_numbered():
    cases = {"-": x - y, "/": x / y, "**": x ** y, "where": hd.where(x > y, x, 2.0),
             "arctan2": hd.arctan2(y, x)}
    for label, e in cases.items():
        text = hd.to_dot(e)
        (op,) = ids_labelled(text, label)
        incoming = [(t, lab) for t, h, lab in edges(text) if h == op]
        assert [lab for _, lab in incoming] == [str(i) for i in range(len(e.args))], label
        first = nodes(text)[incoming[0][0]]["label"]
        assert first == {"where": ">", "arctan2": "y"}.get(label, "x")
    text = hd.to_dot(x * y + x)
    assert all(lab is None for _, _, lab in edges(text))  # commutative: no numbers


def test_labels_are_escaped():
    name = 'say "hi" \\ {there}\nnext'
    text = hd.to_dot({name: x}, title='a "title"')
    check_syntax(text)
    assert '[label="say \\"hi\\" \\\\ {there}\\nnext", shape="box"]' in text
    assert 'graph [label="a \\"title\\"", labelloc="t"];' in text
    assert dot_module.quote('\\"') == '"\\\\\\""'


def test_names_dict_and_arrays():
    text = hd.to_dot({"loss": x * y, "reg": x * x})
    assert {a["label"] for k, a in nodes(text).items() if k.startswith("out")} == \
        {"loss", "reg"}
    text = hd.to_dot([x, y], names=["first", "second"])
    assert [nodes(text)[k]["label"] for k in ("out0", "out1")] == ["first", "second"]
    assert nodes(hd.to_dot(x, names="g"))["out0"]["label"] == "g"
    H = hd.hessian(x ** 3 * y, [x, y])
    text = hd.to_dot(H)
    check_syntax(text)
    assert nodes(text)["out1"]["label"] == "out[0, 1]" and "out3" in nodes(text)
    with pytest.raises(ValueError, match="names"):
        hd.to_dot([x, y], names=["only one"])
    with pytest.raises(ValueError, match="names"):
        hd.to_dot({"a": x}, names=["b"])


def test_text_is_deterministic():
    f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    grad = hd.gradient(f, [x1, x2])
    first = hd.to_dot(f, derivatives=grad, title="f")
    assert first == hd.to_dot(f, derivatives=grad, title="f")
    assert "0x" not in first and str(id(f)) not in first


def test_hundred_thousand_chain():
    e = x
    for _ in range(100_000):
        e = hd.sin(e)
    text = hd.to_dot(e)
    lines = text.splitlines()
    assert sum(1 for line in lines if line.startswith("  n") and " [" in line
               and "->" not in line and not line.startswith("  node")) == 100_001
    assert sum(1 for line in lines if "->" in line) == 100_001  # 100k edges + output


# -- files -------------------------------------------------------------------------------
def test_render_dot_writes_text(tmp_path):
    text = hd.to_dot(hd.sin(x) * y)
    for name in ("picture.dot", "picture.gv"):
        path = hd.render_dot(text, tmp_path / name)
        assert path == tmp_path / name and path.read_text(encoding="utf-8") == text
    assert hd.render_dot(text, str(tmp_path / "as_str.dot")).exists()
    with pytest.raises(ValueError, match="suffix"):
        hd.render_dot(text, tmp_path / "picture.txt")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_dot_svg_with_graphviz(tmp_path):
    f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    path = hd.render_dot(hd.to_dot(f, derivatives=hd.gradient(f, [x1, x2])),
                         tmp_path / "f.svg")
    assert "<svg" in path.read_text(encoding="utf-8")


def test_render_dot_without_graphviz_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(hd.HybridadError, match=r"Graphviz's 'dot' program.*\.dot"):
        hd.render_dot(hd.to_dot(x), tmp_path / "f.svg")
    assert not (tmp_path / "f.svg").exists()
    assert hd.render_dot("digraph hybridad {\n}\n", tmp_path / "f.dot").exists()


def test_render_dot_runs_dot_without_a_shell(tmp_path, monkeypatch):
    calls = []

    def fake_run(args, **kwargs):
        calls.append((args, kwargs))
        return subprocess.CompletedProcess(args, 0, b"", b"")

    monkeypatch.setattr(shutil, "which", lambda name: "/opt/graphviz/dot")
    monkeypatch.setattr(subprocess, "run", fake_run)
    text = hd.to_dot(x)
    assert hd.render_dot(text, tmp_path / "f.PNG") == tmp_path / "f.PNG"
    ((args, kwargs),) = calls
    assert args == ["/opt/graphviz/dot", "-Tpng", "-o", str(tmp_path / "f.PNG")]
    assert kwargs["input"] == text.encode() and kwargs["timeout"] > 0
    assert not kwargs.get("shell", False)


def test_render_dot_reports_dot_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/graphviz/dot")
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(
        args, 1, b"", b"syntax error in line 1"))
    with pytest.raises(hd.HybridadError, match="syntax error"):
        hd.render_dot("digraph {", tmp_path / "f.pdf")


def test_numbers_and_numpy_scalars_become_constants():
    text = hd.to_dot([np.float64(1.5), 2])
    assert [nodes(text)[k]["label"] for k in ("n0", "n1")] == ["1.5", "2"]
