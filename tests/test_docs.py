"""The docs keep up with the code (after sqlite-utils' ``tests/test_docs.py``): every CLI
command and option is documented, every module is in the layout table of
``docs/development.md``, and the README stays a short, copy-pasteable front door."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from runchain.commands.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOC_FILES = [README, *sorted((REPO / "docs").glob("*.md"))]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in DOC_FILES)
COMMANDS = sorted(main.commands.items())
OPTIONS = [(name, opt) for name, command in COMMANDS for param in command.params
           if isinstance(param, click.Option) for opt in param.opts if opt.startswith("--")]
# CI (.ci/run) greps README.md for these lines, each whole
DEMO_COMMAND = "pip install -e . && python do_many.py"
TEST_COMMAND = "pip install -e '.[test]' && python -m pytest -q"


def layout_table() -> str:
    development = (REPO / "docs" / "development.md").read_text(encoding="utf-8")
    return development[development.index("## Layout"):]


def section(text: str, heading: str) -> str:
    """The part of ``text`` under the heading line ``heading``, up to the next heading of the
    same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n") + 1
    following = re.search(rf"^#{{1,{level}}} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + following.start()] if following else text[start:]


def without_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans, where `[..](..)` is no link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


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
def test_every_module_is_in_the_layout_table(path):
    assert f"`{path}`" in layout_table(), (f"{path} is missing from the layout table in "
                                           f"docs/development.md")


def test_the_layout_table_names_no_gone_module():
    named = re.findall(r"`(runchain/[\w/]+\.py)`", layout_table())
    assert named and all((REPO / p).is_file() for p in named), named


def test_readme_is_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, (f"README.md has {lines} lines; keep it at most 300 and move "
                          f"details to docs/")


def test_quickstart_has_both_commands_each_under_its_own_heading():
    quickstart = section(README.read_text(encoding="utf-8"), "## Quickstart")
    parts = re.split(r"^###+ .*$", quickstart, flags=re.M)[1:]  # the text under each subheading
    under = {}
    for command in (DEMO_COMMAND, TEST_COMMAND):
        found = [i for i, part in enumerate(parts)
                 if any(command in block.splitlines()
                        for block in re.findall(r"^```bash\n(.*?)^```", part, re.S | re.M))]
        assert found, f"no ### heading of the Quickstart has a bash block with the line: {command}"
        under[command] = found[0]
    assert under[DEMO_COMMAND] != under[TEST_COMMAND], "both commands sit under one heading"


@pytest.mark.parametrize("doc", [str(p.relative_to(REPO)) for p in DOC_FILES])
def test_every_relative_link_points_to_a_file(doc):
    path = REPO / doc
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", without_code(path.read_text(encoding="utf-8")))
    local = [t.split("#")[0] for t in targets
             if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, f"{doc} links to files that do not exist: {missing}"


def test_readme_uses_no_sample_run_id_as_an_argument():
    """Ids of the sample runs exist on nobody else's machine: commands take ``<leaf>``,
    ``$LEAF`` or a display name."""
    readme = README.read_text(encoding="utf-8")
    run_id = r"[a-z0-9]{8}(?:@\d+)?\b"
    pattern = (rf"runchain (?:chain|publish)\s+{run_id}"
               rf"|--(?:leaf|resume-from|resume_from|checkpoint_artifact|start_run_id)[ =]{run_id}")
    found = [m.group(0) for m in re.finditer(pattern, readme)]
    assert not found, f"README.md names sample run ids in commands: {found}"
