"""The Linux DUT leaves nothing behind: SIGTERM cleans up, the leftovers of killed runs are
removed at the next start, and a namespace it did not make is never taken over or deleted."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from wirestamp.sim.linux import LinuxDut, _namespaces, remove_leftovers, unavailable

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=str(unavailable()))


def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_an_existing_namespace_is_refused_and_kept():
    name = f"wst-existing-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with pytest.raises(RuntimeError, match="exists already"):
            LinuxDut(lambda frame: None, netns=name)
        assert name in _namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_leftovers_of_killed_runs_are_removed():
    pid = dead_pid()
    subprocess.run(["ip", "netns", "add", f"wirestamp-{pid}"], check=True)
    folder = Path(tempfile.gettempdir()) / f"wirestamp-linux-{pid}-abc"
    folder.mkdir()
    mine = f"wirestamp-{os.getpid()}"          # a live process's: kept
    subprocess.run(["ip", "netns", "add", mine], check=True)
    try:
        removed = remove_leftovers()
        assert f"wirestamp-{pid}" in removed and not folder.exists()
        assert f"wirestamp-{pid}" not in _namespaces() and mine in _namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", mine])


def test_sigterm_removes_the_namespace():
    code = ("import time, wirestamp\n"
            "with wirestamp.open('sim://?dut=linux') as dev:\n"
            "    print('up', flush=True)\n"
            "    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "up"
    assert f"wirestamp-{process.pid}" in _namespaces()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    time.sleep(0.2)
    assert f"wirestamp-{process.pid}" not in _namespaces()
    assert not list(Path(tempfile.gettempdir()).glob(f"wirestamp-linux-{process.pid}-*"))


def test_a_named_namespace_of_a_killed_run_is_removed_with_its_reflector():
    name = f"wst-named-{os.getpid()}"
    code = ("import time, wirestamp\n"
            f"with wirestamp.open('sim://?dut=linux&netns={name}') as dev:\n"
            "    print('up', flush=True)\n"
            "    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "up"
        assert name in _namespaces()
        reflector = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                   text=True).stdout.split()
        assert reflector                            # the reflector runs inside
    finally:
        process.kill()                              # SIGKILL: no cleanup of its own
        process.wait()
    assert name in _namespaces()                    # left behind, as the issue found
    removed = remove_leftovers()
    assert name in removed and name not in _namespaces()
    for pid in reflector:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
