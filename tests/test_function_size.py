"""No function in the product code is over 150 lines (issue 34): a longer one is split into
named steps, so a reader sees what it does before how."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("guitarlab", "corpus", "synth", "recorder", "augment", "datasets", "train")
MAX_LINES = 150


def long_functions(source: str, name: str, limit: int = MAX_LINES) -> list[str]:
    """``"file:line name (N lines)"`` for every function or method longer than ``limit``,
    nested ones included (decorators and docstring count: what a reader scrolls through)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_product_code_is_over_150_lines() -> None:
    files = sorted(p for room in ROOMS for p in (ROOT / room).rglob("*.py"))
    assert len(files) > 50  # the rooms were found
    long = [
        hit
        for path in files
        for hit in long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not long, "split these into named steps: " + "; ".join(long)


def test_a_long_function_is_found_even_nested() -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(150))
    source = f"def short():\n    pass\n\n\ndef outer():\n    def inner():\n{body}    return 1\n"
    assert long_functions(source, "demo.py") == [
        "demo.py:5 outer (153 lines)",
        "demo.py:6 inner (151 lines)",
    ]
    assert long_functions(source, "demo.py", limit=153) == []
