import warnings

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd
from conftest import gemma_backbone
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from keras_textdiff.recipes import set_sequence_length

SEQUENCE_LENGTH = 12


def make_model(backbone_fn=gpt2_backbone, **kwargs):
    tokenizer = letter_tokenizer()
    backbone = backbone_fn(tokenizer.vocabulary_size())
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, SEQUENCE_LENGTH)
    return ktd.DiffusionDecoder(backbone, preprocessor, **kwargs)


def packed_batch(model, pairs):
    x, y, _ = model.preprocessor(pairs)
    return {k: ops.convert_to_numpy(v) for k, v in x.items()}


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_loss_equals_independent_numpy_computation():
    model = make_model()
    x = packed_batch(model, {"prefix": ["abc", "de"], "target": ["fgh", "ijkl"]})
    clean, target = x["token_ids"], x["target_mask"]
    rng = np.random.default_rng(0)
    vocab = model.backbone.vocabulary_size
    noisy = np.where(
        target & (rng.random(clean.shape) < 0.6),
        rng.integers(0, vocab, clean.shape),
        clean,
    ).astype("int32")

    class FixedNoise(ktd.UniformNoise):
        def call(self, token_ids, target_mask, vocabulary_size):
            rate = ops.ones((len(noisy), 1))
            return ops.convert_to_tensor(noisy), ops.convert_to_tensor(noisy != clean), rate

    model.noise = FixedNoise()
    loss = float(model.compute_loss(x, clean, model(x)))

    def forward(ids):
        return ops.convert_to_numpy(
            model({"token_ids": ids, "padding_mask": x["padding_mask"]})
        )

    def ce(logits):  # mean over target tokens of -log p(clean)
        lp = np.take_along_axis(np_log_softmax(logits), clean[..., None], -1)
        return -(lp[..., 0] * target).sum() / target.sum()

    logits_1 = forward(noisy)
    unrolled_input = np.where(target, logits_1.argmax(-1), clean).astype("int32")
    expected = ce(logits_1) + ce(forward(unrolled_input))
    assert abs(loss - expected) < 1e-5 * max(1.0, expected)
    assert expected > 1.0  # a real, untrained loss, not a degenerate zero


@pytest.mark.parametrize("backbone_fn", [gpt2_backbone, gemma_backbone])
def test_attention_is_bidirectional_and_the_ar_model_stays_causal(backbone_fn):
    model = make_model(backbone_fn)
    x = packed_batch(model, {"prefix": ["abc"], "target": ["defgh"]})
    ids = x["token_ids"]
    first = int(np.argmax(x["target_mask"][0]))
    changed = ids.copy()
    changed[0, -1] = (changed[0, -1] + 5) % model.backbone.vocabulary_size
    inputs = lambda t: {"token_ids": t, "padding_mask": x["padding_mask"]}

    diffusion = lambda t: ops.convert_to_numpy(model(inputs(t)))
    delta = np.abs(diffusion(ids)[0, first] - diffusion(changed)[0, first])
    assert delta.max() > 1e-4

    # The same (shared) layers in an autoregressive model stay causal.
    ar = {
        "GPT2Backbone": keras_hub.models.GPT2CausalLM,
        "GemmaBackbone": keras_hub.models.GemmaCausalLM,
    }[type(model.backbone).__name__](backbone=model.backbone)
    causal = lambda t: ops.convert_to_numpy(ar(inputs(t)))
    np.testing.assert_allclose(
        causal(ids)[0, first], causal(changed)[0, first], atol=1e-6
    )
    # And the diffusion model with `attention="causal"` equals the AR model.
    model.attention = "causal"
    np.testing.assert_allclose(diffusion(ids), causal(ids), atol=1e-5)


def test_prefix_attention_keeps_the_prefix_independent_of_the_target():
    model = make_model(attention="prefix")
    x = packed_batch(model, {"prefix": ["abc"], "target": ["defgh"]})
    changed = x["token_ids"].copy()
    changed[0, -2] = 3
    logits = lambda ids: ops.convert_to_numpy(
        model.logits(ids, x["padding_mask"], x["target_mask"])
    )
    prefix = ~x["target_mask"][0]
    np.testing.assert_allclose(
        logits(x["token_ids"])[0, prefix], logits(changed)[0, prefix], atol=1e-6
    )
    first = int(np.argmax(x["target_mask"][0]))
    assert np.abs(logits(x["token_ids"])[0, first] - logits(changed)[0, first]).max() > 1e-4


def test_fit_does_not_warn_that_shuffle_is_ignored():
    # keras-hub hands Keras a dataset whatever fit() gets, and Keras warns on
    # every call that its default `shuffle=True` is ignored.
    import tensorflow as tf

    model = make_model()
    words = ["abc", "defg"] * 4
    data = tf.data.Dataset.from_tensor_slices({"prefix": words, "target": words}).batch(4)
    for x in ({"prefix": words, "target": words}, data):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, epochs=1, verbose=0)
        assert not [w for w in caught if "shuffle" in str(w.message)]
    # The filter is only for the call: Keras itself still warns.
    with pytest.warns(UserWarning, match="shuffle"):
        keras.Model.fit(model, data.map(model.preprocessor), epochs=1, verbose=0)


@pytest.mark.parametrize("backbone_fn", [
    gpt2_backbone, pytest.param(gemma_backbone, marks=pytest.mark.large),  # ~1 min each.
])
def test_fit_evaluate_and_generate(backbone_fn):
    model = make_model(backbone_fn)
    words = ["abc", "defg", "hij", "klm"] * 8
    history = model.fit({"prefix": words, "target": words}, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert np.isfinite(history.history["loss"]).all()
    # `accuracy` is the first pass's argmax on the corrupted target tokens:
    # with the noise fixed, numpy computes it from the model's logits.
    pairs = {"prefix": words, "target": words}
    x = packed_batch(model, pairs)
    clean, target = x["token_ids"], x["target_mask"]
    rng = np.random.default_rng(0)
    corrupted = target & (rng.random(clean.shape) < 0.5)
    noisy = np.where(corrupted, rng.integers(0, 29, clean.shape), clean).astype("int32")
    noise = model.noise
    rate = np.full((len(words), 1), 0.5, "float32")
    model.noise = _fixed_noise(ktd.UniformNoise, noisy, corrupted, rate)()
    metrics = model.evaluate(pairs, batch_size=len(words), verbose=0, return_dict=True)
    model.noise = noise
    logits = ops.convert_to_numpy(model({"token_ids": noisy, "padding_mask": x["padding_mask"]}))
    hits = logits.argmax(-1) == clean
    assert metrics["accuracy"] == pytest.approx(hits[corrupted].mean(), abs=1e-6)
    # Not the accuracy over the whole target region: the two differ here, so
    # the check above tells them apart.
    assert hits[target].mean() != pytest.approx(hits[corrupted].mean(), abs=1e-4)
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=2, seed=1))
    out = model.generate(["abc", "de"], max_length=SEQUENCE_LENGTH)
    assert len(out) == 2 and out[0].startswith("abc") and out[1].startswith("de")
    sampler_config = model.sampler.get_config()
    model.compile(sampler=ktd.DiffusionSampler.from_config(sampler_config))
    full = model.generate("abc")
    model.compile(sampler=ktd.DiffusionSampler.from_config(sampler_config))
    stripped = model.generate("abc", strip_prompt=True)
    assert isinstance(stripped, str) and full == "abc" + stripped


def test_generate_is_seeded_and_num_steps_does_not_recompile():
    model = make_model()
    x = model.preprocessor.generate_preprocess(["ab", "cd"])
    traces = []
    original = model.generate_step

    def counting_generate_step(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    def sampler(**kwargs):  # A fresh sampler: its random stream restarts.
        model.compile(sampler=ktd.DiffusionSampler(seed=4, num_samples=2, **kwargs))
        model.generate_step = counting_generate_step
        traces.clear()

    sampler()
    outs = {num_steps: model.generate(x, num_steps=num_steps) for num_steps in (2, 5, 3)}
    for num_steps, out in outs.items():
        # The default strategy runs the model once per step, no more, no less.
        np.testing.assert_array_equal(out["num_forward_passes"], [num_steps] * 2)
    assert model.generate(x)["num_forward_passes"].tolist() == [10, 10]  # The sampler's.
    assert len(traces) == 1, "changing num_steps recompiled generate()"

    # Seeded: the same seed and steps decode the same tokens, another seed others.
    first = outs[2]["token_ids"]
    sampler()
    np.testing.assert_array_equal(model.generate(x, num_steps=2)["token_ids"], first)
    model.compile(sampler=ktd.DiffusionSampler(seed=5, num_samples=2))
    assert (model.generate(x, num_steps=2)["token_ids"] != first).any()
    # `num_steps=5` for one call decodes as a sampler made with 5 steps does.
    sampler()
    five = model.generate(x, num_steps=5)["token_ids"]
    sampler(num_steps=5)
    out = model.generate(x)
    np.testing.assert_array_equal(out["token_ids"], five)
    np.testing.assert_array_equal(out["num_forward_passes"], [5, 5])


def candidate_scores(model, token_ids, padding_mask, target_mask):
    """Best-of-N's score, in numpy: each row's mean cross-entropy of its own
    target tokens under the logits the model computes from them."""
    logits = ops.convert_to_numpy(model({"token_ids": token_ids, "padding_mask": padding_mask}))
    log_probs = np.take_along_axis(np_log_softmax(logits), token_ids[..., None], -1)[..., 0]
    return -(log_probs * target_mask).sum(-1) / target_mask.sum(-1)


def test_best_candidate_has_the_lowest_score():
    model = make_model()
    n, num_steps = 4, 2
    x = {k: ops.convert_to_numpy(v) for k, v in model.preprocessor.generate_preprocess(["ab"]).items()}
    rows = {k: np.repeat(v, n, axis=0) for k, v in x.items()}

    # The sampler scores each candidate by the last step's input tokens.
    sampler = ktd.DiffusionSampler(num_steps=num_steps, num_samples=n, seed=0)
    logits_fn = lambda ids: model.logits(ids, ops.ones_like(ids, "bool"))
    _, scores, _, _, states, _ = sampler(
        logits_fn, rows["token_ids"], rows["target_mask"], 29, model=model,
        record=num_steps + 1,
    )
    last_input = ops.convert_to_numpy(states)[num_steps - 1]
    expected = candidate_scores(model, last_input, rows["padding_mask"], rows["target_mask"])
    np.testing.assert_allclose(ops.convert_to_numpy(scores), expected, rtol=1e-5)

    # `generate` returns the candidate of lowest score. The candidates are the
    # rows of one batch of `n` copies of the prompt: with the same seed, one
    # sample per copy decodes the same `n` candidates, states recorded.
    model.compile(sampler=ktd.DiffusionSampler(num_steps=num_steps, num_samples=n, seed=1))
    best = model.generate(x)["token_ids"][0]
    model.compile(sampler=ktd.DiffusionSampler(num_steps=num_steps, num_samples=1, seed=1))
    decoded = model.generate(dict(rows, record=np.zeros((num_steps + 1,), "int32")))
    candidates = decoded["token_ids"]
    np.testing.assert_array_equal(decoded["states"][:, num_steps], candidates)
    scores = candidate_scores(
        model, decoded["states"][:, num_steps - 1], rows["padding_mask"], rows["target_mask"]
    )
    assert len({c.tobytes() for c in candidates}) == n  # n different candidates
    assert any((best == c).all() for c in candidates), "not the same candidates"
    # Seed 1 puts the best in neither the first nor the last row (a decoder
    # that returned either would pass), its score apart from the runner-up's
    # by far more than float32 rounding.
    assert scores.argmin() not in (0, n - 1), f"pick another seed: scores {scores}"
    assert np.sort(scores)[1] - scores.min() > 1e-3, f"pick another seed: scores {scores}"
    np.testing.assert_array_equal(best, candidates[scores.argmin()])


def test_keras_and_preset_round_trips(tmp_path):
    model = make_model()
    model.compile(sampler=ktd.DiffusionSampler(num_steps=4, temperature=0.5, num_samples=3, seed=2))
    x = packed_batch(model, {"prefix": ["abc"], "target": ["de"]})
    inputs = {"token_ids": x["token_ids"], "padding_mask": x["padding_mask"]}
    expected = ops.convert_to_numpy(model(inputs))

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(inputs)), expected, atol=1e-6)

    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = ktd.DiffusionDecoder.from_preset(preset)
    assert isinstance(restored, ktd.DiffusionDecoder)
    np.testing.assert_allclose(ops.convert_to_numpy(restored(inputs)), expected, atol=1e-6)
    for m in (loaded, restored):
        assert m.sampler.get_config() == model.sampler.get_config()
        assert m.preprocessor.sequence_length == SEQUENCE_LENGTH
        assert m.preprocessor.tokenizer.get_vocabulary() == model.preprocessor.tokenizer.get_vocabulary()
    # Same weights and sampler seed: the restored model decodes the same text.
    model.compile(sampler=ktd.DiffusionSampler.from_config(model.sampler.get_config()))
    assert restored.generate(["ab", "cd"]) == model.generate(["ab", "cd"])


@pytest.mark.parametrize(
    "action, match",
    [
        (lambda m: m.generate([]), "empty"),
        (lambda m: m.generate([""]), "non-empty"),
        (lambda m: m.generate(["abcdefghijkl"]), "max_length"),
        (lambda m: m.generate(["abc"], max_length=5), "max_length"),
        (lambda m: m.generate(["abc"], max_length=100), "max_sequence_length"),
        (lambda m: m.generate(["abc"], max_length=3), "int >= 4"),
        (lambda m: m.denoising_trajectory("abc", max_length=100), "max_sequence_length"),
        (lambda m: set_sequence_length(m, 100), "max_sequence_length"),
        (lambda m: set_sequence_length(m, 8.0), "sequence_length. must be an int"),
        (lambda m: m.generate(["abc"], num_steps=0), "num_steps"),
        (lambda m: m.compile(loss="mse"), "loss"),
        (lambda m: m.compile(sampler="greedy"), "sampler"),
        (lambda m: m.fit({"target": ["ab"]}, verbose=0), "prefix"),
    ],
)
def test_bad_input(action, match):
    with pytest.raises(ValueError, match=match):
        action(make_model())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"temperature": -0.1}, "temperature"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_steps": 2.5}, "num_steps"),
    ],
)
def test_bad_sampler_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ktd.DiffusionSampler(**kwargs)


def test_unsupported_backbone_and_attention():
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=8, max_sequence_length=8,
    )
    with pytest.raises(ValueError, match="GPT2Backbone"):
        ktd.DiffusionDecoder(bert)
    with pytest.raises(ValueError, match="attention"):
        make_model(attention="sideways")


def test_missing_preset_is_a_clear_error(tmp_path):
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=30, num_layers=1, num_heads=1, hidden_dim=8,
        intermediate_dim=8, max_sequence_length=8,
    )
    gpt2.save_to_preset(str(tmp_path / "ar"))
    with pytest.raises(ValueError, match="AR2DiffConverter"):
        ktd.DiffusionDecoder.from_preset(str(tmp_path / "ar"))


def _fixed_noise(base, noisy, corrupted, rate):
    class FixedNoise(base):
        def call(self, token_ids, target_mask, vocabulary_size):
            return (ops.convert_to_tensor(noisy), ops.convert_to_tensor(corrupted),
                    ops.convert_to_tensor(rate))

    return FixedNoise


@pytest.mark.parametrize("shifted", [False, True])
def test_target_window_loss_equals_the_full_sequence_computation(shifted):
    """With `target_length`, training projects only the target window; the
    loss must equal L(1:2) computed from full-sequence logits in numpy."""
    tokenizer = letter_tokenizer()
    backbone = gpt2_backbone(tokenizer.vocabulary_size())
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, SEQUENCE_LENGTH, target_length=4)
    model = ktd.DiffusionDecoder(backbone, preprocessor, shifted_prediction=shifted)
    x, clean, weights = model.preprocessor({"prefix": ["abcde", "fg"], "target": ["hi", "j"]})
    x = {k: ops.convert_to_numpy(v) for k, v in x.items()}
    clean, weights = ops.convert_to_numpy(clean), ops.convert_to_numpy(weights)
    target = x["target_mask"]
    rng = np.random.default_rng(1)
    corrupted = target & (rng.random(clean.shape) < 0.7)
    noisy = np.where(corrupted, rng.integers(0, 28, clean.shape), clean).astype("int32")
    model.noise = _fixed_noise(ktd.UniformNoise, noisy, corrupted, np.ones((2, 1), "float32"))()
    outputs = model(x)
    assert outputs["logits"].shape == (2, 4, 29)  # only the target window
    loss = float(model.compute_loss(x, clean, outputs, weights))

    def full_logits(ids):  # every position, then numpy shifts and masks
        return ops.convert_to_numpy(model.logits(ids, x["padding_mask"], target))

    def ce(logits):
        lp = np.take_along_axis(np_log_softmax(logits), clean[..., None], -1)[..., 0]
        return -(lp * target).sum() / target.sum()

    logits_1 = full_logits(noisy)
    unrolled = np.where(target, logits_1.argmax(-1), clean).astype("int32")
    expected = ce(logits_1) + ce(full_logits(unrolled))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_one_pass_and_mask_elbo_losses_through_the_model():
    model = make_model()
    x = packed_batch(model, {"prefix": ["abc", "de"], "target": ["fgh", "ijkl"]})
    clean, target = x["token_ids"], x["target_mask"]
    rng = np.random.default_rng(2)
    corrupted = target & (rng.random(clean.shape) < 0.5)
    rate = np.array([[0.5], [0.25]], "float32")
    mask_id = 27
    masked = np.where(corrupted, mask_id, clean).astype("int32")

    def ce_per_token(ids):
        logits = ops.convert_to_numpy(model.logits(ids, x["padding_mask"], target))
        return -np.take_along_axis(np_log_softmax(logits), clean[..., None], -1)[..., 0]

    # One pass (unroll=0): L(1) only.
    model.noise = _fixed_noise(ktd.UniformNoise, masked, corrupted, rate)(unroll=0.0)
    outputs = model(x)
    assert "unrolled_logits" not in outputs
    one = float(model.compute_loss(x, clean, outputs))
    np.testing.assert_allclose(one, (ce_per_token(masked) * target).sum() / target.sum(), rtol=1e-5)
    # Mask noise: the 1/t-weighted ELBO over masked positions.
    model.noise = _fixed_noise(ktd.MaskNoise, masked, corrupted, rate)(mask_id)
    elbo = float(model.compute_loss(x, clean, model(x)))
    ce = ce_per_token(masked)
    expected = (ce * corrupted / rate).sum() / target.sum()
    np.testing.assert_allclose(elbo, expected, rtol=1e-5)


def test_sometimes_unrolled_steps_train():
    model = make_model(noise=ktd.UniformNoise(unroll=0.5, seed=0))
    words = ["abc", "defg", "hij", "klm"] * 4
    history = model.fit({"prefix": words, "target": words}, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("backbone_fn", [gpt2_backbone, gemma_backbone])
def test_block_attention_keeps_the_prefix_causal_and_blocks_ordered(backbone_fn):
    model = make_model(backbone_fn, attention="block", block_size=2)
    x = packed_batch(model, {"prefix": ["abc"], "target": ["defgh"]})
    ids, target = x["token_ids"], x["target_mask"][0]
    first = int(np.argmax(target))  # target blocks: [first, first+2), ...

    def logits(t):
        return ops.convert_to_numpy(model.logits(t, x["padding_mask"], x["target_mask"]))[0]

    def change(position):
        changed = ids.copy()
        changed[0, position] = (changed[0, position] + 5) % model.backbone.vocabulary_size
        return logits(changed)

    base = logits(ids)
    # The prefix is causal: changing a later prefix token leaves earlier ones.
    np.testing.assert_allclose(change(first - 1)[: first - 1], base[: first - 1], atol=1e-6)
    # A block sees itself both ways: its first position sees its second.
    assert np.abs(change(first + 1)[first] - base[first]).max() > 1e-4
    # ... and never a later block.
    np.testing.assert_allclose(change(first + 2)[: first + 2], base[: first + 2], atol=1e-6)
    # A later block sees an earlier one.
    assert np.abs(change(first)[first + 2] - base[first + 2]).max() > 1e-4
    # The prefix equals the AR model's own (causal) computation.
    causal = ops.convert_to_numpy(model.logits(ids, x["padding_mask"], attention_mask=None))[0]
    np.testing.assert_allclose(base[:first], causal[:first], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attention": "block"}, "block_size"),
        ({"attention": "block", "block_size": 0}, "block_size"),
        ({"attention": "bidirectional", "block_size": 4}, "block_size"),
    ],
)
def test_bad_block_attention_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_set_lengths_works_as_a_model_built_at_those_lengths():
    """A model retargeted with `set_lengths` packs and generates as
    one built at the new lengths with the same weights, even after it ran at
    the old ones (same shapes, other blocks: its traced functions must go)."""
    tokenizer = letter_tokenizer()
    mask_id = tokenizer.vocabulary_size()  # Mask noise: argmax decoding is deterministic.

    def build(target_length, block_size):
        preprocessor = ktd.DiffusionPreprocessor(tokenizer, SEQUENCE_LENGTH, target_length=target_length)
        return ktd.DiffusionDecoder(
            gpt2_backbone(mask_id + 1), preprocessor, attention="block", block_size=block_size,
            noise=ktd.MaskNoise(mask_id),
            sampler=ktd.DiffusionSampler(strategy="confidence", num_steps=4, temperature=0),
        )

    keras.utils.set_random_seed(0)
    model = build(8, 8)
    # Matrices large enough for attention to matter (at init, it barely does).
    model.set_weights([w * 8 if w.ndim > 1 else w for w in model.get_weights()])
    prompts = ["ab", "c", "dd", "efg", "h", "ij"]
    before = model.generate(prompts)  # Traced with one block of 8.

    model.set_lengths(block_size=2)  # Four blocks of the same 8 positions.
    blocks = build(8, 2)
    blocks.set_weights(model.get_weights())
    assert blocks.generate(prompts) != before  # The blocks matter here.
    assert model.generate(prompts) == blocks.generate(prompts)

    model.set_lengths(target_length=6, block_size=3)
    shorter = build(6, 3)
    shorter.set_weights(model.get_weights())
    pairs = {"prefix": ["ab", "c"], "target": ["cd", "efg"]}
    packed = packed_batch(model, pairs)
    assert packed["target_mask"].sum(axis=1).tolist() == [6, 6]
    for key, value in packed_batch(shorter, pairs).items():
        np.testing.assert_array_equal(packed[key], value)
    assert model.generate(prompts) == shorter.generate(prompts)
    assert ktd.DiffusionDecoder.from_config(model.get_config()).block_size == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target_length": 6}, "must divide the target length"),  # Blocks of 4.
        ({"sequence_length": 100}, "max_sequence_length"),
        ({"target_length": 10}, "target_length. must be None or an int in"),
        ({"sequence_length": 8.0}, "sequence_length. must be an int"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_set_lengths_refuses_bad_lengths_and_changes_nothing(kwargs, match):
    tokenizer = letter_tokenizer()
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, SEQUENCE_LENGTH, target_length=8)
    model = ktd.DiffusionDecoder(gpt2_backbone(tokenizer.vocabulary_size()), preprocessor,
                                 attention="block", block_size=4)
    with pytest.raises(ValueError, match=match):
        model.set_lengths(**kwargs)
    assert (preprocessor.sequence_length, preprocessor.target_length, model.block_size) == (12, 8, 4)
    with pytest.raises(ValueError, match="applies to .attention=.block.. only"):
        make_model().set_lengths(block_size=2)
