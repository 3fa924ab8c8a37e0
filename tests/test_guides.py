"""Every guide runs end to end in its fast mode (a tiny model, a few steps)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

GUIDES = sorted((pathlib.Path(__file__).parents[1] / "guides").glob("*.py"))


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_guide_runs_in_fast_mode(guide, tmp_path):
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        KERAS_TEXTDIFF_GUIDE_FAST="1",
        KERAS_TEXTDIFF_GUIDE_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, str(guide)], env=env, capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if guide.stem == "ar2diff":
        # The converted model, attention set back to causal, is the AR model.
        assert "max |difference|: 0.0\n" in result.stdout
        assert (tmp_path / "smollm2_ar2diff" / "task.json").exists()
        # LoRA trains a fraction of the weights; the saved preset decodes
        # from the command line.
        trained, total = re.search(r"training ([\d,]+) of ([\d,]+) weights", result.stdout).groups()
        assert 0 < int(trained.replace(",", "")) < int(total.replace(",", "")) / 4
        assert "def add(a, b):\n" in result.stdout.split("AR (greedy, KV cache)")[-1]
    if guide.stem == "distributed_training":
        # One device, data parallel and model parallel train alike.
        losses = [
            float(line.split(":")[-1])
            for line in result.stdout.splitlines()
            if "loss after" in line
        ]
        assert len(losses) == 3 and max(losses) - min(losses) < 1e-3, result.stdout
        assert "P(None, 'model', None)" in result.stdout
        assert (tmp_path / "model_parallel_preset" / "task.json").exists()
