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
    with np.load(uninterrupted / "initial.npz") as initial, \
            np.load(uninterrupted / "final.npz") as a, np.load(interrupted / "final.npz") as b:
        assert len(initial.files) == len(a.files) == len(b.files) > 10
        # Training did change the weights (the comparison is not vacuous):
        # all but a few (the attention's key biases, which softmax ignores).
        changed = [k for k in a.files if np.abs(a[k] - initial[k]).max() > 1e-4]
        assert len(changed) > 0.8 * len(a.files), f"only {changed} changed"
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)


def test_a_directory_of_another_run_is_refused(tmp_path):
    RunDirectory(tmp_path / "run", {"task": "squad", "steps": 10})
    RunDirectory(tmp_path / "run", {"task": "squad", "steps": 10, "verbose": 0})
    with pytest.raises(ValueError, match="another run.*task: 'squad' there, 'mbpp' now"):
        RunDirectory(tmp_path / "run", {"task": "mbpp", "steps": 10})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a keras_textdiff run"):
        RunDirectory(tmp_path / "other", {"task": "squad"})


def test_a_resume_between_checkpoints_stops_at_exactly_the_steps(tmp_path):
    """A run resumed at a step that is not a multiple of `checkpoint_every`
    (a shorter run's checkpoint copied in) trains exactly the missing steps:
    the same weights as one uninterrupted run."""
    import keras
    import tensorflow as tf

    from keras_textdiff.recipes import train

    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        return m

    straight = model()
    train(straight, dataset, 7, RunDirectory(tmp_path / "straight", {"run": 1}), 7, verbose=0)

    run = RunDirectory(tmp_path / "resumed", {"run": 1})
    train(model(), dataset, 4, run, checkpoint_every=2, verbose=0)
    resumed = model()
    result = train(resumed, dataset, 7, run, checkpoint_every=3, verbose=0)
    assert result["resumed_from"] == 4
    assert [step for step, _ in run.checkpoints()] == [4, 7]
    assert int(resumed.optimizer.iterations) == 7
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    # Not vacuous: a model trained 4 steps differs.
    four = model()
    train(four, dataset, 4, RunDirectory(tmp_path / "four", {"run": 1}), 4, verbose=0)
    assert not np.allclose(four.weights[0].numpy(), straight.weights[0].numpy())


def test_training_seconds_are_summed_over_the_processes_of_a_run(tmp_path):
    """`train` reports the run's training time, not only the last resume's:
    the sum of each call's share, timed here around the calls, with a
    known sleep per step as the floor. A run begun from a checkpoint copied
    in counts from that checkpoint's step."""
    import shutil

    import keras
    import tensorflow as tf

    from keras_textdiff.recipes import train

    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(4).repeat()
    slow = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.1))

    def timed(run, steps, every):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        began = time.time()
        result = train(model, dataset, steps, run, every, callbacks=[slow], verbose=0)
        return result, time.time() - began

    run = RunDirectory(tmp_path / "run", {"run": 1})
    first, first_wall = timed(run, 4, 2)
    assert 0.4 <= first["seconds"] <= first_wall and first["seconds_from_step"] == 0
    copied = RunDirectory(tmp_path / "copied", {"run": 1})
    shutil.copy(run.checkpoints()[-1][1], copied.path + "/checkpoints/")

    second, second_wall = timed(run, 7, 3)
    assert second["resumed_from"] == 4 and second["seconds_from_step"] == 0
    assert first["seconds"] + 0.3 <= second["seconds"] <= first["seconds"] + second_wall
    again, _ = timed(run, 7, 3)  # Finished: the same time, nothing trained.
    assert again["seconds"] == second["seconds"]

    third, third_wall = timed(copied, 7, 3)
    assert third["seconds_from_step"] == 4 and 0.3 <= third["seconds"] <= third_wall
