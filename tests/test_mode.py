"""Choosing online or offline: never prompts, never prints a key."""

import pytest

from runchain import CredentialsError, ModeError, resolve_mode
from runchain.wandb_io.mode import credential_source

KEY = "k" * 40


@pytest.fixture
def no_credentials(wandb_dir, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    return wandb_dir


def test_auto_without_credentials_goes_offline_and_says_how_to_go_online(no_credentials, capsys):
    assert resolve_mode("auto") == "offline"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offline" in err and "wandb login" in err


def test_auto_with_api_key_goes_online_without_printing_the_key(no_credentials, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert resolve_mode("auto") == "online"
    out = capsys.readouterr()
    assert "online" in out.err and KEY not in out.err + out.out


def test_netrc_entry_for_the_wandb_host_counts_as_credentials(no_credentials, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert credential_source() == str(netrc)
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    assert credential_source() is None  # the key is for another host


def test_wandb_mode_env_is_honoured_by_auto(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_mode("auto") == "offline"


def test_explicit_mode_wins_over_wandb_mode(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_mode("offline") == "offline"


def test_online_without_credentials_is_a_clear_error(no_credentials, monkeypatch):
    with pytest.raises(CredentialsError, match="wandb login"):
        resolve_mode("online")
    monkeypatch.setenv("WANDB_MODE", "online")
    with pytest.raises(CredentialsError, match="WANDB_API_KEY"):
        resolve_mode("auto")


@pytest.mark.parametrize("mode, env", [("sideways", ""), ("auto", "disabled"), ("auto", "bogus")])
def test_unknown_or_useless_modes_are_errors(no_credentials, monkeypatch, mode, env):
    if env:
        monkeypatch.setenv("WANDB_MODE", env)
    with pytest.raises(ModeError):
        resolve_mode(mode)
