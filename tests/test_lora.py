"""LoRA (`keras_textdiff.lora`): only the low-rank factors train, and a merged
preset loads without LoRA and gives the LoRA model's logits.

Tiny random GPT-2 and Llama models are built in the test; the LoRA layers
are keras-hub's own (`Backbone.enable_lora`).
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd
from keras_textdiff.ar2diff import adapt
from keras_textdiff.lora import enable_lora
from keras_textdiff.lora import lora_layers
from keras_textdiff.lora import merge_lora
from keras_textdiff.recipes import adapt_run
from keras_textdiff.recipes import finetune
from tiny_models import TEXT
from tiny_models import tiny_causal_lm

LENGTH = 12
BAD_RANKS = [0, -1, 2.5, True, "8"]


def is_lora_path(path):
    return "lora_kernel" in path


def is_lora(variable):
    return is_lora_path(variable.path)


def numpy_weights(model):
    """Copies of `model`'s weights, by path."""
    return {w.path: np.array(ops.convert_to_numpy(w)) for w in model.weights}


def logits(model, ids):
    padding_mask = np.ones_like(ids, dtype=bool)
    return ops.convert_to_numpy(model.logits(ids, padding_mask))


def converted(name, how):
    """A tiny converted model with rank-2 LoRA, enabled `how`, trained 2 steps."""
    keras.utils.set_random_seed(0)
    ar = tiny_causal_lm(name, sequence_length=LENGTH)
    if how == "converter":
        model = ktd.AR2DiffConverter(lora_rank=2).convert(ar)
        adapt_kwargs = {}
    else:
        model = ktd.AR2DiffConverter().convert(ar)
        adapt_kwargs = {"lora_rank": 2}
    return model, adapt_kwargs


@pytest.mark.parametrize(
    "name, how", [("gpt2", "converter"), ("llama", "adapt")]
)
def test_only_lora_weights_train_and_merged_preset_matches(name, how, tmp_path):
    model, adapt_kwargs = converted(name, how)
    ids = np.random.default_rng(0).integers(
        0, model.backbone.vocabulary_size, (2, LENGTH)
    ).astype("int32")
    base = logits(model, ids)
    before = numpy_weights(model)

    adapt(model, TEXT, steps=2, batch_size=4, verbose=0, **adapt_kwargs)

    trainable = model.trainable_weights
    assert trainable and all(is_lora(v) for v in trainable)
    assert len(trainable) == 2 * len(lora_layers(model.backbone)) > 0
    after = numpy_weights(model)
    assert len(after) == len(model.weights)  # Paths are unique.
    for path, new in after.items():
        if path in before:  # Enabled by the converter, before training.
            assert np.array_equal(before[path], new) != is_lora_path(path), path
        else:  # Enabled by `adapt`: the factor B starts at zero.
            assert is_lora_path(path) and np.abs(new).max() > 0, path
    tuned = logits(model, ids)
    assert np.abs(tuned - base).max() > 1e-6  # LoRA changed the model.

    # Merged: the same logits without LoRA, in memory and from the preset.
    assert merge_lora(model.backbone) == 4  # query and value, 2 layers
    assert not lora_layers(model.backbone)
    np.testing.assert_allclose(logits(model, ids), tuned, atol=1e-5, rtol=1e-5)
    model.save_to_preset(str(tmp_path / "preset"))
    for config in ("config.json", "task.json"):
        assert "lora" not in (tmp_path / "preset" / config).read_text()
    reloaded = ktd.DiffusionDecoder.from_preset(str(tmp_path / "preset"))
    assert not lora_layers(reloaded.backbone)
    assert not [w.path for w in reloaded.weights if is_lora(w)]
    assert all(w.trainable for w in reloaded.backbone.weights)
    np.testing.assert_allclose(logits(reloaded, ids), tuned, atol=1e-5, rtol=1e-5)


def test_merge_leaves_a_trainable_plain_model():
    backbone = tiny_causal_lm("gpt2", sequence_length=LENGTH).backbone
    assert merge_lora(backbone) == 0  # Nothing to merge: left as it is.
    enable_lora(backbone, 2)
    merge_lora(backbone)
    trainable = backbone.trainable_weights
    assert trainable and not [w.path for w in trainable if is_lora(w)]
    assert len(trainable) == len([w for w in backbone.weights if not is_lora(w)])


@pytest.mark.parametrize("rank", BAD_RANKS, ids=repr)
def test_bad_ranks_are_refused(rank, tmp_path):
    with pytest.raises(ValueError, match="`lora_rank` must be an int >= 1"):
        ktd.AR2DiffConverter(lora_rank=rank)
    backbone = tiny_causal_lm("gpt2", sequence_length=LENGTH).backbone
    with pytest.raises(ValueError, match="`lora_rank`"):
        enable_lora(backbone, rank)
    assert not lora_layers(backbone)
    # The recipes refuse it before any work.
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="`lora_rank`"):
        finetune("no_such_preset", "squad", None, str(out), 1, lora_rank=rank)
    with pytest.raises(ValueError, match="`lora_rank`"):
        adapt_run("no_such_preset", str(out), 1, corpus="none", lora_rank=rank)
    assert not out.exists()


def test_lora_needs_a_keras_hub_backbone():
    with pytest.raises(ValueError, match="keras-hub backbone"):
        enable_lora(keras.Sequential([keras.layers.Dense(2)]), 2)


def test_adapt_run_takes_lora_rank_once(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        adapt_run(
            "no_such_preset", str(tmp_path / "run"), 1, lora_rank=2,
            converter=ktd.AR2DiffConverter(lora_rank=4),
        )
    assert not (tmp_path / "run").exists()


def test_converter_records_lora_rank_in_run_config(tmp_path):
    # `adapt_run` writes the converter's settings, LoRA rank included.
    ar = tmp_path / "ar"
    tiny_causal_lm("gpt2", sequence_length=LENGTH).save_to_preset(str(ar))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT))
    out = tmp_path / "run"
    adapt_run(str(ar), str(out), 1, corpus=str(corpus), batch_size=2,
              converter=ktd.AR2DiffConverter(lora_rank=2), verbose=0)
    config = json.loads((out / "run_config.json").read_text())
    assert config["converter"]["lora_rank"] == 2 and config["lora_rank"] is None
    assert config["dtype"] == "float32"
    reloaded = ktd.DiffusionDecoder.from_preset(str(out / "preset"))
    assert not lora_layers(reloaded.backbone)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_lora_on_all_layers_covers_every_projection(name):
    backbone = tiny_causal_lm(name, sequence_length=LENGTH).backbone
    projections = [
        layer for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))
    ]
    enable_lora(backbone, 2, layers="all")
    # Attention and feed-forward projections, not only query and value.
    assert set(map(id, lora_layers(backbone))) == set(map(id, projections))
    assert len(projections) > 2 * backbone.num_layers
    assert backbone.trainable_weights
    assert all(is_lora(w) for w in backbone.trainable_weights)


@pytest.mark.parametrize("layers", ["ffn", [1, 2]], ids=repr)
def test_bad_lora_layers_are_refused(layers):
    backbone = tiny_causal_lm("gpt2", sequence_length=LENGTH).backbone
    with pytest.raises(ValueError, match="`layers`"):
        enable_lora(backbone, 2, layers=layers)
    assert not lora_layers(backbone)
