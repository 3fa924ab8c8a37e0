import numpy as np
import pytest
from keras import ops

from keras_textdiff import MaskNoise
from keras_textdiff import UniformNoise
from keras_textdiff.noise import masked_diffusion_loss
from keras_textdiff.noise import sundae_loss


def test_noise_never_touches_prefix_and_rate_is_uniform():
    batch, length, prefix = 2000, 1000, 100
    vocabulary_size = 10**6  # a random token equals the original ~never
    token_ids = np.zeros((batch, length), "int32")
    target_mask = np.broadcast_to(np.arange(length) >= prefix, (batch, length))
    noisy, corrupted, rate = UniformNoise(seed=3)(
        token_ids, target_mask, vocabulary_size=vocabulary_size
    )
    noisy, corrupted = ops.convert_to_numpy(noisy), ops.convert_to_numpy(corrupted)
    changed = noisy != token_ids
    assert not changed[:, :prefix].any()
    # `corrupted` says where the noise went (a random token may equal the old).
    assert (changed <= corrupted).all() and changed.sum() > 0.99 * corrupted.sum()
    # Each example's corruption fraction estimates its own r ~ U(0, 1)
    # (std ~0.016 per example at 900 target tokens).
    fraction = changed[:, prefix:].mean(axis=1)
    assert abs(fraction.mean() - 0.5) < 0.03  # 4.6 standard errors
    np.testing.assert_allclose(fraction, ops.convert_to_numpy(rate)[:, 0], atol=0.08)
    # Kolmogorov-Smirnov distance to U(0, 1): 0.04 is ~p < 0.005 at n=2000,
    # loose enough for the per-example estimation noise.
    ordered = np.sort(fraction)
    cdf = np.arange(1, batch + 1) / batch
    assert np.max(np.abs(ordered - cdf)) < 0.04
    # Replacement tokens are drawn from the whole vocabulary.
    assert noisy.max() > vocabulary_size * 0.99


@pytest.mark.parametrize(
    "make", [lambda seed: UniformNoise(seed=seed), lambda seed: MaskNoise(99, seed=seed)],
    ids=["uniform", "mask"],
)
def test_noise_is_seeded_and_the_seed_matters(make):
    batch, length, prefix = 8, 1000, 100
    token_ids = np.tile(np.arange(length, dtype="int32") % 50, (batch, 1))
    target_mask = np.broadcast_to(np.arange(length) >= prefix, (batch, length))

    def stream(noise, calls=3):
        """`calls` successive draws of one layer: `(noisy, corrupted, rate)`."""
        return [
            [ops.convert_to_numpy(t) for t in noise(token_ids, target_mask, vocabulary_size=50)]
            for _ in range(calls)
        ]

    noise = make(7)
    rebuilt = type(noise).from_config(noise.get_config())  # A saved model's noise.
    first = stream(noise)
    # The same seed, the same stream: every draw of every call.
    for again in (stream(make(7)), stream(rebuilt)):
        for draw, same in zip(first, again):
            for a, b in zip(draw, same):
                np.testing.assert_array_equal(a, b)
    # A stream, not one draw repeated: each training step gets new noise.
    for a, b in zip(first, first[1:]):
        assert (a[1] != b[1]).any() and (a[2] != b[2]).all()
    # Another seed, another stream.
    for a, b in zip(first, stream(make(8))):
        assert (a[1] != b[1]).any() and (a[2] != b[2]).all()

    # Each draw is the corruption the layer claims: target positions only,
    # each example at its own rate, the rest untouched.
    for noisy, corrupted, rate in first:
        assert rate.shape == (batch, 1) and ((rate > 0) & (rate < 1)).all()
        assert not corrupted[:, :prefix].any()
        np.testing.assert_array_equal(noisy[~corrupted], token_ids[~corrupted])
        # 900 target tokens per example: the fraction's std is <= 0.017.
        np.testing.assert_allclose(corrupted[:, prefix:].mean(axis=1), rate[:, 0], atol=0.07)


def test_mask_noise_masks_exactly_the_corrupted_target_positions():
    token_ids = np.arange(400, dtype="int32").reshape(4, 100) % 50
    target = np.broadcast_to(np.arange(100) >= 30, (4, 100))
    noise = MaskNoise(mask_token_id=99, seed=1)
    noisy, corrupted, _ = (ops.convert_to_numpy(t) for t in noise(token_ids, target, vocabulary_size=100))
    np.testing.assert_array_equal(noisy == 99, corrupted)
    np.testing.assert_array_equal(noisy[~corrupted], token_ids[~corrupted])
    assert not corrupted[:, :30].any() and corrupted.any()
    start = ops.convert_to_numpy(noise.initial_tokens(token_ids, target))
    np.testing.assert_array_equal(start, np.where(target, 99, token_ids))


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _numpy_problem(seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, (3, 5))
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    unrolled = rng.normal(size=(3, 5, 7)).astype("float32")
    weights = (rng.random((3, 5)) < 0.7).astype("float32")
    masked = rng.random((3, 5)) < 0.5
    rate = rng.uniform(0.1, 1.0, (3, 1)).astype("float32")
    return labels, logits, unrolled, weights, masked, rate


def _numpy_ce(labels, logits):
    return -np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0]


def test_sundae_loss_matches_numpy():
    labels, logits, unrolled, weights, _, _ = _numpy_problem()
    mean = lambda v: (v * weights).sum() / weights.sum()  # noqa: E731
    expected = mean(_numpy_ce(labels, logits)) + mean(_numpy_ce(labels, unrolled))
    got = ops.convert_to_numpy(sundae_loss(labels, logits, unrolled, weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # One pass, and a step that did not unroll, are L(1) alone.
    one = ops.convert_to_numpy(sundae_loss(labels, logits, None, weights))
    np.testing.assert_allclose(one, mean(_numpy_ce(labels, logits)), rtol=1e-5)
    skipped = sundae_loss(labels, logits, unrolled, weights, unrolled=0.0)
    np.testing.assert_allclose(ops.convert_to_numpy(skipped), one, rtol=1e-6)


def test_masked_diffusion_loss_matches_numpy():
    labels, logits, _, weights, masked, rate = _numpy_problem(1)
    # -1/L * sum_i 1[masked_i] log p(x_0^i) / t, L the target positions.
    expected = (_numpy_ce(labels, logits) * masked / rate * weights).sum() / weights.sum()
    got = masked_diffusion_loss(labels, logits, masked, rate, weights)
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-5)
    # Through the noise object: the ELBO by default, L(1:2) on request.
    outputs = {"logits": logits, "corrupted": masked, "rate": rate,
               "unrolled_logits": logits}
    elbo = MaskNoise(9).loss(labels, outputs, weights)
    np.testing.assert_allclose(ops.convert_to_numpy(elbo), expected, rtol=1e-5)
    sundae = MaskNoise(9, objective="sundae").loss(labels, outputs, weights)
    np.testing.assert_allclose(
        ops.convert_to_numpy(sundae),
        ops.convert_to_numpy(sundae_loss(labels, logits, logits, weights)),
        rtol=1e-6,
    )


def test_unroll_probability_follows_the_objective():
    assert UniformNoise().unroll_probability == 1.0
    assert UniformNoise(unroll=0.25).unroll_probability == 0.25
    assert MaskNoise(3).unroll_probability == 0.0  # the ELBO is one pass
    assert MaskNoise(3, objective="sundae", unroll=0.5).unroll_probability == 0.5
    noise = UniformNoise(unroll=0.25, seed=0)
    draws = [bool(ops.convert_to_numpy(noise.unrolls())) for _ in range(400)]
    assert 0.18 < np.mean(draws) < 0.32


@pytest.mark.parametrize("unroll", [-0.1, 1.5, True, "always", None])
def test_bad_unroll_is_refused(unroll):
    with pytest.raises(ValueError, match="unroll"):
        UniformNoise(unroll=unroll)


def test_bad_mask_objective_is_refused():
    with pytest.raises(ValueError, match="objective"):
        MaskNoise(3, objective="mdlm")


def test_config_round_trip():
    noise = MaskNoise(5, objective="sundae", unroll=0.5, seed=2)
    again = MaskNoise.from_config(noise.get_config())
    assert (again.mask_token_id, again.objective, again.unroll, again.seed) == (5, "sundae", 0.5, 2)
