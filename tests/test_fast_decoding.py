"""The fast decoding options of `DiffusionSampler` against plain decoding."""

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd
from keras_textdiff.kv_cache import WindowedLogits
from keras_textdiff.kv_cache import causal_lm_class
from keras_textdiff.samplers import unmasking
from tiny_models import ARCHITECTURES
from tiny_models import tiny_causal_lm

LENGTH = 16


def packed_batch(vocabulary_size, seed=0):
    """Two rows whose targets start at different positions, one padded."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocabulary_size, (2, LENGTH)).astype("int32")
    padding_mask = np.ones((2, LENGTH), bool)
    padding_mask[1, 14:] = False
    target_mask = np.zeros((2, LENGTH), bool)
    target_mask[0, 5:] = True
    target_mask[1, 7:14] = True
    return ids, padding_mask, target_mask


def tiny_diffusion(name="gpt2", **kwargs):
    keras.utils.set_random_seed(1)
    backbone = tiny_causal_lm(name).backbone
    return ktd.DiffusionDecoder(backbone, None, **kwargs)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_window_logits_with_and_without_cache_equal_full_logits(name):
    model = tiny_diffusion(name, attention="prefix", shifted_prediction=True)
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    full = ops.convert_to_numpy(model.logits(ids, padding_mask, target_mask))
    start, window = 4, LENGTH - 4
    for use_cache in (False, True):
        windowed = WindowedLogits(model, padding_mask, target_mask, window, use_cache)
        cache = windowed.initial_cache(ids)
        logits, _ = windowed(ids, start, cache)
        logits = ops.convert_to_numpy(logits)
        # The window's first position reads its own output (never updated).
        # (GPT-NeoX's rotary angles at an offset round differently: 1.3e-4
        # here, as in keras-hub's own cached AR decoding; logits are ~0.2.)
        np.testing.assert_allclose(logits[:, 1:], full[:, start + 1 :], atol=3e-4)


def test_cache_finds_the_most_specific_task():
    from keras_textdiff.checkpoints import GGUFLlamaBackbone
    from keras_textdiff.checkpoints import GGUFLlamaCausalLM

    assert causal_lm_class(tiny_causal_lm("llama3").backbone) is keras_hub.models.Llama3CausalLM
    assert issubclass(GGUFLlamaCausalLM, causal_lm_class(
        GGUFLlamaBackbone(vocabulary_size=8, num_layers=1, num_query_heads=2,
                          num_key_value_heads=1, hidden_dim=8, intermediate_dim=8)
    ))


def decode(model, padding_mask=None, **options):
    ids, pm, tm = packed_batch(model.backbone.vocabulary_size)
    options = {"num_steps": 4, "temperature": 0.0, "num_samples": 1, "seed": 0, **options}
    model.compile(sampler=ktd.DiffusionSampler(**options))
    out = model.generate({"token_ids": ids, "padding_mask": pm, "target_mask": tm})
    return out, ids, tm


def test_prompt_cache_is_exact_for_prefix_attention():
    model = tiny_diffusion(attention="prefix")
    for temperature in (0.0, 1.0):
        plain, ids, target = decode(model, temperature=temperature)
        cached, _, _ = decode(model, temperature=temperature, cache=True)
        np.testing.assert_array_equal(plain["token_ids"], cached["token_ids"])
        # The prompt is kept; the target was written.
        np.testing.assert_array_equal(plain["token_ids"][~target], ids[~target])
        # One full pass for the cache, then one window pass per step.
        assert plain["num_forward_passes"][0] == 4
        assert cached["num_forward_passes"][0] == 5


def test_blocks_run_left_to_right_with_their_own_steps():
    model = tiny_diffusion()
    # Targets start at 5 (row 0): blocks [5, 8), [8, 11), [11, 14), [14, 16).
    out, ids, target = decode(model, block_size=3)
    assert out["num_forward_passes"][0] == 4 * 4
    cached, _, _ = decode(model, block_size=3, cache=True)
    # + the cache's pass, + a refresh pass after each block but the last.
    assert cached["num_forward_passes"][0] == 1 + 4 * 4 + 3
    for result in (out, cached):
        np.testing.assert_array_equal(result["token_ids"][~target], ids[~target])


def test_early_stop_ends_when_nothing_changes():
    # A denoiser that always predicts token 3: the first step writes 3
    # everywhere, the second changes nothing and stops the loop.
    sampler = ktd.DiffusionSampler(num_steps=10, temperature=0.0, num_samples=1,
                                   early_stop=True, seed=0)
    ids, _, target = packed_batch(8)

    def logits_fn(token_ids):
        return ops.one_hot(ops.full(ops.shape(token_ids), 3), 8) * 10.0

    tokens, _, passes, _ = sampler(logits_fn, ids, target, vocabulary_size=8)
    assert int(passes) == 2
    np.testing.assert_array_equal(ops.convert_to_numpy(tokens)[target], 3)
    sampler.early_stop = False
    assert int(sampler(logits_fn, ids, target, vocabulary_size=8)[2]) == 10


def mask_model():
    keras.utils.set_random_seed(1)
    backbone = tiny_causal_lm("gpt2").backbone
    mask_id = backbone.vocabulary_size - 1  # Any id the model reserves.
    return ktd.DiffusionDecoder(backbone, None, noise=ktd.MaskNoise(mask_id)), mask_id


def test_bfloat16_decoding_keeps_the_logits_in_bfloat16():
    # A float32 copy of every step's `[batch, length, vocab]` logits cost
    # more than the step's argmax on CPU: steps use them as computed.
    keras.utils.set_random_seed(1)
    backbone = tiny_causal_lm("gpt2").backbone
    backbone = type(backbone).from_config(backbone.get_config() | {"dtype": "bfloat16"})
    mask_id = backbone.vocabulary_size - 1
    model = ktd.DiffusionDecoder(backbone, None, noise=ktd.MaskNoise(mask_id))
    ids, padding_mask, target_mask = packed_batch(backbone.vocabulary_size)
    masked = np.where(target_mask, mask_id, ids).astype("int32")
    windowed = WindowedLogits(model, padding_mask, target_mask, LENGTH, False)
    step_logits, _ = windowed(masked, 0, windowed.initial_cache(masked))
    full = model.logits(masked, padding_mask, target_mask)
    assert keras.backend.standardize_dtype(step_logits.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(full.dtype) == "float32"
    full = ops.convert_to_numpy(full)
    step_logits = ops.convert_to_numpy(ops.cast(step_logits, "float32"))
    # The same numbers but the mask token's (-1e9, rounded to bfloat16).
    np.testing.assert_array_equal(step_logits[..., :mask_id], full[..., :mask_id])
    # One threshold step from all-masks commits every target to a token of
    # the highest float32 logit (by value: bfloat16 logits can tie).
    out, _, _ = decode(model, strategy="threshold", threshold=1e-9, num_steps=1)
    chosen = np.take_along_axis(full, out["token_ids"][..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(chosen[target_mask], full.max(-1)[target_mask])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_mask_decoding_scores_stay_finite(dtype):
    # The mask token's logit is pushed far down in the logits' own dtype:
    # -1e9 is -inf in float16, and -inf * 0 made the scores of rows with
    # masks left NaN (so `num_samples > 1` picked its best at random).
    keras.utils.set_random_seed(1)
    backbone = tiny_causal_lm("gpt2").backbone
    backbone = type(backbone).from_config(backbone.get_config() | {"dtype": dtype})
    mask_id = backbone.vocabulary_size - 1
    model = ktd.DiffusionDecoder(backbone, None, noise=ktd.MaskNoise(mask_id))
    ids, padding_mask, target_mask = packed_batch(backbone.vocabulary_size)
    masked = np.where(target_mask, mask_id, ids).astype("int32")
    denoiser = WindowedLogits(model, padding_mask, target_mask, LENGTH, False)
    logits = ops.convert_to_numpy(ops.cast(denoiser(masked, 0, None)[0], "float32"))
    assert np.isfinite(logits).all() and (logits[..., mask_id] < logits.max(-1)).all()
    sampler = ktd.DiffusionSampler(
        num_steps=4, temperature=0.0, num_samples=2, strategy="confidence"
    )
    # Called on the batch directly (`generate` would repeat it per sample).
    tokens, scores, _, _ = sampler(
        denoiser,
        ids, target_mask, backbone.vocabulary_size, model=model,
        noise=model.noise,
    )
    assert np.isfinite(ops.convert_to_numpy(scores)).all()
    assert (ops.convert_to_numpy(tokens)[target_mask] != mask_id).all()


@pytest.mark.parametrize(
    "strategy", ["confidence", "entropy", "margin", "threshold", "left_to_right", "entropy_bound"]
)
def test_mask_strategies_unmask_every_target(strategy):
    model, mask_id = mask_model()
    out, ids, target = decode(model, strategy=strategy, num_steps=3, block_size=4)
    tokens = out["token_ids"]
    assert not (tokens[target] == mask_id).any()
    np.testing.assert_array_equal(tokens[~target], ids[~target])
    assert out["num_forward_passes"][0] <= 3 * 3  # 3 blocks of 4 from position 5


@pytest.mark.parametrize("strategy", ["threshold", "left_to_right"])
def test_threshold_commits_confident_tokens_in_one_step(strategy):
    model, mask_id = mask_model()
    out, _, target = decode(model, strategy=strategy, threshold=1e-9, num_steps=8)
    assert out["num_forward_passes"][0] == 1
    assert not (out["token_ids"][target] == mask_id).any()


def test_mask_strategy_needs_a_mask_model():
    with pytest.raises(ValueError, match="MaskNoise"):
        decode(tiny_diffusion(), strategy="confidence")


def test_left_to_right_on_hand_made_logits():
    # One row, 4 candidate positions, vocabulary of 5; token 4 is the mask.
    # Position i samples `samples[i]` with probability `sure[i]`.
    sure = [0.9, 0.5, 0.6, 0.34]

    def chosen(threshold, samples=(0, 1, 2, 3), tokens=(4, 4, 4, 4), steps_left=2,
               stop_token_ids=None):
        probs = np.full((1, 4, 5), 0.0, "float32")
        for i, (token, p) in enumerate(zip(samples, sure)):
            probs[0, i] = (1 - p) / 4
            probs[0, i, token] = p
        picked = unmasking.select(
            "left_to_right", np.log(probs), np.array([tokens], "int32"),
            np.array([samples], "int32"), np.ones((1, 4), bool), steps_left,
            mask_token_id=4, threshold=threshold, stop_token_ids=stop_token_ids)
        return ops.convert_to_numpy(picked)[0].tolist()

    # The first masked position, then the masked ones after it while each is
    # sure; an unsure one ends the run (no gap before 0.6).
    assert chosen(0.55) == [True, False, False, False]
    assert chosen(0.45) == [True, True, True, False]
    assert chosen(0.95) == [True, False, False, False]
    assert chosen(0.95, steps_left=1) == [True] * 4
    assert chosen(0.55, tokens=(0, 4, 4, 4)) == [False, True, True, False]  # first: 0.5
    assert chosen(0.55, tokens=(4, 0, 4, 4)) == [True, False, True, False]  # no masked gap
    # The same token sampled at two masked neighbours ends the run before
    # the second; after a committed token it is no copy; stop tokens repeat.
    assert chosen(0.45, samples=(0, 1, 1, 3)) == [True, True, False, False]
    assert chosen(0.45, samples=(0, 0, 2, 3)) == [True, False, False, False]
    assert chosen(0.45, samples=(0, 0, 2, 3), tokens=(0, 4, 4, 4)) == [False, True, True, False]
    assert chosen(0.45, samples=(0, 1, 1, 3), steps_left=1) == [True] * 4
    assert chosen(0.3, samples=(0, 1, 3, 3), tokens=(0, 1, 4, 4),
                  stop_token_ids=[3]) == [False, False, True, True]


def test_selection_rules_on_hand_made_logits():
    # One row, 4 candidate positions, vocabulary of 3; token 2 is the mask.
    probs = np.array([[[0.9, 0.05, 0.05], [0.5, 0.4, 0.1], [0.6, 0.2, 0.2], [0.34, 0.33, 0.33]]])
    logits = np.log(probs).astype("float32")
    samples = np.zeros((1, 4), "int32")
    masked = np.full((1, 4), 2, "int32")
    candidates = np.ones((1, 4), bool)

    def chosen(strategy, tokens=masked, steps_left=2, **kwargs):
        picked = unmasking.select(strategy, logits, tokens, samples, candidates,
                                  steps_left, mask_token_id=2, **kwargs)
        return ops.convert_to_numpy(picked)[0].tolist()

    assert chosen("resample") == [True] * 4
    # ceil(4 masked / 2 steps) = 2 per step: the highest probability of the
    # sampled token (0.9, 0.6), the lowest entropy (0.39, 0.94 nats; the
    # third position's is 0.95), the largest top-2 margin (0.85, 0.4).
    assert chosen("confidence") == [True, False, True, False]
    assert chosen("entropy") == [True, True, False, False]
    assert chosen("margin") == [True, False, True, False]
    assert chosen("confidence", steps_left=1) == [True] * 4
    assert chosen("threshold", threshold=0.55) == [True, False, True, False]
    assert chosen("threshold", threshold=0.95) == [True, False, False, False]
    assert chosen("threshold", threshold=0.95, steps_left=1) == [True] * 4
    # The surest positions while their summed entropy fits the bound
    # (0.39, + 0.94 = 1.33, + 0.95 = 2.28, + 1.10 = 3.38 nats); at least one.
    assert chosen("entropy_bound", entropy_bound=1.0) == [True, False, False, False]
    assert chosen("entropy_bound", entropy_bound=1.4) == [True, True, False, False]
    assert chosen("entropy_bound", entropy_bound=2.3) == [True, True, True, False]
    assert chosen("entropy_bound", entropy_bound=0.01) == [True, False, False, False]
    assert chosen("entropy_bound", entropy_bound=0.01, steps_left=1) == [True] * 4
    # Decided positions neither count nor change.
    assert chosen("entropy_bound", tokens=np.array([[0, 2, 2, 2]], "int32"),
                  entropy_bound=2.0) == [False, True, True, False]
    # Committed (unmasked) positions never change under mask strategies.
    assert chosen("confidence", tokens=np.array([[0, 2, 2, 2]], "int32")) == [
        False, True, True, False]  # 3 masked, 2 steps: 2 (0.6 and 0.5)
    # argmax-unrolled keeps the share whose current token is most likely.
    current = np.array([[0, 0, 1, 2]], "int32")  # p = 0.9, 0.5, 0.2, 0.33
    assert chosen("argmax_unrolled", tokens=current, keep_fraction=0.5) == [
        False, False, True, True]


def test_one_step_changes_only_live_targets_and_stops_finished_rows():
    # Vocabulary of 4; token 3 is the mask. Row 0 is live with two masked
    # targets (positions 1 and 2); row 1 is already done.
    probs = np.full((2, 4, 4), 0.02, "float32")
    probs[:, :, 0] = 0.94  # Every position is sure of token 0...
    probs[0, 2] = [0.3, 0.3, 0.38, 0.02]  # ...but row 0's position 2.
    logits = np.log(probs)
    current = np.array([[1, 3, 3, 2], [3, 3, 3, 3]], "int32")
    targets = np.array([[False, True, True, False], [True] * 4])
    done = np.array([False, True])

    def step(steps_left, **options):
        sampler = ktd.DiffusionSampler(num_samples=1, temperature=0.0, strategy="threshold",
                                       threshold=0.9, **options)
        new, done_after = sampler.step(logits, current, targets, done, steps_left,
                                       mask_token_id=3, stop_ids=None)
        return ops.convert_to_numpy(new).tolist(), ops.convert_to_numpy(done_after).tolist()

    # Only position 1 is above the threshold: row 0 still holds a mask.
    assert step(5) == ([[1, 0, 3, 2], [3, 3, 3, 3]], [False, True])
    # The block's last step commits every masked target: row 0 stops.
    assert step(1) == ([[1, 0, 2, 2], [3, 3, 3, 3]], [True, True])


def test_ordered_stop_commits_stop_tokens_only_after_decided_positions():
    # Position 0 is a prompt token (decided); 1-4 are masked (token 3).
    # The model is surest of the end token (1) at position 2: plain
    # confidence commits it first, before position 1's content.
    probs = np.full((1, 5, 4), 0.01)
    probs[0, 1, 2] = 0.5  # content (token 2) after the prompt
    probs[0, 2, 1] = 0.9  # end token
    probs[0, 3, 0] = 0.8  # padding (token 0)
    probs[0, 4, 0] = 0.95
    logits = np.log(probs / probs.sum(-1, keepdims=True)).astype("float32")
    samples = np.array([[0, 2, 1, 0, 0]], "int32")
    tokens = np.array([[2, 3, 3, 3, 3]], "int32")
    candidates = np.array([[False, True, True, True, True]])

    def chosen(tokens, steps_left, stop):
        picked = unmasking.select("confidence", logits, tokens, samples, candidates,
                                  steps_left, mask_token_id=3, stop_token_ids=stop)
        return ops.convert_to_numpy(picked)[0].tolist()

    # 4 masked, 4 steps: one per step.
    assert chosen(tokens, 4, None) == [False, False, False, False, True]
    # Ordered: only position 1 is ready (the others are stop tokens after
    # a masked position that gets content).
    assert chosen(tokens, 4, [0, 1]) == [False, True, False, False, False]
    # Once position 1 is decided, every stop after it is ready: the surest.
    decided = np.array([[2, 2, 3, 3, 3]], "int32")
    assert chosen(decided, 3, [0, 1]) == [False, False, False, False, True]
    # A stop that only follows stops is ready too (position 4 after 3).
    assert chosen(tokens, 4, [0, 1, 2]) == [False, False, False, False, True]
    # The last step commits whatever is left.
    assert chosen(tokens, 1, [0, 1]) == [False, True, True, True, True]
    sampler = ktd.DiffusionSampler(strategy="confidence", ordered_stop=True)
    assert ktd.DiffusionSampler.from_config(sampler.get_config()).ordered_stop


@pytest.mark.parametrize("strategy", ["threshold", "entropy_bound"])
def test_a_sampled_stop_is_as_sure_as_the_stop_ids_together(strategy):
    # Position 1 holds decided content; 2-4 are masked (token 3), and the
    # model splits each between the end token (1) and padding (0): no single
    # id reaches the threshold (0.6 < 0.9), the two together do (0.96).
    probs = np.full((1, 5, 4), 0.02)
    probs[0, 2:, 0] = 0.6
    probs[0, 2:, 1] = 0.36
    probs = probs / probs.sum(-1, keepdims=True)
    logits = np.log(probs).astype("float32")
    samples = np.array([[2, 2, 0, 0, 0]], "int32")
    tokens = np.array([[2, 2, 3, 3, 3]], "int32")
    candidates = np.array([[False, True, True, True, True]])

    def chosen(stop):
        picked = unmasking.select(strategy, logits, tokens, samples, candidates, 3,
                                  mask_token_id=3, threshold=0.9, stop_token_ids=stop,
                                  entropy_bound=0.6)
        return ops.convert_to_numpy(picked)[0].tolist()

    # Each position's entropy over the four ids, and with the stops as one.
    entropy = -(probs[0, 2] * np.log(probs[0, 2])).sum()
    stop = probs[0, 2, :2].sum()
    merged = -(stop * np.log(stop) + (probs[0, 2, 2:] * np.log(probs[0, 2, 2:])).sum())
    assert 3 * merged < 0.6 < entropy  # So the bound separates the two readings.
    # Token by token: only the surest one a step (or none past the bound).
    assert chosen([0]) == [False, False, True, False, False]
    # The stop ids as one outcome: the whole rest of the answer at once.
    assert chosen([0, 1]) == [False, False, True, True, True]


@pytest.mark.parametrize("strategy", ["confidence", "threshold", "left_to_right"])
def test_ordered_stop_decodes_every_target(strategy):
    model, mask_id = mask_model()
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    denoiser = WindowedLogits(model, padding_mask, target_mask, LENGTH, False)
    sampler = ktd.DiffusionSampler(num_steps=3, temperature=0.0, num_samples=1,
                                   strategy=strategy, ordered_stop=True)
    # Half the vocabulary stops: most positions wait for their left neighbor,
    # and the last step still commits every one left.
    stops = list(range(model.backbone.vocabulary_size // 2))
    tokens, _, _, _ = sampler(denoiser, ids, target_mask, model.backbone.vocabulary_size,
                           model=model, noise=model.noise, stop_token_ids=stops)
    tokens = ops.convert_to_numpy(tokens)
    target = ops.convert_to_numpy(target_mask).astype(bool)
    assert not (tokens[target] == mask_id).any()
    np.testing.assert_array_equal(tokens[~target], ids[~target])


def test_packed_generate_orders_by_the_stop_ids_it_is_given():
    """Packed inputs have no preprocessor to name the end and padding
    tokens: `generate(..., stop_token_ids=ids)` hands them to the sampler
    (for `ordered_stop`); without them it gets none."""
    seen = []

    class Recording(ktd.DiffusionSampler):
        def __call__(self, *args, stop_token_ids=None, **kwargs):
            seen.append(stop_token_ids)  # Once per trace.
            return super().__call__(*args, stop_token_ids=stop_token_ids, **kwargs)

    model, _ = mask_model()
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    model.compile(sampler=Recording(num_steps=3, temperature=0.0, num_samples=1,
                                    strategy="confidence", ordered_stop=True))
    packed = {"token_ids": ids, "padding_mask": padding_mask, "target_mask": target_mask}
    out = model.generate(packed, stop_token_ids=[0, 1])
    assert [tuple(s) if s is not None else None for s in seen] == [(0, 1)]
    target = target_mask.astype(bool)
    np.testing.assert_array_equal(out["token_ids"][~target], ids[~target])
    model.generate(packed)
    assert seen[-1] is None


def test_sampler_config_round_trip():
    sampler = ktd.DiffusionSampler(num_steps=7, strategy="threshold", threshold=0.8,
                                   block_size=32, cache=True, early_stop=True)
    again = ktd.DiffusionSampler.from_config(sampler.get_config())
    assert again.get_config() == sampler.get_config()
    with pytest.raises(ValueError, match="strategy"):
        ktd.DiffusionSampler(strategy="greedy")
    with pytest.raises(ValueError, match="block_size"):
        ktd.DiffusionSampler(block_size=0)
    bounded = ktd.DiffusionSampler(strategy="entropy_bound", entropy_bound=0.5)
    assert ktd.DiffusionSampler.from_config(bounded.get_config()).entropy_bound == 0.5
    for bad in (0, -1.0, "1", True):
        with pytest.raises(ValueError, match="entropy_bound"):
            ktd.DiffusionSampler(strategy="entropy_bound", entropy_bound=bad)


def test_sampling_follows_the_tempered_distribution():
    probs = np.array([0.1, 0.6, 0.05, 0.25], "float32")
    logits = np.log(np.tile(probs, (20000, 1)))
    for temperature in (1.0, 0.5):
        sampler = ktd.DiffusionSampler(temperature=temperature, seed=0)
        drawn = ops.convert_to_numpy(sampler.sample(logits))
        expected = probs ** (1 / temperature) / np.sum(probs ** (1 / temperature))
        np.testing.assert_allclose(np.bincount(drawn, minlength=4) / 20000, expected, atol=0.012)


TRAJECTORY_OPTIONS = {
    "resample, best of 2": dict(temperature=1.0, num_samples=2),
    "argmax_unrolled": dict(strategy="argmax_unrolled", keep_fraction=0.5),
    "blocks + cache": dict(block_size=4, cache=True, temperature=1.0),
    "early stop": dict(early_stop=True),
    "threshold, mask noise": dict(strategy="threshold", threshold=0.5, early_stop=True),
    "confidence, blocks, mask noise": dict(strategy="confidence", block_size=4, cache=True),
}


@pytest.mark.parametrize("option", sorted(TRAJECTORY_OPTIONS))
def test_trajectory_is_the_decoding_generate_runs(option):
    options = TRAJECTORY_OPTIONS[option]
    mask = "mask noise" in option
    keras.utils.set_random_seed(3)
    model = ktd.AR2DiffConverter(
        attention="prefix", target_length=8, sequence_length=16, add_mask_token=mask,
    ).convert(tiny_causal_lm("gpt2"))

    def seeded():  # The same sampler, seed restarted.
        model.compile(sampler=ktd.DiffusionSampler(
            **{"num_steps": 3, "temperature": 0.0, "num_samples": 1, "seed": 7, **options}))

    prompt = "the cat"
    seeded()
    packed = model.preprocessor.generate_preprocess([prompt])
    expected = model.generate(dict(packed))
    seeded()
    trajectory = model.denoising_trajectory(prompt)
    states = trajectory["token_ids"]
    target = ops.convert_to_numpy(packed["target_mask"])[0].astype(bool)
    # The last state is generate()'s output, the first the noise's start.
    np.testing.assert_array_equal(states[-1], expected["token_ids"][0])
    if mask:
        assert (states[0][target] == model.noise.mask_token_id).all()
    # Only the target changes, and one state per decoding step at most
    # (blocks: steps per block); no state is a cache refresh's repeat
    # unless the step itself changed nothing.
    assert (states[:, ~target] == states[0][~target]).all()
    num_blocks = -(-target.sum() // options.get("block_size", target.sum()))
    assert 2 <= len(states) <= num_blocks * 3 + 1
    if not options.get("early_stop") and "threshold" not in option:
        assert len(states) == num_blocks * 3 + 1
    passes = int(expected["num_forward_passes"][0])
    refreshes = num_blocks - 1 if options.get("cache") else 0
    assert len(states) - 1 == passes - int(bool(options.get("cache"))) - refreshes
    assert trajectory["texts"][-1] == model.preprocessor.generate_postprocess(
        expected, strip_prompt=True)[0]
    assert len(trajectory["tokens"]) == len(states)


def test_trajectory_steps_are_checked_as_generate_checks_them():
    keras.utils.set_random_seed(3)
    model = ktd.AR2DiffConverter(
        attention="prefix", target_length=8, sequence_length=16,
    ).convert(tiny_causal_lm("gpt2"))
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, temperature=0.0, num_samples=1, seed=7))
    assert len(model.denoising_trajectory("the cat", num_steps=2)["token_ids"]) == 3
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="num_steps"):
            model.denoising_trajectory("the cat", num_steps=bad)


def test_block_decoding_ends_once_every_row_has_ended():
    # Vocabulary of 6: 0 padding, 1 end, 2 content, 5 the mask. Two prompt
    # tokens, then 12 target positions: 3 blocks of 4. The model is sure of
    # content up to each row's end token, of padding after it.
    length, vocabulary, mask = 14, 6, 5

    def logits_for(ends):
        probs = np.full((len(ends), length, vocabulary), 0.01, "float32")
        for row, end in enumerate(ends):
            for t in range(12):
                token = 2 if t < end else 1 if t == end else 0
                probs[row, 2 + t, token] = 0.95
        logits = np.log(probs)
        return lambda token_ids: ops.convert_to_tensor(logits)

    def decode(ends, stops):
        sampler = ktd.DiffusionSampler(num_steps=4, num_samples=1, temperature=0.0,
                                       strategy="threshold", block_size=4, seed=0)
        ids = np.full((len(ends), length), 3, "int32")
        target = np.zeros((len(ends), length), bool)
        target[:, 2:] = True
        tokens, _, passes, row_passes = sampler(
            logits_for(ends), ids, target, vocabulary, noise=ktd.MaskNoise(mask),
            stop_token_ids=stops)
        if len(ends) > 1:  # Each row's share: what decoding it alone makes.
            alone = [decode([end], stops)[1] for end in ends]
            assert ops.convert_to_numpy(row_passes).tolist() == alone
            assert int(passes) >= max(alone)
        return ops.convert_to_numpy(tokens)[:, 2:].tolist(), int(passes)

    # Both rows end in block 1 (target positions 5 and 7). Without stop ids
    # every block is decoded: block 0 in one step; block 1 in two (ordered
    # stop: the end waits for the content before it; without stop ids it
    # does not, one step); block 2 in one.
    full, full_passes = decode([5, 7], stops=None)
    assert full_passes == 3
    assert full[0] == [2] * 5 + [1] + [0] * 6
    # With them, block 2 is never decoded: it is filled with each row's end.
    ended, passes = decode([5, 7], stops=[0, 1])
    assert passes == 1 + 2
    assert ended[0] == [2] * 5 + [1] + [0, 0] + [1] * 4
    assert ended[1] == [2] * 7 + [1] + [1] * 4
    # A row whose output has not ended keeps the loop going.
    tokens, passes = decode([5, 11], stops=[0, 1])
    assert passes == 1 + 2 + 2
    assert decode([11], stops=[0, 1])[1] == 1 + 1 + 2  # Alone: block 1 takes one step.
    assert tokens == [[2] * 5 + [1] + [0, 0] + [1] * 4, [2] * 11 + [1]]
