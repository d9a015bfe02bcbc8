"""The processes a test starts (``helpers.Processes``, the ``processes`` fixture): a Ctrl-C a
test sends reaches them however pytest was started, and they end with the test.

A process started with SIGINT ignored passes that on through exec: pytest started as a
background job (``nohup python -m pytest &``, as CI runners start it) would start every
process with Ctrl-C ignored, and a test that sends one would wait for ever. Real processes,
real signals; the waits are hang guards, never time limits."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from helpers import Processes

TESTS = Path(__file__).resolve().parent

# Blocks reading stdin and echoes each line: alive as long as it answers.
ECHO = ("import sys\n"
        "print('ready', flush=True)\n"
        "for line in sys.stdin:\n"
        "    print(line.strip(), flush=True)\n")

# Started with SIGINT ignored, as a background job is: a child started plainly ignores Ctrl-C
# (it answers after it), one started by ``Processes`` stops on it. Prints what each did.
BACKGROUND = r"""
import json, os, signal, subprocess, sys
sys.path.insert(0, sys.argv[1])
from helpers import Processes
seen = {"parent ignores SIGINT": signal.getsignal(signal.SIGINT) is signal.SIG_IGN}
echo = [sys.executable, "-c", sys.argv[2]]
pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

plain = subprocess.Popen(echo, start_new_session=True, **pipes)
assert plain.stdout.readline() == "ready\n"
os.killpg(plain.pid, signal.SIGINT)  # ignored: discarded as it is sent
plain.stdin.write("still here\n")
plain.stdin.flush()
seen["plain child after Ctrl-C"] = plain.stdout.readline().strip()
plain.stdin.close()
plain.wait(timeout=600)

with Processes() as started:
    proc = started.start(echo, **pipes)
    assert proc.stdout.readline() == "ready\n"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    seen["child of Processes after Ctrl-C"] = proc.wait(timeout=600)
print(json.dumps(seen))
"""


def test_ctrl_c_reaches_a_process_started_by_processes_when_pytest_ignores_it():
    # `cmd &` in a shell script (no job control) starts cmd with SIGINT and SIGQUIT ignored
    background = ["/bin/sh", "-c", '"$@" & wait $!', "sh",
                  sys.executable, "-c", BACKGROUND, str(TESTS), ECHO]
    proc = subprocess.run(background, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "parent ignores SIGINT": True,
        "plain child after Ctrl-C": "still here",  # what the Ctrl-C tests failed on
        "child of Processes after Ctrl-C": -signal.SIGINT,  # KeyboardInterrupt, re-raised
    }


# Holds the write end of a pipe, as does the grandchild it starts in its own process group;
# both ignore SIGTERM, so only the SIGKILL after the grace ends them.
STUBBORN = r"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fd = int(sys.argv[1])
subprocess.Popen([sys.executable, "-c", "import signal, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "time.sleep(3600)"], pass_fds=[fd])
print("started", flush=True)
time.sleep(3600)
"""


def test_end_kills_the_whole_group_even_what_ignores_sigterm():
    read_end, write_end = os.pipe()
    with Processes(grace=0.2) as started:  # ends them should the test fail before end()
        proc = started.start([sys.executable, "-c", STUBBORN, str(write_end)],
                             pass_fds=[write_end], stdout=subprocess.PIPE, text=True)
        os.close(write_end)
        assert proc.stdout.readline() == "started\n"  # the grandchild has the pipe too
        started.end()
    assert proc.returncode == -signal.SIGKILL
    ready, _, _ = select.select([read_end], [], [], 600)  # a hang guard
    assert ready and os.read(read_end, 1) == b""  # every holder of the pipe is gone
    os.close(read_end)
