"""A small reader of the Graphviz DOT text hybridad writes (shared by the DOT tests)."""

import re

NODE = re.compile(r'^  (\w+) \[(.*)\];$')
EDGE = re.compile(r'^  (\w+) -> (\w+)(?: \[(.*)\])?;$')
ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def check_syntax(text):
    """Starts with digraph, braces balance outside strings, every line a statement."""
    assert text.startswith("digraph hybridad {\n") and text.endswith("}\n")
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            in_string = not (ch == '"' and not escaped)
            escaped = ch == "\\" and not escaped
        elif ch == '"':
            in_string = True
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            assert depth >= 0
    assert depth == 0 and not in_string
    for line in text.splitlines()[1:-1]:
        assert (line.startswith("  //") or NODE.match(line) or EDGE.match(line)), line


def nodes(text):
    """Node definitions (DOT id -> attribute dict), without the defaults' statements."""
    found = {}
    for line in text.splitlines():
        m = NODE.match(line)
        if m and m.group(1) not in ("node", "edge", "graph"):
            found[m.group(1)] = dict(ATTR.findall(m.group(2)))
    return found


def edges(text):
    """(tail, head, label or None) per edge, in order."""
    found = []
    for line in text.splitlines():
        m = EDGE.match(line)
        if m:
            found.append((m.group(1), m.group(2), dict(ATTR.findall(m.group(3) or "")).get(
                "label")))
    return found
