"""Corruption processes q(x_t | x_0), applied in-graph inside the train step."""

import keras
from keras import ops
from keras import random


@keras.saving.register_keras_serializable(package="keras_textdiff")
class UniformNoise(keras.layers.Layer):
    """SUNDAE's uniform corruption of the target region.

    For each example a rate `r ~ Uniform(0, 1)` is drawn, and each target
    token is replaced, with probability `r`, by a token drawn uniformly from
    the vocabulary (PAPER.md, "Corruption"). Prefix positions are never
    touched. Works under `jit` on every backend; the randomness comes from a
    `keras.random.SeedGenerator`, so it is reproducible for a fixed `seed`.

    Args:
        seed: int or `None`. Seed of the noise's random stream.

    Call arguments:
        token_ids: int tensor `[batch, length]`, the clean tokens.
        target_mask: bool tensor `[batch, length]`, true where noise may go.
        vocabulary_size: int. Random tokens are drawn from
            `[0, vocabulary_size)`.

    Example:
    ```python
    noise = keras_textdiff.UniformNoise(seed=0)
    token_ids = np.arange(12).reshape(2, 6)
    target_mask = np.arange(6)[None, :] >= 2  # the first 2 tokens are prefix
    noisy = noise(token_ids, np.repeat(target_mask, 2, 0), vocabulary_size=100)
    ```
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def call(self, token_ids, target_mask, vocabulary_size):
        batch_size = ops.shape(token_ids)[0]
        rate = random.uniform((batch_size, 1), seed=self.seed_generator)
        coin = random.uniform(ops.shape(token_ids), seed=self.seed_generator)
        replace = ops.logical_and(coin < rate, ops.cast(target_mask, "bool"))
        random_tokens = random.randint(
            ops.shape(token_ids),
            0,
            vocabulary_size,
            dtype="int32",
            seed=self.seed_generator,
        )
        return ops.where(replace, random_tokens, token_ids)

    def compute_output_shape(self, token_ids_shape, *args, **kwargs):
        return token_ids_shape

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="keras_textdiff")
class MaskNoise(keras.layers.Layer):
    """Absorbing ("mask") corruption of the target region (MDLM, LLaDA).

    Like `UniformNoise`, but a corrupted token becomes `mask_token_id`
    instead of a random token: for each example a rate `r ~ Uniform(0, 1)`
    is drawn and each target token is masked with probability `r`. A
    `DiffusionDecoder` with this noise never predicts the mask token and
    starts decoding from an all-mask target. An AR model gets a mask token
    from `AR2DiffConverter(add_mask_token=True)`.

    Args:
        mask_token_id: int, the id of the mask token.
        seed: int or `None`.
    """

    def __init__(self, mask_token_id, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_token_id, bool) or not isinstance(mask_token_id, int):
            raise ValueError(
                f"`mask_token_id` must be an int. Received: {mask_token_id!r}"
            )
        self.mask_token_id = mask_token_id
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def call(self, token_ids, target_mask, vocabulary_size=None):
        del vocabulary_size
        batch_size = ops.shape(token_ids)[0]
        rate = random.uniform((batch_size, 1), seed=self.seed_generator)
        coin = random.uniform(ops.shape(token_ids), seed=self.seed_generator)
        replace = ops.logical_and(coin < rate, ops.cast(target_mask, "bool"))
        return ops.where(replace, self.mask_token_id, token_ids)

    def fully_corrupted(self, token_ids, target_mask):
        """The target region all masked: where decoding starts."""
        return ops.where(
            ops.cast(target_mask, "bool"),
            self.mask_token_id,
            ops.cast(token_ids, "int32"),
        )

    def compute_output_shape(self, token_ids_shape, *args, **kwargs):
        return token_ids_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mask_token_id": self.mask_token_id, "seed": self.seed})
        return config
