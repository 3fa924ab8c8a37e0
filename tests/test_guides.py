"""Every guide runs end to end in its fast mode (a tiny model, a few steps)."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

GUIDES = sorted((pathlib.Path(__file__).parents[1] / "guides").glob("*.py"))


# Out of the default run, for CI time (1-3 minutes each on 2 cores): guide
# 5's promise (one device, data and model parallel train alike) is
# test_distribution.py's, guide 2's command-line chain test_cli_chain.py's.
LARGE = {"distributed_training", "ar2diff"}


@pytest.mark.parametrize("guide", [
    pytest.param(g, id=g.stem, marks=pytest.mark.large if g.stem in LARGE else ())
    for g in GUIDES
])
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
    if guide.stem == "fast_decoding":
        # `num_steps` is a loop bound: k steps make k + 1 model calls (one fills
        # the prompt cache), and changing it compiles nothing.
        for k in (2, 4, 8, 16, 32):
            assert f"num_steps={k}: {k + 1} model calls" in result.stdout, result.stdout
        assert re.search(r"XLA compilations: [1-9]\d* for the first call, 0 for the five after it",
                         result.stdout), result.stdout
        results = json.loads((tmp_path / "results.json").read_text())
        rows = {r["decoder"]: r for r in results["results"]}
        assert results["questions"] == 6 and len(rows) == 8, rows.keys()
        assert rows["confidence, 10 steps"]["model_calls"] == 11  # 10 steps + the cache's full pass
        assert rows["confidence, 10 steps, no cache"]["model_calls"] == 10
        assert rows["confidence, 32 steps"]["model_calls"] == 33
        assert rows["paper: 10 steps, T 0.2, best of 2"]["model_calls"] == 11
        assert 2 <= rows["threshold 0.9"]["model_calls"] <= 33  # At most num_steps + 1.
        assert 2 <= rows["entropy bound 1 nat"]["model_calls"] <= 33
        assert rows["threshold 0.9, blocks of 8"]["model_calls"] <= 1 + 4 * 8 + 3  # + 3 refreshes.
        for r in rows.values():
            assert len(r["answers"]) == 6 and r["seconds"] > 0, r
        assert "baseline: first three context words" in result.stdout
        assert (tmp_path / "f1_against_cost.png").exists()
        assert (tmp_path / "trajectory.png").exists()
        # With block attention the prompt's cache is exact: the same answers.
        assert rows["confidence, 10 steps"]["answers"] == rows["confidence, 10 steps, no cache"]["answers"]
    if guide.stem == "text_diffusion_in_ten_minutes":
        out = result.stdout
        # The trajectory is the decoding loop's own: its last state is generate()'s output.
        generated = re.search(r"^generate\(\): +(.*)$", out, re.M).group(1)
        assert re.search(r"^trajectory\[-1\]: +(.*)$", out, re.M).group(1) == generated, out
        states = re.findall(r"^ +(start|step \d+): ", out, re.M)
        assert states == ["start"] + [f"step {i}" for i in range(1, 11)], out
        # The metric is printed beside its baselines, on all 200 held-out numbers.
        score = float(re.search(r"exact match on 200 held-out numbers: ([\d.]+)%", out).group(1))
        assert "baseline, copy the prompt: 0.0%" in out
        assert "baseline, closest training example: 0.0%" in out
        assert len(re.findall(r"^ *\d+ steps: exact match [\d.]+%$", out, re.M)) == 4
        # The preset reloads and writes the same answers with the same seed.
        assert f"exact match {score:.1f}%\nsame answers as before saving: True" in out
        assert (tmp_path / "numbers_preset" / "task.json").exists()
    if guide.stem == "finetune_qa_and_code":
        scores = json.loads((tmp_path / "scores.json").read_text())
        squad, mbpp = scores["squad"], scores["mbpp"]
        model_row = squad.pop("AR2Diff_0, 2 LoRA steps, threshold decoding")
        # The model and the trivial baselines, scored by one evaluate() on the same questions.
        assert sorted(squad) == ["empty answer", "first three words of the context"], squad.keys()
        n = model_row["num_examples"]
        assert n >= 1 and all(r["num_examples"] == n for r in squad.values())
        assert len(model_row["predictions"]) == n
        assert squad["empty answer"]["f1"] == 0.0 and squad["empty answer"]["exact_match"] == 0.0
        # Each tiny test article asks for its context's first word: the baseline scores.
        assert squad["first three words of the context"]["f1"] > 0.0
        # pass@k through the sandbox: the reference programs pass, the empty ones do not.
        assert mbpp["reference program"]["pass@1"] == mbpp["reference program"]["pass@4"] == 100.0
        assert mbpp["empty program"]["pass@1"] == mbpp["empty program"]["pass@4"] == 0.0
        code = mbpp["AR2Diff_0, 2 LoRA steps"]
        assert code["num_examples"] >= 1 and code["pass@1"] <= code["pass@4"]
        assert all(len(programs) == 4 for programs in code["predictions"])  # 4 samples a task.
        # The SQuAD model guides/fast_decoding.py loads: saved with its layout and
        # threshold decoder, and the preset answers as the model did.
        preset = tmp_path / "squad_model"
        task = json.loads((preset / "task.json").read_text())["config"]
        assert task["attention"] == "block" and task["shifted_prediction"] is True
        assert task["sampler"]["config"]["strategy"] == "threshold"
        layout = json.loads((preset / "preprocessor.json").read_text())["config"]
        assert layout["separator"] == "\n" and layout["target_length"] == 16
        assert "reloaded preset gives the same answers: True" in result.stdout, result.stdout
        # Fast mode reads only what it wrote itself.
        assert (tmp_path / "tiny_data" / "squad" / "dev-v1.1.json.gz").exists()
