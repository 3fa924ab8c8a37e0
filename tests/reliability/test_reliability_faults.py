"""Faults during a command: a full disk, Ctrl-C, a killed save, a rerun of a
finished run. Each ends in one line and exit code 2, or (a rerun) in the
result kept; nothing half-written stays, and the same command then resumes.
"""

import errno
import json
import os
import subprocess
import sys

import pytest

from keras_textdiff import cli
from keras_textdiff import presets
from keras_textdiff import recipes
from keras_textdiff.cli import main
from reliability_setup import workspace  # noqa: F401 (a fixture)


def finetune_argv(workspace, out, *flags):
    return ["finetune", "--preset", workspace["diffusion"], "--task", "translation",
            "--data", workspace["translation"], "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--checkpoint-every", "1", *flags]


def error_line(capsys, command):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"textdiff {command}: error: "), lines
    return lines[0]


def dead_pid():
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_rerunning_a_finished_finetune_keeps_its_metrics(workspace, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(finetune_argv(workspace, run)) == 0
    metrics = (run / "metrics.json").read_text()
    assert {"loss", "steps", "num_examples"} <= set(json.loads(metrics))
    assert main(finetune_argv(workspace, run)) == 0
    assert (run / "metrics.json").read_text() == metrics
    out = capsys.readouterr().out
    loss = json.loads(metrics)["loss"]
    assert "resumed from step 2" in out and f"final loss {loss:.3f}" in out


def test_the_next_save_cleans_up_a_killed_save(workspace, tmp_path):
    run = tmp_path / "run"
    assert main(finetune_argv(workspace, run)) == 0
    dead, alive = dead_pid(), os.getppid()
    stray = [run / f".preset.{dead}-abcdefgh.tmp", run / ".preset.k2j3h4l5.tmp",
             run / f".preset.{dead}-zyxwvuts.old"]
    running = run / f".preset.{alive}-abcdefgh.tmp"  # A save under way elsewhere.
    for path in stray + [running]:
        path.mkdir()
        (path / "model.weights.h5").write_bytes(b"half")
    assert main(finetune_argv(workspace, run)) == 0  # Finished: saves the preset again.
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [running.name]
    assert recipes.load_model(str(run / "preset")) is not None


def test_a_kill_between_the_renames_puts_the_old_preset_back(tmp_path):
    old = tmp_path / f".preset.{dead_pid()}-abcdefgh.old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    half = tmp_path / f".preset.{dead_pid()}-abcdefgh.tmp"
    half.mkdir()
    presets.remove_stale_temporaries(tmp_path / "preset")
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    assert (tmp_path / "preset" / "config.json").read_text() == "{}"


def test_a_full_disk_during_training_fails_in_one_line_then_resumes(
    workspace, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"

    def full_disk(path, **arrays):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(recipes.np, "savez", full_disk)
        assert main(finetune_argv(workspace, run)) == 2
    line = error_line(capsys, "finetune")
    assert "No space left on device" in line and "resumes from its last checkpoint" in line
    assert os.listdir(run / "checkpoints") == []  # No half-written checkpoint.
    assert main(finetune_argv(workspace, run)) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2


def test_a_full_disk_writing_the_scores_leaves_no_file(workspace, tmp_path, capsys, monkeypatch):
    scores = tmp_path / "scores.json"

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(scores) + ".tmp")

    monkeypatch.setattr(recipes.json, "dump", full_disk)
    argv = ["evaluate", "--preset", workspace["diffusion"], "--task", "translation",
            "--data", workspace["translation"], "--limit", "1", "--out", str(scores)]
    assert main(argv) == 2
    line = error_line(capsys, "evaluate")
    assert "No space left on device" in line and "scores.json" in line
    assert os.listdir(tmp_path) == []


def test_ctrl_c_is_one_line(workspace, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "train", interrupted)
    assert main(finetune_argv(workspace, tmp_path / "run")) == 2
    assert "interrupted. Run the same command again" in error_line(capsys, "finetune")


def test_debug_shows_the_traceback(workspace, tmp_path):
    argv = finetune_argv(workspace, tmp_path / "run")
    argv[argv.index("--preset") + 1] = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="No preset directory"):
        main(argv + ["--debug"])
    with pytest.raises(FileNotFoundError, match="No preset directory"):
        main(["--debug"] + argv)
    assert os.listdir(tmp_path) == []


def test_a_run_that_failed_on_bad_input_does_not_block_the_corrected_one(
    workspace, tmp_path, capsys
):
    run = tmp_path / "run"
    # Fails once the model is loaded: the preset's position table is 16.
    assert main(finetune_argv(workspace, run, "--sequence-length", "40")) == 2
    assert "max_sequence_length` = 16" in error_line(capsys, "finetune")
    assert not run.exists()
    assert main(finetune_argv(workspace, run, "--sequence-length", "16")) == 0


# Operating-system faults: (errno, file name) -> what the line must say.
OS_FAULTS = [
    ("no-space", errno.ENOSPC, "/data/run/checkpoints/step-1.npz", ["No space left", "step-1.npz",
                                                                    "Free some space"]),
    ("quota", errno.EDQUOT, None, ["quota"]),
    ("permission", errno.EACCES, "/data/squad.json", ["Permission denied", "squad.json", "permissions"]),
    ("read-only", errno.EROFS, "/mnt/ro/run", ["Read-only file system", "/mnt/ro/run", "writable"]),
    ("missing", errno.ENOENT, "/data/gone.json", ["No such file", "gone.json", "Check the path"]),
    ("is-a-directory", errno.EISDIR, "/data", ["Is a directory", "Pass a file"]),
    ("not-a-directory", errno.ENOTDIR, "/data/file.txt/x", ["Not a directory", "file.txt/x"]),
    ("io-error", errno.EIO, "/data/model.weights.h5", ["Input/output error"]),
    ("h5py-style", None, None, ["Unable to synchronously open file"]),
]


@pytest.mark.parametrize(
    "number, name, expected", [f[1:] for f in OS_FAULTS], ids=[f[0] for f in OS_FAULTS]
)
def test_an_operating_system_fault_is_one_line(number, name, expected, workspace, capsys, monkeypatch):
    def fault(args):
        if number is None:
            raise OSError("Unable to synchronously open file (truncated file)")
        raise OSError(number, os.strerror(number), name)

    monkeypatch.setattr(cli, "_generate", fault)
    assert main(["generate", "--preset", workspace["diffusion"], "cat"]) == 2
    line = error_line(capsys, "generate")
    for text in expected:
        assert text in line, line

