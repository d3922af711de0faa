"""The packages stay readable for the next engineer: no module holds two jobs, no function hides a module.

A module over 400 lines usually does two things and a function over 80 lines several; both
limits are the ones the structure issue set, checked here so they hold after it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("lpr", "service", "training")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_package_is_looked_at() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == set(PACKAGES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_over_400_lines_and_no_function_over_80(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, "split the module by job"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long
