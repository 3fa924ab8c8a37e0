"""AR2Diff conversion, for every supported architecture (tiny random models).

Each architecture is built in the test, saved as a local keras-hub preset and
reloaded before it is converted. The references are the AR model's own
logits (keras-hub's `CausalLM`), not ours.
"""

import json

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd
from keras_textdiff import attention as attention_lib
from tiny_models import ARCHITECTURES
from tiny_models import tiny_causal_lm

LENGTH = 12
PREFIX = 5  # positions [0, PREFIX) are prefix in the prefix-attention checks
# Largest |converted - AR| logit difference per architecture (for the notes).
MAX_DIFFERENCES = {}


def random_batch(vocabulary_size, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocabulary_size, (2, LENGTH)).astype("int32")
    return ids, np.ones_like(ids, dtype=bool)


def ar_logits(causal_lm, ids, padding_mask):
    logits = causal_lm({"token_ids": ids, "padding_mask": padding_mask})
    return ops.convert_to_numpy(ops.cast(logits, "float32"))


def logits(model, ids, padding_mask, target_mask=None, **kwargs):
    return ops.convert_to_numpy(model.logits(ids, padding_mask, target_mask, **kwargs))


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """name -> preset directory, saved once per architecture."""
    root = tmp_path_factory.mktemp("presets")
    cache = {}

    def get(name):
        if name not in cache:
            keras.utils.set_random_seed(0)
            path = root / name
            tiny_causal_lm(name, sequence_length=LENGTH).save_to_preset(str(path))
            cache[name] = str(path)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture(name, presets):
    ar = keras_hub.models.CausalLM.from_preset(presets(name))
    model = ktd.AR2DiffConverter().convert(ar)
    vocabulary_size = ar.backbone.vocabulary_size
    ids, padding_mask = random_batch(vocabulary_size)
    reference = ar_logits(ar, ids, padding_mask)

    # Weights are shared, not copied.
    assert model.backbone is ar.backbone
    assert all(a is b for a, b in zip(model.backbone.weights, ar.backbone.weights))

    # Causal attention gives back the AR model: with the backbone's own mask,
    # and with the causal mask built by keras_textdiff passed through the
    # attention override.
    causal = logits(model, ids, padding_mask, attention_mask=None)
    ours = attention_lib.causal_mask(padding_mask)
    overridden = logits(model, ids, padding_mask, attention_mask=ours)
    difference = max(np.abs(causal - reference).max(), np.abs(overridden - reference).max())
    MAX_DIFFERENCES[name] = float(difference)
    print(f"\n{name}: max |converted causal - AR| logit difference {difference:.2e}")
    assert difference <= 1e-5

    # The AR model itself stays causal.
    changed = ids.copy()
    changed[:, -1] = (changed[:, -1] + 1) % vocabulary_size
    np.testing.assert_allclose(
        ar_logits(ar, changed, padding_mask)[:, :-1], reference[:, :-1], atol=1e-6
    )

    # Bidirectional: the first position sees the last token.
    bidirectional = logits(model, ids, padding_mask)
    assert np.abs(logits(model, changed, padding_mask)[:, 0] - bidirectional[:, 0]).max() > 1e-6

    # Annealing at visibility 0 is causal, at 1 bidirectional.
    np.testing.assert_allclose(
        logits(model, ids, padding_mask, visibility=0.0), reference, atol=1e-5
    )
    np.testing.assert_allclose(
        logits(model, ids, padding_mask, visibility=1.0), bidirectional, atol=1e-5
    )

    # Prefix attention: prefix positions never see the target.
    prefix_model = ktd.AR2DiffConverter(attention="prefix").convert(ar)
    target_mask = np.broadcast_to(np.arange(LENGTH) >= PREFIX, ids.shape)
    target_changed = ids.copy()
    target_changed[:, PREFIX:] = (target_changed[:, PREFIX:] + 1) % vocabulary_size
    before = logits(prefix_model, ids, padding_mask, target_mask)
    after = logits(prefix_model, target_changed, padding_mask, target_mask)
    np.testing.assert_allclose(after[:, :PREFIX], before[:, :PREFIX], atol=1e-6)
    assert np.abs(after[:, PREFIX:] - before[:, PREFIX:]).max() > 1e-6

    # copy=True: equal weights, new variables.
    copied = ktd.AR2DiffConverter(copy=True).convert(ar)
    assert not any(a is b for a, b in zip(copied.backbone.weights, ar.backbone.weights))
    for a, b in zip(copied.backbone.weights, ar.backbone.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


# Compiling a training step and a decoding loop costs ~20 s per architecture:
# two run by default (a GPT-2 and a Llama layout), all of them with `-m large`.
FIT_BY_DEFAULT = ("gpt2", "llama3")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in FIT_BY_DEFAULT else pytest.mark.large)
    for n in sorted(ARCHITECTURES)
])
def test_architecture_fits_and_generates(name, presets):
    ar = keras_hub.models.CausalLM.from_preset(presets(name))
    ids, padding_mask = random_batch(ar.backbone.vocabulary_size)
    reference = ar_logits(ar, ids, padding_mask)
    # One fit step (on a copy, from raw text) and generate.
    copied = ktd.AR2DiffConverter(copy=True).convert(ar)
    copied.compile()
    history = copied.fit(["the cat sat on the mat", "def add(a, b):"], batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # The AR model's own weights did not train.
    np.testing.assert_allclose(ar_logits(ar, ids, padding_mask), reference, atol=1e-6)
    output = copied.generate(["the cat"], max_length=LENGTH)
    assert isinstance(output[0], str) and output[0].startswith("the cat")


@pytest.mark.parametrize("name", ["gpt2", "gpt_neo_x", "llama3"])
def test_shifted_prediction_keeps_ar_logits(name, presets):
    ar = keras_hub.models.CausalLM.from_preset(presets(name))
    ids, padding_mask = random_batch(ar.backbone.vocabulary_size)
    reference = ar_logits(ar, ids, padding_mask)
    model = ktd.AR2DiffConverter(shifted_prediction=True).convert(ar)
    shifted = logits(model, ids, padding_mask, attention_mask=None)
    # Position i now carries the AR model's prediction made at i - 1.
    np.testing.assert_allclose(shifted[:, 1:], reference[:, :-1], atol=1e-5)


@pytest.mark.parametrize("name", ["gpt2", "gpt_neo_x", "gemma"])
def test_mask_token_keeps_ar_logits(name, presets):
    ar = keras_hub.models.CausalLM.from_preset(presets(name))
    vocabulary_size = ar.backbone.vocabulary_size
    ids, padding_mask = random_batch(vocabulary_size)
    reference = ar_logits(ar, ids, padding_mask)
    model = ktd.AR2DiffConverter(add_mask_token=True).convert(ar)
    assert model.backbone.vocabulary_size == vocabulary_size + 1
    assert model.noise.mask_token_id == vocabulary_size
    causal = logits(model, ids, padding_mask, attention_mask=None)
    np.testing.assert_allclose(causal[..., :vocabulary_size], reference, atol=1e-5)
    # The mask token is never predicted.
    assert (causal[..., vocabulary_size] < -1e8).all()
    # Mask tokens are valid inputs, and decoding starts from them.
    masked = np.where(np.arange(LENGTH) >= PREFIX, vocabulary_size, ids).astype("int32")
    assert np.isfinite(logits(model, masked, padding_mask)).all()
    model.compile(sampler=ktd.DiffusionSampler(num_steps=2, num_samples=1))
    trajectory = model.denoising_trajectory("the", max_length=LENGTH)
    start = trajectory["token_ids"][0]
    assert (start[-4:] == vocabulary_size).all()
    assert (trajectory["token_ids"][-1] != vocabulary_size).all()
    # The AR model is untouched (the embedding grew on a copy).
    assert ar.backbone.vocabulary_size == vocabulary_size


def test_annealing_ramps_during_fit(presets, tmp_path):
    ar = keras_hub.models.CausalLM.from_preset(presets("gpt2"))
    model = ktd.AR2DiffConverter(annealing_steps=4, copy=True).convert(ar)
    model.compile()
    assert float(model.annealing.visibility()) == 0.0
    model.fit(["the cat sat on the mat"] * 6, batch_size=2, verbose=0)
    assert float(model.annealing.visibility()) == pytest.approx(0.75)
    # The step counter is saved with the weights, so a resumed run goes on.
    model.save_to_preset(str(tmp_path / "annealed"))
    reloaded = ktd.DiffusionDecoder.from_preset(str(tmp_path / "annealed"))
    assert reloaded.annealing_steps == 4
    assert float(reloaded.annealing.visibility()) == pytest.approx(0.75)


def test_annealed_mask_statistics():
    padding_mask = np.ones((64, 16), bool)
    full = attention_lib.attention_mask("bidirectional", padding_mask)
    mask = ops.convert_to_numpy(
        attention_lib.annealed_mask(full, padding_mask, 0.3, seed=0)
    ).astype(bool)
    causal = np.tril(np.ones((16, 16), bool))
    assert mask[:, causal].all()
    opened = mask[:, ~causal].mean()
    assert abs(opened - 0.3) < 0.02


def test_convert_from_preset_path_and_round_trip(presets, tmp_path):
    model = ktd.AR2DiffConverter(attention="prefix").convert(presets("llama3"))
    assert isinstance(model, ktd.DiffusionDecoder)
    assert model.attention == "prefix"
    assert model.preprocessor.sequence_length == LENGTH
    model.save_to_preset(str(tmp_path / "diffusion"))
    reloaded = ktd.DiffusionDecoder.from_preset(str(tmp_path / "diffusion"))
    ids, padding_mask = random_batch(model.backbone.vocabulary_size)
    target_mask = np.broadcast_to(np.arange(LENGTH) >= PREFIX, ids.shape)
    np.testing.assert_allclose(
        logits(reloaded, ids, padding_mask, target_mask),
        logits(model, ids, padding_mask, target_mask),
        atol=1e-6,
    )


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="attention"):
        ktd.AR2DiffConverter(attention="causal")
    # Encoder-only and seq2seq presets.
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=8, max_sequence_length=8,
    )
    bert.save_to_preset(str(tmp_path / "bert"))
    with pytest.raises(ValueError, match="BertBackbone.*Supported: .*GPT2Backbone"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "bert"))
    with pytest.raises(ValueError, match="decoder-only"):
        ktd.AR2DiffConverter().convert(bert)
    bart = keras_hub.models.BartBackbone(
        vocabulary_size=30, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=8, max_sequence_length=8,
    )
    bart.save_to_preset(str(tmp_path / "bart"))
    with pytest.raises(ValueError, match="BartBackbone"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "bart"))
    # Hugging Face folders of encoders.
    (tmp_path / "hf_bert").mkdir()
    (tmp_path / "hf_bert" / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]})
    )
    with pytest.raises(ValueError, match="BertForMaskedLM"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "hf_bert"))
    # Missing, corrupt and unknown presets.
    with pytest.raises(ValueError, match="No preset directory"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "nowhere" / "preset"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no `config.json`"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "empty"))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        ktd.AR2DiffConverter().convert(str(tmp_path / "corrupt"))
    with pytest.raises(ValueError, match="local preset directory"):
        ktd.AR2DiffConverter().convert("no_such_preset_anywhere_en")
    # A handle that needs the network (offline here; online, not found).
    with pytest.raises(ValueError, match="local preset directory"):
        ktd.AR2DiffConverter().convert("kaggle://keras_textdiff/none/keras/none")
    with pytest.raises(ValueError, match="takes a keras-hub `CausalLM`"):
        ktd.AR2DiffConverter().convert(42)
