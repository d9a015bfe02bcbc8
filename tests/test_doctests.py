"""The examples in the pure modules' docstrings run, and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["runchain.core.contract", "runchain.core.classify", "runchain.core.stitch",
                                  "runchain.core.lineage", "runchain.readers.resolve"])
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
