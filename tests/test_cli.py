"""The runchain command: --help and --version, as a console script and as python -m."""

import shutil
import subprocess
import sys

import runchain


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
