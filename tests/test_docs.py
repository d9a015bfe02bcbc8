"""The docs keep up with the code (after sqlite-utils' ``tests/test_docs.py``): every CLI
command and option is documented, and every module is in the README's layout table."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from runchain.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [REPO / "README.md",
                                                         *sorted((REPO / "docs").glob("*.md"))])
COMMANDS = sorted(main.commands.items())
OPTIONS = [(name, opt) for name, command in COMMANDS for param in command.params
           if isinstance(param, click.Option) for opt in param.opts if opt.startswith("--")]


def layout_table() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme[readme.index("## Layout"):]


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_is_documented(name):
    assert f"runchain {name}" in DOCS, f"`runchain {name}` appears in no doc"


@pytest.mark.parametrize("name, option", OPTIONS, ids=[f"{n} {o}" for n, o in OPTIONS])
def test_every_option_is_documented(name, option):
    pattern = rf"runchain {name}\b[^\n]*{re.escape(option)}\b|`{re.escape(option)}\b"
    assert re.search(pattern, DOCS), (f"option {option} of `runchain {name}` appears in no doc "
                                      f"(neither in a `runchain {name} ...` line nor as `{option}`)")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in
                                        (REPO / "runchain").rglob("*.py")))
def test_every_module_is_in_the_readme_layout(path):
    assert f"`{path}`" in layout_table(), f"{path} is missing from the README's layout table"


def test_the_layout_table_names_no_gone_module():
    named = re.findall(r"`(runchain/[\w/]+\.py)`", layout_table())
    assert named and all((REPO / p).is_file() for p in named), named
