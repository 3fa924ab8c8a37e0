import numpy as np
from keras import ops

from keras_textdiff import UniformNoise


def test_noise_never_touches_prefix_and_rate_is_uniform():
    batch, length, prefix = 2000, 1000, 100
    vocabulary_size = 10**6  # a random token equals the original ~never
    token_ids = np.zeros((batch, length), "int32")
    target_mask = np.broadcast_to(np.arange(length) >= prefix, (batch, length))
    noisy = ops.convert_to_numpy(
        UniformNoise(seed=3)(
            token_ids, target_mask, vocabulary_size=vocabulary_size
        )
    )
    changed = noisy != token_ids
    assert not changed[:, :prefix].any()
    # Each example's corruption fraction estimates its own r ~ U(0, 1)
    # (std ~0.016 per example at 900 target tokens).
    fraction = changed[:, prefix:].mean(axis=1)
    assert abs(fraction.mean() - 0.5) < 0.03  # 4.6 standard errors
    # Kolmogorov-Smirnov distance to U(0, 1): 0.04 is ~p < 0.005 at n=2000,
    # loose enough for the per-example estimation noise.
    ordered = np.sort(fraction)
    cdf = np.arange(1, batch + 1) / batch
    assert np.max(np.abs(ordered - cdf)) < 0.04
    # Replacement tokens are drawn from the whole vocabulary.
    assert noisy.max() > vocabulary_size * 0.99


def test_noise_is_seeded():
    token_ids = np.arange(64, dtype="int32").reshape(4, 16)
    mask = np.ones((4, 16), bool)
    a = UniformNoise(seed=7)(token_ids, mask, vocabulary_size=50)
    b = UniformNoise(seed=7)(token_ids, mask, vocabulary_size=50)
    np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
