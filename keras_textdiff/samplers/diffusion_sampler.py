"""The paper's parallel denoising decoder, as a compiled keras-hub sampler."""

import keras
from keras import ops
from keras import random
from keras_hub.samplers import Sampler


def token_cross_entropy(logits, token_ids, mask):
    """Mean cross-entropy of `token_ids` under `logits` over `mask`, per row."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    token_log_probs = ops.take_along_axis(
        log_probs, ops.expand_dims(token_ids, -1), axis=-1
    )[..., 0]
    mask = ops.cast(mask, "float32")
    total = -ops.sum(token_log_probs * mask, axis=-1)
    return total / ops.maximum(ops.sum(mask, axis=-1), 1.0)


@keras.saving.register_keras_serializable(package="keras_textdiff")
class DiffusionSampler(Sampler):
    """Parallel denoising, as in the paper (simplified SUNDAE decoding).

    The target region starts as uniformly random tokens. Each of `num_steps`
    steps runs the model once over the whole sequence and resamples *every*
    target position from the predicted distribution at `temperature`
    (0 means argmax). `num_samples` candidates are decoded in parallel for
    each prompt and the one with the best model score is returned: the lowest
    cross-entropy between the last step's input tokens and its logits (a
    candidate the model would not change is a confident one).

    The loop is one `ops.while_loop`, compiled with the rest of `generate()`
    (XLA on JAX and TensorFlow, eager on torch). The step count is a loop
    bound, not a shape, so changing `num_steps` does not recompile.

    Args:
        num_steps: int >= 1. Denoising steps. Defaults to 10 (the paper).
        temperature: float >= 0. Sampling temperature of each step.
            Defaults to 0.2 (the paper).
        num_samples: int >= 1. Candidates decoded per prompt. Defaults to 8.
        seed: int or `None`. Seed of the random initial tokens and sampling.

    Example:
    ```python
    model.compile(
        sampler=keras_textdiff.DiffusionSampler(
            num_steps=10, temperature=0.2, num_samples=8, seed=0
        )
    )
    model.generate(["def fibonacci(n):"], max_length=64)
    ```
    """

    def __init__(self, num_steps=10, temperature=0.2, num_samples=8, seed=None):
        _check_int("num_steps", num_steps)
        _check_int("num_samples", num_samples)
        if not isinstance(temperature, (int, float)) or temperature < 0:
            raise ValueError(
                "`temperature` must be a number >= 0 (0 means argmax). "
                f"Received: {temperature!r}"
            )
        super().__init__(temperature=float(temperature))
        self.num_steps = num_steps
        self.num_samples = num_samples
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def initial_tokens(self, token_ids, target_mask, vocabulary_size):
        """Uniformly random tokens on the target region, the prefix kept."""
        noise = random.randint(
            ops.shape(token_ids),
            0,
            vocabulary_size,
            dtype="int32",
            seed=self.seed_generator,
        )
        return ops.where(target_mask, noise, ops.cast(token_ids, "int32"))

    def sample(self, logits):
        """One token per position at `temperature` (Gumbel-max trick)."""
        if self.temperature == 0:
            return ops.cast(ops.argmax(logits, axis=-1), "int32")
        uniform = random.uniform(
            ops.shape(logits), minval=1e-9, maxval=1.0, seed=self.seed_generator
        )
        gumbel = -ops.log(-ops.log(uniform))
        scaled = ops.cast(logits, "float32") / self.temperature + gumbel
        return ops.cast(ops.argmax(scaled, axis=-1), "int32")

    def step(self, logits_fn, token_ids, target_mask):
        """One denoising step: returns the new tokens and the input's score."""
        logits = logits_fn(token_ids)
        score = token_cross_entropy(logits, token_ids, target_mask)
        new_tokens = ops.where(target_mask, self.sample(logits), token_ids)
        return new_tokens, score

    def __call__(
        self,
        logits_fn,
        token_ids,
        target_mask,
        vocabulary_size,
        num_steps=None,
        model=None,
        initial_tokens=None,
    ):
        """Denoise a batch.

        Args:
            logits_fn: `token_ids -> logits`, the model's forward pass.
            token_ids: int `[batch, length]`; prefix tokens are kept.
            target_mask: bool `[batch, length]`, the positions to generate.
            vocabulary_size: int, for the random initial tokens.
            num_steps: int scalar (a tensor is fine: no recompile). Defaults
                to `self.num_steps`.
            model: the model, so JAX can thread its variables through the
                loop.
            initial_tokens: int `[batch, length]` or `None`: where decoding
                starts (all-mask for mask noise). Defaults to uniformly
                random target tokens.

        Returns:
            `(token_ids, scores)`: the decoded tokens and each row's score
            (lower is better).
        """
        num_steps = self.num_steps if num_steps is None else num_steps
        target_mask = ops.cast(target_mask, "bool")
        if initial_tokens is None:
            tokens = self.initial_tokens(token_ids, target_mask, vocabulary_size)
        else:
            tokens = ops.cast(initial_tokens, "int32")
        score = ops.zeros(ops.shape(tokens)[:1], "float32")
        step = ops.convert_to_tensor(0, "int32")
        num_steps = ops.cast(num_steps, "int32")

        def cond(tokens, score, step):
            return step < num_steps

        def body(tokens, score, step):
            tokens, score = self.step(logits_fn, tokens, target_mask)
            return tokens, score, step + 1

        tokens, score, _ = self.run_loop(
            cond, body, loop_vars=(tokens, score, step), model=model
        )
        return tokens, score

    def get_config(self):
        return {
            "num_steps": self.num_steps,
            "temperature": self.temperature,
            "num_samples": self.num_samples,
            "seed": self.seed,
        }


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: {value!r}")
