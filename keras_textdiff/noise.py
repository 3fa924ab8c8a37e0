"""Corruption processes q(x_t | x_0) and the training objective each one implies.

A `Noise` owns everything a model or sampler needs to know about it:

- `call`: corrupt the target region in-graph inside the train step;
- `initial_tokens`: where decoding starts (random tokens, or all masks);
- `mask_token_id`: the absorbing token, `None` for uniform noise;
- `loss`: its training objective, from the logits the model returns.

Two kinds, side by side (as MDLM's `diffusion.py` keeps them):

| | corruption | decoding starts from | objective |
|---|---|---|---|
| `UniformNoise` | random tokens (SUNDAE) | random tokens | L(1:2) |
| `MaskNoise` | `[MASK]` (MDLM, LLaDA) | all masks | 1/t-weighted masked CE (ELBO) |
"""

import keras
from keras import ops
from keras import random

UNROLL_HELP = (
    "`unroll` is the probability of SUNDAE's second, unrolled pass L(2) in a "
    "training step: 1.0 always (the paper), 0.0 never (one pass, about half "
    "the cost), or in between"
)


def cross_entropy(labels, logits):
    """Per-position cross-entropy `[batch, length]`, computed in float32."""
    return keras.losses.sparse_categorical_crossentropy(
        labels, ops.cast(logits, "float32"), from_logits=True
    )


def weighted_mean(values, weights):
    """`sum(values * weights) / sum(weights)` (0 when there are no weights)."""
    weights = ops.cast(weights, "float32")
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def sundae_loss(labels, logits, unrolled_logits, weights, unrolled=1.0):
    """SUNDAE's unrolled denoising loss L(1:2) = L(1) + L(2).

    L(1) is the cross-entropy of the logits computed from the corrupted input
    against the clean tokens; L(2) the same after one unrolled denoising step
    (`DiffusionDecoder.call`). Both average over the target region
    (`weights`), as in the paper (PAPER.md, "Loss"). `unrolled_logits=None`
    gives the one-pass loss L(1); `unrolled` (0 or 1, a tensor is fine) says
    whether this step's `unrolled_logits` were computed at all.
    """
    loss = weighted_mean(cross_entropy(labels, logits), weights)
    if unrolled_logits is not None:
        loss_2 = weighted_mean(cross_entropy(labels, unrolled_logits), weights)
        loss = loss + ops.cast(unrolled, "float32") * loss_2
    return loss


def masked_diffusion_loss(labels, logits, masked, rate, weights):
    """The masked-diffusion ELBO (MDLM Eq. 10; LLaDA Eq. 3).

    `-E_t [1/t * sum_i 1[x_t^i = MASK] log p(x_0^i | x_t)]`, normalized by
    the number of target positions: the cross-entropy of masked positions
    only, each weighted by the inverse masking rate `t` of its example.

    Args:
        labels: int `[batch, length]`, the clean tokens.
        logits: float `[batch, length, vocab]`.
        masked: bool `[batch, length]`, the positions the noise masked.
        rate: float `[batch, 1]`, each example's masking rate `t`.
        weights: float `[batch, length]`, the target region (and any
            sample weights).
    """
    per_token = cross_entropy(labels, logits) * ops.cast(masked, "float32") / rate
    weights = ops.cast(weights, "float32")
    return ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)


class Noise(keras.layers.Layer):
    """Base of the corruption processes: a corruption and its objective.

    Subclasses implement `corrupt` and `initial_tokens`, and may override
    `loss` and `mask_token_id`.

    Args:
        unroll: float in `[0, 1]`. The probability of SUNDAE's unrolled
            second pass in a training step, for the L(1:2) objective.
        seed: int or `None`. Seed of the noise's random stream.
    """

    #: The absorbing token, or `None` when there is none.
    mask_token_id = None

    def __init__(self, unroll=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(unroll, bool) or not isinstance(unroll, (int, float)):
            raise ValueError(f"{UNROLL_HELP}. Received: unroll={unroll!r}")
        if not 0.0 <= unroll <= 1.0:
            raise ValueError(f"{UNROLL_HELP}. Received: unroll={unroll!r}")
        self.unroll = float(unroll)
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def rate(self, batch_size):
        """Each example's corruption rate `t ~ Uniform(0, 1)`, `[batch, 1]`.

        Kept away from 0 so that `1/t` stays finite.
        """
        rate = random.uniform((batch_size, 1), seed=self.seed_generator)
        return ops.maximum(rate, 1e-3)

    def choose(self, token_ids, target_mask):
        """The positions to corrupt, and the rates they were drawn with."""
        rate = self.rate(ops.shape(token_ids)[0])
        coin = random.uniform(ops.shape(token_ids), seed=self.seed_generator)
        return ops.logical_and(coin < rate, ops.cast(target_mask, "bool")), rate

    def one_block(self, blocks, count=None):
        """Block diffusion's training region: one block of each row, drawn
        uniformly among the row's first `count` blocks (int `[batch, 1]`;
        default: all of them). `blocks`: int `[batch, length]`, each
        position's block, -1 outside the target (see
        `attention.block_ids`). Returns a bool `[batch, length]` mask."""
        if count is None:
            count = ops.max(blocks, axis=1, keepdims=True) + 1
        draw = random.uniform(ops.shape(count), seed=self.seed_generator)
        chosen = ops.cast(draw * ops.cast(count, "float32"), "int32")
        chosen = ops.minimum(chosen, count - 1)
        return ops.logical_and(blocks == chosen, blocks >= 0)

    def call(self, token_ids, target_mask, vocabulary_size):
        """Corrupt the target region: `(noisy_ids, corrupted, rate)`."""
        corrupted, rate = self.choose(token_ids, target_mask)
        noisy = self.corrupt(ops.cast(token_ids, "int32"), corrupted, vocabulary_size)
        return noisy, corrupted, rate

    def corrupt(self, token_ids, corrupted, vocabulary_size):
        raise NotImplementedError

    def initial_tokens(self, token_ids, target_mask, vocabulary_size, seed=None):
        """The fully corrupted target region, where decoding starts."""
        raise NotImplementedError

    @property
    def unroll_probability(self):
        """The probability that a training step takes the unrolled pass."""
        return self.unroll

    def unrolls(self):
        """Whether this training step takes the unrolled pass (a bool tensor)."""
        return random.uniform((), seed=self.seed_generator) < self.unroll_probability

    def loss(self, labels, outputs, weights):
        """The training objective from `DiffusionDecoder.call`'s outputs.

        Defaults to L(1:2) (L(1) alone where the step did not unroll).
        """
        return sundae_loss(
            labels, outputs["logits"], outputs.get("unrolled_logits"), weights,
            outputs.get("unrolled", 1.0),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"unroll": self.unroll, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="keras_textdiff")
class UniformNoise(Noise):
    """SUNDAE's uniform corruption of the target region; objective L(1:2).

    For each example a rate `r ~ Uniform(0, 1)` is drawn, and each target
    token is replaced, with probability `r`, by a token drawn uniformly from
    the vocabulary (PAPER.md, "Corruption"). Prefix positions are never
    touched. Decoding starts from uniformly random target tokens. Works under
    `jit` on every backend; the randomness comes from a
    `keras.random.SeedGenerator`, so it is reproducible for a fixed `seed`.

    Args:
        unroll: float in `[0, 1]`. Probability of SUNDAE's second, unrolled
            pass per training step: 1.0 (the default) trains with L(1:2),
            as the paper does; 0.0 with L(1) alone, about half the cost.
        seed: int or `None`. Seed of the noise's random stream.

    Call arguments:
        token_ids: int tensor `[batch, length]`, the clean tokens.
        target_mask: bool tensor `[batch, length]`, true where noise may go.
        vocabulary_size: int. Random tokens are drawn from
            `[0, vocabulary_size)`.

    Returns `(noisy_ids, corrupted, rate)`: the corrupted tokens, where they
    were corrupted, and each example's rate `[batch, 1]`.

    Example:
    ```python
    noise = keras_textdiff.UniformNoise(seed=0)
    token_ids = np.arange(12).reshape(2, 6)
    target_mask = np.repeat(np.arange(6)[None, :] >= 2, 2, 0)  # 2 prefix tokens
    noisy, corrupted, rate = noise(token_ids, target_mask, vocabulary_size=100)
    ```
    """

    def corrupt(self, token_ids, corrupted, vocabulary_size):
        random_tokens = random.randint(
            ops.shape(token_ids), 0, vocabulary_size, dtype="int32",
            seed=self.seed_generator,
        )
        return ops.where(corrupted, random_tokens, token_ids)

    def initial_tokens(self, token_ids, target_mask, vocabulary_size, seed=None):
        seed = self.seed_generator if seed is None else seed
        noise = random.randint(
            ops.shape(token_ids), 0, vocabulary_size, dtype="int32", seed=seed
        )
        return ops.where(ops.cast(target_mask, "bool"), noise, ops.cast(token_ids, "int32"))


MASK_OBJECTIVES = ("elbo", "sundae")


@keras.saving.register_keras_serializable(package="keras_textdiff")
class MaskNoise(Noise):
    """Absorbing ("mask") corruption of the target region (MDLM, LLaDA).

    For each example a rate `t ~ Uniform(0, 1)` is drawn and each target
    token becomes `mask_token_id` with probability `t`. A `DiffusionDecoder`
    with this noise never predicts the mask token and starts decoding from an
    all-mask target. An AR model gets a mask token from
    `AR2DiffConverter(add_mask_token=True)`.

    Args:
        mask_token_id: int, the id of the mask token.
        objective: `"elbo"` (the default): the masked-diffusion ELBO, the
            cross-entropy of masked positions weighted by `1/t`
            (`masked_diffusion_loss`; MDLM, LLaDA); or `"sundae"`: L(1:2)
            over the whole target region, as for uniform noise.
        unroll: float in `[0, 1]`, for `objective="sundae"` (see
            `UniformNoise`).
        seed: int or `None`.

    Example:
    ```python
    noise = keras_textdiff.MaskNoise(mask_token_id=99, seed=0)
    noisy, masked, rate = noise(token_ids, target_mask, vocabulary_size=100)
    ```
    """

    def __init__(self, mask_token_id, objective="elbo", unroll=1.0, seed=None, **kwargs):
        super().__init__(unroll=unroll, seed=seed, **kwargs)
        if isinstance(mask_token_id, bool) or not isinstance(mask_token_id, int):
            raise ValueError(
                f"`mask_token_id` must be an int. Received: {mask_token_id!r}"
            )
        if objective not in MASK_OBJECTIVES:
            raise ValueError(
                f"`objective` must be one of {MASK_OBJECTIVES}. Received: {objective!r}"
            )
        self.mask_token_id = mask_token_id
        self.objective = objective

    def corrupt(self, token_ids, corrupted, vocabulary_size):
        return ops.where(corrupted, self.mask_token_id, token_ids)

    def initial_tokens(self, token_ids, target_mask, vocabulary_size=None, seed=None):
        return ops.where(
            ops.cast(target_mask, "bool"),
            self.mask_token_id,
            ops.cast(token_ids, "int32"),
        )

    @property
    def unroll_probability(self):
        return 0.0 if self.objective == "elbo" else self.unroll

    def loss(self, labels, outputs, weights):
        if self.objective == "sundae":
            return super().loss(labels, outputs, weights)
        return masked_diffusion_loss(
            labels, outputs["logits"], outputs["corrupted"], outputs["rate"], weights
        )

    def get_config(self):
        config = super().get_config()
        config.update({"mask_token_id": self.mask_token_id, "objective": self.objective})
        return config
