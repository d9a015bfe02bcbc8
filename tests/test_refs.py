"""Parsing checkpoint references (pure)."""

import pytest

from runchain import CheckpointRef, ReferenceSyntaxError, parse_ref, step_alias


@pytest.mark.parametrize("text, expected", [
    ("me/proj/run-abc123-checkpoint:step-39", CheckpointRef("abc123", "step-39", "me", "proj")),
    ("me/proj/run-abc123-checkpoint:v2", CheckpointRef("abc123", "v2", "me", "proj")),
    ("proj/run-abc123-checkpoint:latest", CheckpointRef("abc123", "latest", None, "proj")),
    ("run-abc123-checkpoint:v0", CheckpointRef("abc123", "v0")),
    ("run-abc123-checkpoint", CheckpointRef("abc123", "latest")),
    ("abc123@39", CheckpointRef("abc123", "step-39")),
    ("abc123", CheckpointRef("abc123", "latest")),
    ("  abc123@0 ", CheckpointRef("abc123", "step-0")),
])
def test_every_reference_form_parses(text, expected):
    assert parse_ref(text) == expected


def test_reference_prints_back_in_full_form():
    assert str(parse_ref("abc123@39")) == "run-abc123-checkpoint:step-39"
    assert str(parse_ref("me/proj/run-abc123-checkpoint:v2")) == "me/proj/run-abc123-checkpoint:v2"


@pytest.mark.parametrize("text", ["", "abc@", "abc@-1", "abc@1.5", "@3", "a/b/c/run-x-checkpoint:v0",
                                  "me/proj/model:v0", "run-abc-checkpoint:", "abc:latest",
                                  "me//run-abc-checkpoint:v0", "abc@\u00b2", "abc@\u0663",
                                  "abc@" + "9" * 5000, f"abc@{2**63}"])
def test_malformed_reference_names_itself_and_the_accepted_forms(text):
    with pytest.raises(ReferenceSyntaxError) as err:
        parse_ref(text)
    assert repr(text.strip()) in str(err.value) or "empty" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("step", [0, 1, 39, 2**63 - 1])
def test_a_step_alias_reads_back_as_its_step(step):
    from runchain.core.contract import alias_step
    assert alias_step(step_alias(step)) == step
    assert parse_ref(f"abc123@{step}").alias == step_alias(step)


@pytest.mark.parametrize("alias", ["latest", "v3", "step-", "step-x", "step--1", "step-007",
                                   "step-1.5", f"step-{2**63}", "step-\u00b2", "best", " step-3"])
def test_only_what_step_alias_writes_reads_back_as_a_step(alias):
    """So `<id>@<step>`, the chain command and the resolver agree on what names a step."""
    from runchain.core.contract import alias_step
    assert alias_step(alias) is None
