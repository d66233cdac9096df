"""The examples in docs/promql.md and in the PromQL modules' docstrings run as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "promql.md"
MODULES = [
    "watchkeeper.promql.engine",
    "watchkeeper.promql.library",
    "watchkeeper.promql.parser",
]


def test_promql_doc_examples_run() -> None:
    pytest.importorskip("pandas")
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
