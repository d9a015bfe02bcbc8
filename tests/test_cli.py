"""The runchain command: --help and --version, as a console script and as python -m (in
subprocesses: the entry points are what is tested); its folder options, in process."""

import shutil
import signal
import subprocess
import sys
import warnings

import runchain
from helpers import cli, runchain_process


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_console_script_prints_version():
    exe = shutil.which("runchain")
    assert exe, "the runchain console script is not installed; pip install -e '.[test]'"
    proc = _run(exe, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"runchain, version {runchain.__version__}"


def test_python_m_runchain_prints_help_with_an_example():
    proc = _run(sys.executable, "-m", "runchain", "--help")
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout and "Example:" in proc.stdout and "--version" in proc.stdout


def test_unknown_command_exits_non_zero():
    proc = _run(sys.executable, "-m", "runchain", "frobnicate")
    assert proc.returncode == 2 and "No such command" in proc.stderr


def test_dir_pointing_at_the_folder_that_holds_wandb_reads_its_wandb_folder(tree):
    proc = cli("tree", "--dir", tree["dir"].parent)
    assert tree["root"] in proc.stdout
    assert f"warning: {tree['dir'].parent} holds no runs, but its wandb/ folder does; reading" in proc.stderr


def test_a_dir_that_does_not_exist_is_its_own_error(tmp_path):
    proc = cli("tree", "--dir", tmp_path / "nosuch", check=False)
    assert proc.returncode == 1 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_the_default_folder_falls_back_to_dot_wandb_where_a_logger_wrote(tree, tmp_path, monkeypatch):
    """Lightning's WandbLogger writes ./wandb whatever WANDB_DIR says."""
    import shutil
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tree["dir"], tmp_path / "wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    proc = cli("tree")
    assert tree["root"] in proc.stdout and "but ./wandb does" in proc.stderr


def test_the_cli_in_process_prints_what_a_runchain_process_prints(tree):
    """``helpers.cli``, which most tests use, against ``python -m runchain``: the same exit
    code, stdout and stderr, a warning each time (as once per process), and this process's
    SIGTERM handler and ``warnings.showwarning`` as they were."""
    before = signal.getsignal(signal.SIGTERM), warnings.showwarning
    calls = [["tree", "--dir", tree["dir"].parent],  # a warning, then the tree
             ["tree", "--dir", tree["dir"].parent],  # the same warning again
             ["chain", tree["child"], "--metric", "loss/*"],
             ["chain", "nosuchrun"]]  # an error, exit 1
    ran = [cli(*args, check=False) for args in calls]
    assert [(r.returncode, r.stdout, r.stderr) for r in ran] == [
        (p.returncode, p.stdout, p.stderr) for p in (runchain_process(*args, check=False)
                                                     for args in calls)]
    assert ran[0].stderr.startswith("warning: ") and ran[1].stderr == ran[0].stderr
    assert [r.returncode for r in ran] == [0, 0, 0, 1]
    assert (signal.getsignal(signal.SIGTERM), warnings.showwarning) == before
