"""Data and model parallel with keras.distribution, on 8 simulated CPU devices.

The sharded runs happen in one fresh process (`distribution_check.py`, with
`XLA_FLAGS=--xla_force_host_platform_device_count=8`); what they saved is
reloaded here, on this process's one device.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest

from keras_textdiff import distribution as distribution_lib
from keras_textdiff import recipes
from keras_textdiff.cli import build_parser
from keras_textdiff.cli import main
from tiny_models import ARCHITECTURES

HERE = pathlib.Path(__file__).parent


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("sharded")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(HERE))
    result = subprocess.run(
        [sys.executable, str(HERE / "distribution_check.py"), str(out_dir)],
        capture_output=True, text=True, env=env, cwd=HERE, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), out_dir


RUNS = ["gpt2 data", "gpt2 2x4", "llama 2x4"]


@pytest.mark.parametrize("run", RUNS)
def test_loss_after_one_step_equals_the_single_device_loss(sharded, run):
    results, _ = sharded
    assert results["devices"] == 8
    found = results[run]
    # Loss at the start, then after one step; then the weights after two.
    np.testing.assert_allclose(found["losses"], found["single_losses"], rtol=0, atol=1e-5)
    assert found["single_losses"][1] < found["single_losses"][0]
    assert found["weight_difference"] < 1e-5
    if run.endswith("2x4"):  # The weights really are split.
        specs = found["specs"]
        query = specs["transformer_layer_0/self_attention/query/kernel"]
        assert "model" in query, specs
    else:
        assert all("model" not in s and "batch" not in s for s in found["specs"].values())


@pytest.mark.parametrize("run", RUNS)
def test_sharded_generate_equals_unsharded(sharded, run):
    found = sharded[0][run]
    assert found["generated_equal"] and found["generated_changed"]


def test_checkpoints_saved_sharded_reload_on_one_device(sharded):
    results, out_dir = sharded
    run_dir = out_dir / "pretrain"
    config = json.loads((run_dir / "run_config.json").read_text())
    assert config["distribution"] == {
        "type": "ModelParallel", "mesh": {"batch": 2, "model": 4}, "devices": 8,
    }
    assert np.isfinite(results["pretrain"]["loss"])

    model = recipes.load_model(results["pretrain"]["preset"])  # One device.
    values = [keras.ops.convert_to_numpy(v) for v in model.variables]
    # Presets hold the weights (not the random-number states).
    weights = [i for i, v in enumerate(model.variables) if "seed_generator" not in v.path]
    assert len(weights) > 20
    with np.load(run_dir / "checkpoints" / "step-00000002.npz") as saved:
        for i in weights:
            np.testing.assert_array_equal(saved[f"model_{i}"], values[i])
        # The run checkpoint restores into the one-device model (the same
        # run resumes there, though it was saved on a 2x4 mesh).
        recipes._compile(model, config["learning_rate"])
        run = recipes.RunDirectory(run_dir, {**config, "distribution": None},
                                   ignored_keys=recipes.IGNORED_KEYS)
        assert run.restore_latest(model) == 2
        for i, variable in enumerate(model.variables):
            value = keras.ops.convert_to_numpy(variable)
            np.testing.assert_array_equal(value, saved[f"model_{i}"])
        for i, variable in enumerate(model.optimizer.variables):
            value = keras.ops.convert_to_numpy(variable)
            np.testing.assert_array_equal(value, saved[f"optimizer_{i}"])
    assert all(len(v.value.sharding.device_set) == 1 for v in model.variables)


def test_bad_meshes_and_batch_sizes_say_what_divides(sharded):
    errors = sharded[0]["errors"]
    assert "A 3x3 mesh needs 9 devices, which does not divide the 8" in errors["mesh"]
    assert "1x8, 2x4, 4x2, 8x1" in errors["mesh"]
    assert "batch size 6 is not divisible by the 4 devices" in errors["batch"]
    assert "multiple of 4" in errors["batch"]
    assert "self_attention/query/kernel" in errors["heads"]
    assert "size 4 (num_heads)" in errors["heads"] and "one of 1, 2, 4" in errors["heads"]
    assert "BATCHxMODEL" in errors["spec"] and "'2by4'" in errors["spec"]


def test_indivisible_batches_and_single_key_value_heads_are_replicated(sharded):
    results = sharded[0]
    assert results["data_layouts"] == [["batch", None], [None, None]]
    specs = results["gemma_specs"]
    # keras-hub's Gemma map: heads over "model", hidden over "batch".
    assert specs["decoder_block_0/attention/query/kernel"] == "P('model', 'batch', None)"
    assert specs["decoder_block_0/attention/key/kernel"] == "P(None, 'batch', None)"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_weight_is_split_or_replicated_on_purpose(name):
    class_name, kwargs = ARCHITECTURES[name]
    backbone_cls = getattr(keras_hub.models, class_name).backbone_cls
    backbone = backbone_cls(vocabulary_size=64, **kwargs)
    layouts = distribution_lib.variable_layouts(backbone)
    gaps = [path for path, axes in layouts.items() if axes is None]
    assert not gaps, f"{class_name}: no layout rule for {gaps}"
    split = {p: a for p, a in layouts.items() if isinstance(a, tuple)}
    shapes = {v.path: tuple(v.shape) for v in backbone.variables}
    assert all(len(a) == len(shapes[p]) for p, a in split.items())
    # The embedding and every layer's attention and feed-forward are split.
    assert any("token_embedding/embeddings" in p for p in split)
    assert len(split) >= 1 + 4 * kwargs["num_layers"], sorted(split)
    assert all(a != (None,) * len(a) for a in split.values())


def test_layout_sources():
    source = distribution_lib.layout_source
    assert source("GPT2Backbone") == "keras_textdiff"
    assert source(keras_hub.models.GemmaBackbone) == "keras-hub GemmaBackbone.get_layout_map"
    assert source("Gemma3Backbone") == "keras-hub GemmaBackbone.get_layout_map"
    assert source("MistralCausalLM").startswith("keras-hub LlamaBackbone.get_layout_map")
    with pytest.raises(ValueError, match="No model-parallel layout map for BertBackbone"):
        source("BertBackbone")


def test_other_backends_are_refused(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    for spec in ("data", "2x4"):
        with pytest.raises(ValueError, match="JAX backend only.*'torch'"):
            distribution_lib.get_distribution(spec, "GPT2Backbone")


def test_command_line_flags(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["generate", "--preset", "p", "hi", "--model-parallel", "2x4"])
    assert args.model_parallel == "2x4" and not args.data_parallel
    for command in (["pretrain", "--out", "o", "--steps", "1"],
                    ["adapt", "--preset", "p", "--out", "o", "--steps", "1"],
                    ["finetune", "--preset", "p", "--task", "mbpp", "--out", "o", "--steps", "1"],
                    ["evaluate", "--preset", "p", "--task", "mbpp"]):
        assert parser.parse_args([*command, "--data-parallel"]).data_parallel
    with pytest.raises(SystemExit):
        parser.parse_args(["pretrain", "--out", "o", "--steps", "1",
                           "--data-parallel", "--model-parallel", "1x1"])
    capsys.readouterr()
    # One device here: the mesh is refused before anything is written.
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--steps", "1", "--model-parallel", "2x4"]) == 2
    assert "A 2x4 mesh needs 8 devices, which does not divide the 1" in capsys.readouterr().err
    assert not out.exists()
