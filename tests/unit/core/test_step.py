"""A workflow step: a line-buffered log that survives kill -9, one quiet line on Ctrl-C or a user error."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from privfair.core.errors import ConfigError
from privfair.core.step import INTERRUPTED, run_step


def step(tmp_path, outputs=()):
    return SimpleNamespace(log=[str(tmp_path / "step.log")], output=[str(tmp_path / o) for o in outputs])


def test_ctrl_c_ends_the_step_with_one_line_and_no_traceback(tmp_path, capfd):
    def main(_):
        print("working")
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as ended:
        run_step(step(tmp_path), main)
    assert ended.value.code == 130
    console = capfd.readouterr()
    assert console.err == f"privfair: {INTERRUPTED}\n" and console.out == ""
    assert (tmp_path / "step.log").read_text() == f"working\nprivfair: {INTERRUPTED}\n"


def test_a_user_error_is_one_line(tmp_path, capfd):
    def main(_):
        raise ConfigError("training.epochs: must be positive")

    with pytest.raises(SystemExit) as ended:
        run_step(step(tmp_path), main)
    assert ended.value.code == 1
    assert capfd.readouterr().err == "privfair: training.epochs: must be positive\n"


def test_stale_partial_outputs_of_a_killed_attempt_are_removed_first(tmp_path):
    stale, other = tmp_path / ".partial-model.pt", tmp_path / ".partial-someone-else.pt"
    stale.write_text("half")
    other.write_text("not ours")
    seen = []
    run_step(step(tmp_path, ["model.pt"]), lambda _: seen.append(stale.exists()))
    assert seen == [False] and other.exists()
    assert f"removed {stale}" in (tmp_path / "step.log").read_text()


KILLED = """
import sys, time
from types import SimpleNamespace
from privfair.core.step import run_step

def main(snakemake):
    for i in range(3):
        print(f"epoch {i} done")
    open(sys.argv[2], "w").close()  # tell the test that the lines are printed
    time.sleep(60)

run_step(SimpleNamespace(log=[sys.argv[1]], output=[]), main)
"""


def test_the_log_keeps_every_line_of_a_step_killed_outright(tmp_path):
    script, log, ready = tmp_path / "step.py", tmp_path / "step.log", tmp_path / "ready"
    script.write_text(KILLED)
    process = subprocess.Popen([sys.executable, str(script), str(log), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert log.read_text() == "epoch 0 done\nepoch 1 done\nepoch 2 done\n"
