"""The paper's parallel denoising decoder, as a compiled keras-hub sampler."""

import keras
from keras import ops
from keras import random
from keras_hub.samplers import Sampler

from keras_textdiff.attention import block_ids
from keras_textdiff.noise import UniformNoise
from keras_textdiff.samplers.unmasking import MASK_STRATEGIES
from keras_textdiff.samplers.unmasking import STRATEGIES
from keras_textdiff.samplers.unmasking import is_stop
from keras_textdiff.samplers.unmasking import select


def token_cross_entropy(logits, token_ids, mask):
    """Mean cross-entropy of `token_ids` under `logits` over `mask`, per row."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    token_log_probs = ops.take_along_axis(
        log_probs, ops.expand_dims(token_ids, -1), axis=-1
    )[..., 0]
    mask = ops.cast(mask, "float32")
    total = -ops.sum(token_log_probs * mask, axis=-1)
    return total / ops.maximum(ops.sum(mask, axis=-1), 1.0)


def candidate_score(logits, tokens, targets, mask_token_id=None):
    """A candidate's score, lower is better: the mean cross-entropy between a
    step's input `tokens` and its `logits` over the `targets` (masks left
    out). A candidate the model would not change is a confident one."""
    if mask_token_id is not None:
        targets = ops.logical_and(targets, tokens != mask_token_id)
    return token_cross_entropy(logits, tokens, targets)


def argmax(logits):
    """`argmax` over the last axis, as int32.

    On PyTorch's CPU kernels, `topk(k=1)` finds the same index about 2x
    faster than `argmax` (and 3x in bfloat16): for a 124M-parameter GPT-2
    over 1,040 positions in bfloat16 that saves 60 ms, 12% of a step.
    """
    if keras.config.backend() == "torch":
        return ops.cast(ops.top_k(logits, 1)[1][..., 0], "int32")
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


class FullLogits:
    """A plain `token_ids -> logits` function as a one-window denoiser."""

    def __init__(self, logits_fn, length):
        self.logits_fn = logits_fn
        self.window = length

    def initial_cache(self, token_ids):
        return ops.zeros((), "float32")

    def __call__(self, token_ids, start, cache):
        return self.logits_fn(token_ids), cache


@keras.saving.register_keras_serializable(package="keras_textdiff")
class DiffusionSampler(Sampler):
    """Parallel denoising: the paper's decoder, and the faster ones since.

    By default this is the paper's decoder (simplified SUNDAE decoding): the
    target region starts as uniformly random tokens (all masks for a model
    trained with `MaskNoise`); each of `num_steps` steps runs the model once
    and resamples *every* target position from the predicted distribution at
    `temperature` (0 means argmax). `num_samples` candidates are decoded in
    parallel for each prompt and the one with the best model score is
    returned: the lowest cross-entropy between the last step's input tokens
    and its logits (a candidate the model would not change is a confident
    one).

    Faster decoding, each an option (the quality cost of each is measured by
    `benchmarks/fast_decoding.py`):

    - `strategy`: which positions a step rewrites (`samplers.unmasking`):
      `"resample"` (the paper), `"argmax_unrolled"` (SUNDAE: keep the
      `keep_fraction` most confident tokens, resample the rest), and for
      mask-noise models `"confidence"`, `"entropy"`, `"margin"` remasking
      (commit the most confident masked positions at an even pace) or
      `"threshold"` (commit every position whose token has probability
      >= `threshold`, at least one per step; Fast-dLLM) or `"left_to_right"`
      (the same without gaps: the first masked position and those right
      after it while each is >= `threshold` and not the token sampled
      just before it) or
      `"entropy_bound"` (commit the surest positions while their summed
      entropy stays <= `entropy_bound`, at least one per step).
    - `block_size`: semi-autoregressive decoding: each row's target is
      decoded `block_size` positions at a time (counted from its first
      target position), left to right, `num_steps` steps per block; a block
      stops changing once the next one starts. Left `None`, a model with
      `attention="block"` is decoded in its own blocks (as it was trained:
      each block given clean earlier ones), any other model's target at
      once. Given `stop_token_ids`, a
      row whose finished block holds one has ended: its later blocks are
      not decoded but filled with that token (the output is cut there
      anyway), and decoding ends once every row has ended, as keras-hub's
      samplers stop at the end token.
    - `cache`: keep the keys and values of positions that are not being
      decoded (the prompt, finished blocks) instead of recomputing them
      every step; only the current window runs through the model. Exact for
      `attention="prefix"` models' prompts and for block-diffusion models
      (`attention="block"`) decoded with their own `block_size`; an
      approximation otherwise (see `keras_textdiff.kv_cache`).
    - `early_stop`: a row stops (within a block) once a step changes none of
      its tokens; the loop ends when every row has stopped. Best with a low
      `temperature`: sampling noise keeps tokens changing.
    - `ordered_stop` (on by default): for the mask strategies, an end or
      padding token is committed only once no masked position before it
      would get content, so the output's length follows its content.
      Without it a short answer's end token is often more confident than
      the answer itself, is committed first and cuts the answer to a word
      (SmolLM2 on SQuAD: `benchmarks/results/quality-smollm2-cpu.md`).

    Whatever the options, only positions that can still change are projected
    to the vocabulary (the target region, or the current block).

    Decoding is two nested `ops.while_loop`s, compiled with the rest of
    `generate()` (XLA on JAX and TensorFlow, eager on torch): an outer loop
    over blocks (one without `block_size`), an inner loop of up to
    `num_steps` denoising steps on the block (`step`: sample, let the
    strategy pick what changes, mark the rows that stop), and with `cache`
    one refresh pass after each block but the last, which stores the
    finished block's keys and values. The step count is a loop bound, not a
    shape, so changing `num_steps` does not recompile.
    `generate()` on packed inputs returns `"num_forward_passes"` too: the
    model calls the loop made (the work early stop and threshold save), and
    `"row_forward_passes"`: the calls each prompt was still decoding in,
    what it would cost alone (a batch runs until its slowest row is done).

    Args:
        num_steps: int >= 1. Denoising steps (per block with `block_size`).
            Defaults to 10 (the paper).
        temperature: float >= 0. Sampling temperature of each step.
            Defaults to 0.2 (the paper).
        num_samples: int >= 1. Candidates decoded per prompt. Defaults to 8.
        seed: int or `None`. Seed of the random initial tokens and sampling.
        strategy: one of `samplers.unmasking.STRATEGIES`. Defaults to
            `"resample"`.
        keep_fraction: float in `[0, 1]`, for `"argmax_unrolled"`.
        threshold: float in `(0, 1]`, for `"threshold"` and `"left_to_right"`.
        block_size: int >= 1 or `None`: the model's own blocks for
            `attention="block"` models, else the whole target at once.
        cache: bool. Key/value cache of the positions outside the window.
        early_stop: bool. Stop rows whose tokens stopped changing.
        ordered_stop: bool. Commit stop tokens only after the content before
            them (mask strategies). Defaults to `True`.
        entropy_bound: float > 0, for `"entropy_bound"`: the summed entropy
            (nats) of the tokens one step may commit.

    Example:
    ```python
    model.compile(
        sampler=keras_textdiff.DiffusionSampler(
            num_steps=10, temperature=0.2, num_samples=8, seed=0
        )
    )
    model.generate(["def fibonacci(n):"], max_length=64)

    # Fast-dLLM-style decoding of a mask-noise model: blocks of 32, a cache,
    # and every token above 0.9 probability committed at once.
    model.compile(sampler=keras_textdiff.DiffusionSampler(
        num_steps=32, num_samples=1, strategy="threshold", threshold=0.9,
        block_size=32, cache=True,
    ))
    ```
    """

    def __init__(
        self,
        num_steps=10,
        temperature=0.2,
        num_samples=8,
        seed=None,
        strategy="resample",
        keep_fraction=0.5,
        threshold=0.9,
        block_size=None,
        cache=False,
        early_stop=False,
        ordered_stop=True,
        entropy_bound=1.0,
    ):
        _check_int("num_steps", num_steps)
        _check_int("num_samples", num_samples)
        if block_size is not None:
            _check_int("block_size", block_size)
        if not isinstance(temperature, (int, float)) or temperature < 0:
            raise ValueError(
                "`temperature` must be a number >= 0 (0 means argmax). "
                f"Received: {temperature!r}"
            )
        if strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: {strategy!r}")
        if not 0 <= keep_fraction <= 1:
            raise ValueError(f"`keep_fraction` must be in [0, 1]. Received: {keep_fraction!r}")
        if not 0 < threshold <= 1:
            raise ValueError(f"`threshold` must be in (0, 1]. Received: {threshold!r}")
        if isinstance(entropy_bound, bool) or not isinstance(entropy_bound, (int, float)) \
                or not entropy_bound > 0:
            raise ValueError(
                f"`entropy_bound` must be a number > 0 (nats). Received: {entropy_bound!r}"
            )
        super().__init__(temperature=float(temperature))
        self.num_steps = num_steps
        self.num_samples = num_samples
        self.seed = seed
        self.strategy = strategy
        self.keep_fraction = float(keep_fraction)
        self.threshold = float(threshold)
        self.entropy_bound = float(entropy_bound)
        self.block_size = block_size
        self.cache = bool(cache)
        self.early_stop = bool(early_stop)
        self.ordered_stop = bool(ordered_stop)
        self.seed_generator = random.SeedGenerator(seed)
        # Made here, not inside a compiled loop (it owns a seed variable).
        self.default_noise = UniformNoise()

    def sample(self, logits):
        """One token per position at `temperature`.

        Inverse-CDF sampling: one uniform number per position, not one per
        vocabulary entry as the Gumbel-max trick needs (on CPU, drawing
        `positions x vocabulary` random numbers costs more than the model's
        own output projection).
        """
        if self.temperature == 0:
            return argmax(logits)
        probs = ops.softmax(ops.cast(logits, "float32") / self.temperature, axis=-1)
        cdf = ops.cumsum(probs, axis=-1)
        uniform = random.uniform(
            ops.shape(logits)[:-1] + (1,), seed=self.seed_generator
        )
        index = ops.sum(ops.cast(cdf < uniform * cdf[..., -1:], "int32"), axis=-1)
        return ops.minimum(index, ops.shape(logits)[-1] - 1)

    def decoding_block_size(self, model=None):
        """The block size decoding `model` uses: this sampler's
        `block_size`, else the model's own for `attention="block"` (it was
        trained to denoise each block given clean earlier ones), else
        `None`, the whole target at once."""
        if self.block_size is not None:
            return self.block_size
        if getattr(model, "attention", None) != "block":
            return None
        # A block as long as the target is the whole target: the window is
        # then rounded as without blocks, so few prompt lengths compile.
        target_length = getattr(getattr(model, "preprocessor", None), "target_length", None)
        if target_length is not None and target_length <= model.block_size:
            return None
        return model.block_size

    def window_size(self, length, first_target, last_first_target=None, model=None):
        """The static window for sequences of `length` whose targets start
        at positions `first_target` (the earliest row) to
        `last_first_target` (the latest; defaults to the earliest): a block
        of every row and the position before them, or the whole target
        region and the position before it, rounded up to a multiple of 64
        so that few prompt lengths need their own compile. (Batch prompts
        of similar lengths: blocks make the window longer by the spread.)
        `model`: the model decoded, whose blocks a sampler without
        `block_size` follows."""
        block_size = self.decoding_block_size(model)
        if block_size is not None:
            spread = 0 if last_first_target is None else last_first_target - first_target
            return min(block_size + spread + 1, length)
        needed = length - first_target + 1
        return min(-(-needed // 64) * 64, length)

    def num_blocks(self, target_span, length, model=None):
        """How many blocks decode a target spanning `target_span` positions
        of sequences of `length` (ints or tensors) in `model`: one without
        a block size."""
        block_size = self.decoding_block_size(model) or length
        return (target_span + block_size - 1) // block_size

    def __call__(
        self,
        denoiser,
        token_ids,
        target_mask,
        vocabulary_size,
        num_steps=None,
        model=None,
        noise=None,
        stop_token_ids=None,
        record=None,
    ):
        """Denoise a batch.

        Args:
            denoiser: a `kv_cache.WindowedLogits`, or a plain
                `token_ids -> logits` function (one window, no cache).
            token_ids: int `[batch, length]`; prefix tokens are kept.
            target_mask: bool `[batch, length]`, the positions to generate.
            vocabulary_size: int, for the random initial tokens.
            num_steps: int scalar (a tensor is fine: no recompile). Defaults
                to `self.num_steps`.
            model: the model, so JAX can thread its variables through the
                loop.
            noise: the model's `keras_textdiff.noise.Noise`: where decoding
                starts (random tokens, or all masks) and its mask token.
                Defaults to `UniformNoise()`.
            stop_token_ids: the ids that end an output (end, padding), for
                `ordered_stop` and to end block decoding once every row's
                output has ended.
            record: `None`, or an int: room for that many states (at least
                the number of decoding steps plus one). The loop then also
                records the tokens it starts from and those after each
                decoding step (a cache refresh pass changes nothing and is
                not a step), the trajectory of this very decoding.

        Returns:
            `(token_ids, scores, num_forward_passes, row_forward_passes)`:
            the decoded tokens, each row's score (lower is better), the
            model calls made, and each row's share of them `[batch]`: the
            calls it was still decoding in, which is what decoding it alone
            would make (a batch runs until its slowest row is done); with
            `record`, also the states `[record, batch, length]` and how many
            of them were written.
        """
        noise = self.default_noise if noise is None else noise
        mask_token_id = noise.mask_token_id
        if self.strategy in MASK_STRATEGIES and mask_token_id is None:
            raise ValueError(
                f'`strategy="{self.strategy}"` decodes a model trained with '
                "`MaskNoise` (it unmasks positions); this model has no mask "
                'token. Use "resample" or "argmax_unrolled".'
            )
        stop_ids = list(stop_token_ids or [])
        length = ops.shape(token_ids)[1]
        if not hasattr(denoiser, "window"):
            denoiser = FullLogits(denoiser, length)
        window = denoiser.window
        num_steps = self.num_steps if num_steps is None else num_steps
        num_steps = ops.cast(num_steps, "int32")
        target_mask = ops.cast(target_mask, "bool")
        tokens = noise.initial_tokens(
            token_ids, target_mask, vocabulary_size, seed=self.seed_generator
        )
        batch = ops.shape(tokens)[0]

        # Blocks count each row's target positions from its own first one,
        # as `attention="block"` models do: a row's block b is the model's
        # block b, so with a cache the finished blocks' keys and values are
        # exact. The (static) window starts one position before the earliest
        # row's block (never a candidate: with shifted prediction its logits
        # are its own output), clamped into the sequence.
        blocks = block_ids(target_mask, self.decoding_block_size(model) or length)
        num_blocks = ops.max(blocks) + 1
        positions = ops.arange(length, dtype="int32")[None, :]

        def block_window(block):
            """Where `block`'s window starts, and which of its positions
            are the block's targets (block ids are -1 off the target)."""
            low = ops.min(ops.where(blocks == block, positions, length))
            start = ops.clip(low - 1, 0, length - window)
            return start, ops.slice(blocks, [0, start], [batch, window]) == block

        def recorded_after(recorded, tokens, replace=False):
            """The trajectory with `tokens` appended (if one is recorded), or
            with its last state replaced by them."""
            if not recorded:
                return recorded
            states, count = recorded
            count = count - 1 if replace else count
            return ops.slice_update(states, [count, 0, 0], tokens[None]), count + 1

        def ended_in(block, tokens, ended):
            """Rows whose output has ended by the end of `block`: a stop
            token in it. Their later blocks would hold only what the output
            drops (`generate_postprocess` cuts it at the first stop token),
            so they are not decoded but filled with that stop token, as
            keras-hub's samplers stop a row at its end token."""
            if not stop_ids:
                return tokens, ended
            stops = ops.logical_and(is_stop(tokens, stop_ids), blocks >= 0)
            now = ops.logical_and(ops.any(ops.logical_and(stops, blocks == block), axis=1), ~ended)
            first = ops.argmax(ops.cast(stops, "int32"), axis=1)[:, None]
            fill = ops.take_along_axis(tokens, first, axis=1)
            later = ops.logical_and(now[:, None], blocks > block)
            return ops.where(later, fill, tokens), ops.logical_or(ended, now)

        def decode_block(block, tokens, cache, score, passes, row_passes, ended, *recorded):
            """The inner loop: up to `num_steps` steps on `block` (rows that
            ended in an earlier block stay as they are), then the cache's
            refresh pass."""
            start, targets = block_window(block)

            def steps_left(tokens, cache, score, done, step, passes, row_passes, *recorded):
                return ops.logical_and(step < num_steps, ~ops.all(done))

            def denoising_step(tokens, cache, score, done, step, passes, row_passes, *recorded):
                row_passes = row_passes + ops.cast(~done, "int32")  # The rows this call is for.
                logits, cache = denoiser(tokens, start, cache)
                current = ops.slice(tokens, [0, start], [batch, window])
                new, done = self.step(
                    logits, current, targets, done, num_steps - step, mask_token_id,
                    stop_ids if self.ordered_stop else None,
                )
                if self.num_samples > 1:  # An ended row keeps its last block's score.
                    score = ops.where(
                        ended, score, candidate_score(logits, current, targets, mask_token_id)
                    )
                tokens = ops.slice_update(tokens, [0, start], new)
                recorded = recorded_after(recorded, tokens)
                return (tokens, cache, score, done, step + 1, passes + 1, row_passes, *recorded)

            zero = ops.convert_to_tensor(0, "int32")
            tokens, cache, score, _, _, passes, row_passes, *recorded = self.run_loop(
                steps_left, denoising_step, model=model,
                loop_vars=(tokens, cache, score, ended, zero, passes, row_passes, *recorded),
            )
            tokens, ended = ended_in(block, tokens, ended)
            recorded = recorded_after(recorded, tokens, replace=True)  # The fill, if any.
            more = ops.logical_and(block < num_blocks - 1, ~ops.all(ended))
            if self.cache:
                # The refresh pass: the finished block's keys and values from
                # its final tokens, for the blocks after it (none after the
                # last, or once every row has ended). The pass changes no
                # token and is not a step.
                cache = ops.cond(
                    more, lambda: denoiser(tokens, start, cache)[1], lambda: cache
                )
                passes = passes + ops.cast(more, "int32")
                row_more = ops.logical_and(block < num_blocks - 1, ~ended)
                row_passes = row_passes + ops.cast(row_more, "int32")
            return (block + 1, tokens, cache, score, passes, row_passes, ended, *recorded)

        def blocks_left(block, tokens, cache, score, passes, row_passes, ended, *recorded):
            return ops.logical_and(block < num_blocks, ~ops.all(ended))

        cache = denoiser.initial_cache(tokens)
        passes = ops.convert_to_tensor(int(self.cache), "int32")  # The cache's full pass.
        score = ops.zeros((batch,), "float32")
        row_passes = ops.full((batch,), passes, "int32")
        ended = ops.zeros((batch,), "bool")
        loop_vars = (ops.convert_to_tensor(0, "int32"), tokens, cache, score, passes, row_passes,
                     ended)
        if record is not None:  # The states buffer and how many are written.
            states = ops.zeros((record,) + tuple(ops.shape(tokens)), tokens.dtype)
            states = ops.slice_update(states, [0, 0, 0], tokens[None])
            loop_vars += (states, ops.convert_to_tensor(1, "int32"))
        _, tokens, _, score, passes, row_passes, _, *recorded = self.run_loop(
            blocks_left, decode_block, loop_vars=loop_vars, model=model
        )
        return (tokens, score, passes, row_passes, *recorded)

    def step(self, logits, current, targets, done, steps_left, mask_token_id, stop_ids):
        """One denoising step on a window: `(new tokens, done)`.

        The rows' target positions (`targets`) that are not `done` may
        change; the strategy picks which take the tokens sampled from
        `logits`. A row is done once its block holds no mask (mask
        strategies) or, with `early_stop`, once a step changed none of its
        tokens.
        """
        candidates = ops.logical_and(targets, ~done[:, None])
        samples = self.sample(logits)
        rewrite = select(
            self.strategy, logits, current, samples, candidates, steps_left,
            mask_token_id, self.keep_fraction, self.threshold, stop_ids,
            self.entropy_bound,
        )
        new = ops.where(rewrite, samples, current)
        if self.early_stop:
            changed = ops.any(ops.logical_and(candidates, new != current), axis=-1)
            done = ops.logical_or(done, ~changed)
        if self.strategy in MASK_STRATEGIES:
            masked = ops.any(ops.logical_and(targets, new == mask_token_id), axis=-1)
            done = ops.logical_or(done, ~masked)
        return new, done

    def get_config(self):
        return {
            "num_steps": self.num_steps,
            "temperature": self.temperature,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "strategy": self.strategy,
            "keep_fraction": self.keep_fraction,
            "threshold": self.threshold,
            "entropy_bound": self.entropy_bound,
            "block_size": self.block_size,
            "cache": self.cache,
            "early_stop": self.early_stop,
            "ordered_stop": self.ordered_stop,
        }


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: {value!r}")
