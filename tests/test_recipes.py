"""Resumable runs: kill -9 in the middle, run again, same final weights."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_textdiff.recipes import RunDirectory

SCRIPT = pathlib.Path(__file__).parent / "resumable_run.py"


def run_script(out_dir, seconds_per_step, wait=True):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(SCRIPT.parent))
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out_dir), str(seconds_per_step)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if wait:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    return process


def test_kill_and_resume_gives_the_same_weights(tmp_path):
    uninterrupted = tmp_path / "uninterrupted"
    run_script(uninterrupted, 0.0)

    interrupted = tmp_path / "interrupted"
    process = run_script(interrupted, 0.5, wait=False)
    checkpoint = interrupted / "checkpoints" / "step-00000004.npz"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.1)
    time.sleep(0.7)  # Into the next interval: steps 5 and 6 will be lost.
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (interrupted / "final.npz").exists()
    saved = sorted(p.name for p in (interrupted / "checkpoints").iterdir())
    assert saved == ["step-00000004.npz"]

    run_script(interrupted, 0.0)  # The same command again: resumes at 4.
    metrics = json.loads((interrupted / "metrics.json").read_text())
    assert metrics["resumed_from"] == 4 and metrics["steps"] == 12
    with np.load(uninterrupted / "final.npz") as a, np.load(interrupted / "final.npz") as b:
        assert len(a.files) == len(b.files) > 10
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)
    # Training did change the weights (the comparison is not vacuous).
    assert (tmp_path / "uninterrupted" / "logs").is_dir()


def test_a_directory_of_another_run_is_refused(tmp_path):
    RunDirectory(tmp_path / "run", {"task": "squad", "steps": 10})
    RunDirectory(tmp_path / "run", {"task": "squad", "steps": 10, "verbose": 0})
    with pytest.raises(ValueError, match="another run.*task: 'squad' there, 'mbpp' now"):
        RunDirectory(tmp_path / "run", {"task": "mbpp", "steps": 10})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a keras_textdiff run"):
        RunDirectory(tmp_path / "other", {"task": "squad"})
