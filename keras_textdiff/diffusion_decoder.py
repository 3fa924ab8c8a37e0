"""`DiffusionDecoder`: a keras-hub `CausalLM` that trains and decodes by diffusion."""

import warnings

import keras
import numpy as np
from keras import ops
from keras_hub.models import CausalLM

from keras_textdiff import attention as attention_lib
from keras_textdiff.diffusion_preprocessor import special_token_ids
from keras_textdiff.kv_cache import WindowedLogits
from keras_textdiff.kv_cache import cached_task
from keras_textdiff.noise import UniformNoise
from keras_textdiff.samplers.diffusion_sampler import DiffusionSampler
from keras_textdiff.samplers.unmasking import is_stop


def check_sequence_length(backbone, length, name="sequence_length"):
    """Raise a clear error if `backbone` cannot take `length` tokens.

    Checked against the backbone's position table, if it has one (GPT-2 and
    OPT learn one position embedding per position; rotary models do not).
    """
    if not isinstance(length, int) or length < 4:
        raise ValueError(f"`{name}` must be an int >= 4. Received: {length!r}")
    limit = getattr(backbone, "max_sequence_length", None)
    if limit is not None and length > limit:
        raise ValueError(
            f"`{name}` = {length} exceeds the backbone's `max_sequence_length` "
            f"= {limit} (its position table). Use `{name}` <= {limit}, or a "
            f"backbone pretrained with `max_sequence_length` >= {length}."
        )


def check_vocabulary(backbone, tokenizer):
    """Raise a clear error if `tokenizer` makes ids `backbone` cannot embed.

    An id past the embedding table is no error in a lookup on every backend
    (JAX clamps it to the last row), so a larger tokenizer would train and
    generate on the wrong tokens without a word. A tokenizer whose vocabulary
    is not loaded yet (a preset's, loaded after its layers are made) is
    checked by `DiffusionDecoder.from_preset` once it is.
    """
    try:
        size = tokenizer.vocabulary_size()
    except ValueError:  # No vocabulary yet: see above.
        return
    if size > backbone.vocabulary_size:
        raise ValueError(
            f"The tokenizer has {size} tokens, more than the backbone's "
            f"`vocabulary_size` = {backbone.vocabulary_size}: ids >= "
            f"{backbone.vocabulary_size} have no embedding. Pair the backbone "
            "with the tokenizer it was trained with, or use a backbone with "
            f"`vocabulary_size` >= {size}."
        )


@keras.saving.register_keras_serializable(package="keras_textdiff")
class DiffusionDecoder(CausalLM):
    """A text diffusion model over a keras-hub decoder-only backbone.

    The backbone is a Transformer identical to its autoregressive version
    except that attention is bidirectional, so every target position can
    change in parallel. Training corrupts the target with `noise` and
    minimizes its objective (by default SUNDAE's unrolled loss L(1:2) on
    uniformly corrupted targets, the paper's; `MaskNoise` trains with the
    masked-diffusion ELBO); `generate()` starts from the noise's fully
    corrupted target and denoises every position at once for a few steps
    (`DiffusionSampler`).

    The loss is built in: `compile()` needs no `loss`, and reports
    `accuracy` on the corrupted target tokens (of the first pass).

    Args:
        backbone: a keras-hub decoder-only backbone (see
            `keras_textdiff.attention.supported_backbone_names()`). Its
            layers are shared, not copied.
        preprocessor: a `keras_textdiff.DiffusionPreprocessor`, or `None`.
        attention: `"bidirectional"` (the paper), `"prefix"` (prefix tokens
            attend only to the prefix), `"block"` (the prefix attends
            causally, as in the AR model; target blocks of `block_size`
            attend both ways inside and to earlier blocks), or `"causal"`.
        block_size: int, the target positions per block, for
            `attention="block"` only. With several blocks this is block
            diffusion (BD3-LM, Fast-dLLM v2): training denoises one block
            per example given its clean earlier blocks
            (`trained_region`), and `generate()` decodes it block by
            block, in these blocks unless the sampler sets its own
            `block_size`; `DiffusionSampler(cache=True)` adds an exact
            key/value cache.
        noise: the corruption process and its objective (`UniformNoise`:
            SUNDAE's L(1:2); `MaskNoise`: the masked-diffusion ELBO).
            Defaults to `UniformNoise()`.
        sampler: the decoder used by `generate()`. Defaults to
            `DiffusionSampler()` (10 steps, temperature 0.2, 8 samples).
        shifted_prediction: bool. If true, position `i`'s prediction is read
            from the backbone's output at `i - 1`, as in autoregressive
            models, so a converted AR head keeps its trained role
            (DiffuLLaMA, Dream). Off by default (the paper).
        annealing_steps: int or `None`. If set, training ramps attention
            from causal to `attention` over this many steps by opening
            random links (DiffuGPT's attention-mask annealing; see
            `keras_textdiff.attention.AttentionAnnealing`). Off by default.

    Example:
    ```python
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
        num_heads=2, hidden_dim=64, intermediate_dim=128,
        max_sequence_length=64,
    )
    model = keras_textdiff.DiffusionDecoder(
        backbone, keras_textdiff.DiffusionPreprocessor(tokenizer, 64)
    )
    model.fit({"prefix": prompts, "target": answers}, batch_size=64)
    model.generate(["cat"], max_length=16)

    # Save and load.
    model.save_to_preset("./my_diffusion_model")
    model = keras_textdiff.DiffusionDecoder.from_preset("./my_diffusion_model")
    ```
    """

    def __init__(
        self,
        backbone,
        preprocessor=None,
        attention="bidirectional",
        noise=None,
        sampler=None,
        shifted_prediction=False,
        annealing_steps=None,
        block_size=None,
        **kwargs,
    ):
        # === Layers ===
        attention_lib.make_switchable(backbone)
        target_length = None if preprocessor is None else preprocessor.target_length
        attention_lib.check_mode(attention, block_size, target_length)
        if preprocessor is not None:
            check_vocabulary(backbone, preprocessor.tokenizer)
        if annealing_steps is not None and attention == "causal":
            raise ValueError(
                "`annealing_steps` ramps attention from causal to "
                '`attention`; it needs `attention="bidirectional"` or '
                '`"prefix"`, not `"causal"`.'
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.noise = noise if noise is not None else UniformNoise()
        self.attention = attention
        self.block_size = block_size
        self.shifted_prediction = bool(shifted_prediction)
        self.annealing_steps = annealing_steps
        self.annealing = (
            None
            if annealing_steps is None
            else attention_lib.AttentionAnnealing(annealing_steps)
        )

        # === Functional Model ===
        # Like every keras-hub task this is a functional model (Keras injects
        # `Functional` into the task hierarchy anyway). The graph records the
        # denoiser, `token_ids -> logits`; `call` below adds the training path.
        inputs = backbone.input
        # (With prefix attention the trace treats every position as target.)
        outputs = self.logits(
            inputs["token_ids"], inputs["padding_mask"], inputs["padding_mask"]
        )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.sampler = _get_sampler(sampler)

    def set_lengths(self, sequence_length=None, target_length=None, block_size=None):
        """Train and generate at other lengths than the model was built with.

        The weights do not depend on the lengths (within the backbone's
        position table), so a model adapted at one length can be fine-tuned
        and decoded on a task at another, as AR2Diff_N is: one adaptation,
        then each task's fine-tuning. Arguments left `None` keep their value.
        Every length is checked before any changes; the traced training and
        generation functions are dropped, since they hold the old ones.

        Args:
            sequence_length: int, the length of every packed sequence.
            target_length: int, the length of the target region.
            block_size: int, the target positions per block, for
                `attention="block"`; a value >= `target_length` is one
                block over the whole target.

        Example:
        ```python
        model = keras_textdiff.DiffusionDecoder.from_preset("./adapted")
        model.set_lengths(sequence_length=320, target_length=128, block_size=8)
        model.fit(code_examples, batch_size=8)
        ```
        """
        from keras_textdiff.diffusion_preprocessor import check_lengths

        if self.preprocessor is None and (sequence_length, target_length) != (None, None):
            raise ValueError(
                "This model has no preprocessor, so no lengths to set: "
                "pack token ids at the lengths you want, and pass only "
                "`block_size`."
            )
        if self.preprocessor is not None:
            if sequence_length is None:
                sequence_length = self.preprocessor.sequence_length
            if target_length is None:
                target_length = self.preprocessor.target_length
            check_sequence_length(self.backbone, sequence_length)
            check_lengths(sequence_length, target_length)
        block_size = self.block_size if block_size is None else block_size
        attention_lib.check_mode(self.attention, block_size, target_length)
        if self.preprocessor is not None:
            self.preprocessor.sequence_length = sequence_length
            self.preprocessor.target_length = target_length
        self.block_size = block_size
        self.train_function = self.test_function = self.predict_function = None
        self.generate_function = None

    def attention_mask(self, padding_mask, target_mask=None, training=False):
        """This model's `[batch, query, key]` mask (`None`: causal)."""
        mask = attention_lib.attention_mask(
            self.attention, padding_mask, target_mask, self.block_size
        )
        if self.annealing is not None:
            mask = self.annealing(mask, padding_mask, training=training)
        return mask

    def logits(
        self,
        token_ids,
        padding_mask,
        target_mask=None,
        attention_mask="auto",
        visibility=None,
        positions=None,
    ):
        """Float32 vocabulary logits of `token_ids` under this model's attention.

        Args:
            token_ids, padding_mask, target_mask: `[batch, length]` tensors.
            attention_mask: `"auto"` (this model's inference mask) or a
                precomputed `[batch, query, key]` mask.
            visibility: float in `[0, 1]` or `None`. Anneal the mask as at
                that point of training: 0 is causal, 1 is this model's mask.
            positions: int `[batch, window]` or `None`. Predict only these
                positions (`[batch, window, vocab]` logits): the vocabulary
                projection is then paid only where the loss reads.
        """
        if isinstance(attention_mask, str):
            attention_mask = self.attention_mask(padding_mask, target_mask)
        if visibility is not None and attention_mask is not None:
            attention_mask = attention_lib.annealed_mask(
                attention_mask, padding_mask, visibility
            )
        if positions is not None:
            # With shifted prediction, position i is read at i - 1 (i >= 1:
            # position 0 is never a target).
            read = positions - int(self.shifted_prediction)
            logits = attention_lib.backbone_logits(
                self.backbone, token_ids, padding_mask, attention_mask,
                positions=read,
            )
            return self.finish_logits(ops.cast(logits, "float32"), shift=False)
        logits = attention_lib.backbone_logits(
            self.backbone, token_ids, padding_mask, attention_mask
        )
        logits = ops.cast(logits, "float32")
        return self.finish_logits(logits)

    def finish_logits(self, logits, shift=True):
        """The backbone's logits of consecutive positions -> predictions.

        `shift=False`: the logits were already read at the shifted positions.
        """
        if self.shifted_prediction and shift:
            # Position i reads the output at i - 1 (position 0 is always
            # prefix, so its own logits just fill the slot).
            logits = ops.concatenate([logits[:, :1], logits[:, :-1]], axis=1)
        mask_token_id = self.noise.mask_token_id
        size = self.output_vocabulary_size
        if mask_token_id is None and size >= ops.shape(logits)[-1]:
            return logits
        ids = ops.arange(ops.shape(logits)[-1])
        # Never predicted: the mask token (an input symbol only), and ids
        # past the tokenizer (real models pad their embedding: Qwen, Gemma).
        never = ids >= size
        if mask_token_id is not None:
            never = ops.logical_or(never, ids == mask_token_id)
        # Pushed down to a finite value of the logits' own dtype: -1e9 is
        # -inf in float16, and -inf * 0 is NaN in scores.
        lowest = -1e9
        if keras.backend.standardize_dtype(logits.dtype) == "float16":
            lowest = float(np.finfo("float16").min)
        return ops.where(never, lowest, logits)

    @property
    def output_vocabulary_size(self):
        """The ids this model writes, `[0, n)`: the backbone's vocabulary,
        or the tokenizer's when it is smaller (a padded embedding); a mask
        token past the tokenizer is only ever an input."""
        size = self.backbone.vocabulary_size
        tokenizer = getattr(self.preprocessor, "tokenizer", None)
        if tokenizer is None:
            return size
        try:
            count = tokenizer.vocabulary_size()
        except (ValueError, AttributeError, TypeError):  # No vocabulary yet.
            return size
        # The special ids are found by listing the vocabulary: once per
        # tokenizer, not at every trace or eager step that asks.
        key, known = getattr(self, "_tokenizer_size", (None, None))
        if key != (id(tokenizer), count):
            key = (id(tokenizer), count)
            known = max([count] + [i + 1 for i in special_token_ids(tokenizer)])
            object.__setattr__(self, "_tokenizer_size", (key, known))  # Untracked.
        return min(size, known)

    def call(self, inputs, training=None, mask=None):
        """Logits for `inputs`; with a `"target_mask"`, the training outputs.

        Given `{"token_ids", "padding_mask"}` this returns logits
        `[batch, length, vocab]`. Given a `"target_mask"` too (the training
        batches of `DiffusionPreprocessor`), it corrupts the target region
        with `self.noise`, runs the model, and, as the noise's objective
        asks, takes one unrolled denoising step and runs it again (SUNDAE).
        It returns what `self.noise.loss` reads: `"logits"`, `"corrupted"`,
        `"rate"`, `"positions"` (where the logits are, when the preprocessor
        has a `target_length`) and maybe `"unrolled_logits"`/`"unrolled"`.
        """
        inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}
        token_ids = ops.cast(inputs["token_ids"], "int32")
        padding_mask = inputs["padding_mask"]
        if "target_mask" not in inputs:
            return self.logits(token_ids, padding_mask)
        target_mask = ops.cast(inputs["target_mask"], "bool")
        trained = self.trained_region(target_mask, token_ids)
        noisy, corrupted, rate = self.noise(
            token_ids, trained, vocabulary_size=self.output_vocabulary_size
        )
        mask = self.attention_mask(padding_mask, target_mask, training=training)
        positions = self.loss_positions(target_mask)
        logits = self.logits(noisy, padding_mask, target_mask, mask, positions=positions)
        outputs = {
            "logits": logits,
            "corrupted": _gather(corrupted, positions),
            "rate": rate,
        }
        if positions is not None:
            outputs["positions"] = positions
        if trained is not target_mask:  # The loss reads the trained block only.
            outputs["trained"] = _gather(ops.cast(trained, "float32"), positions)

        probability = self.noise.unroll_probability
        if probability == 0:
            return outputs

        def unrolled():
            return self.unrolled_logits(
                token_ids, padding_mask, trained, logits, positions, mask
            )

        if probability == 1:
            outputs["unrolled_logits"] = unrolled()
        else:  # Only the steps that unroll pay for the second pass.
            take = self.noise.unrolls()
            outputs["unrolled_logits"] = ops.cond(
                take, unrolled, lambda: ops.zeros_like(logits)
            )
            outputs["unrolled"] = ops.cast(take, "float32")
        return outputs

    def trained_region(self, target_mask, token_ids):
        """The target positions a training step corrupts and scores.

        The whole target, except in block diffusion (`attention="block"`
        with more than one block): there each row trains one block, drawn
        uniformly by the noise among its output blocks (`output_blocks`),
        and its earlier blocks stay clean, as decoding sees them when it
        writes that block. (BD3-LM trains every block in one pass over a
        doubled sequence, noisy copy beside clean copy; one block per
        example is an unbiased estimate of the same per-block loss over the
        output blocks, at the cost of one pass over the plain sequence.)
        """
        if self.attention != "block":
            return target_mask
        target_length = None if self.preprocessor is None else self.preprocessor.target_length
        if target_length is not None and target_length <= self.block_size:
            return target_mask  # One block: nothing to choose.
        blocks = attention_lib.block_ids(target_mask, self.block_size)
        return self.noise.one_block(blocks, self.output_blocks(blocks, token_ids))

    def output_blocks(self, blocks, token_ids):
        """Each row's count of blocks up to the one holding its first stop
        token (end or padding), `[batch, 1]`; all its blocks where the target
        holds none, or without a preprocessor to name the stop tokens.

        The blocks after that one hold only padding, which the output drops
        (`generate_postprocess` cuts it at the stop tokens). Drawn among all blocks, a
        short answer's block trains in only a few examples: SQuAD answers in
        32 positions, blocks of 8, one in four (`benchmarks/results/
        quality-smollm2-*.md`, AR2Diff_0-block8).
        """
        if self.preprocessor is None:
            return None
        stops = ops.logical_and(is_stop(token_ids, self.preprocessor.stop_token_ids), blocks >= 0)
        last = ops.max(blocks, axis=1, keepdims=True)
        return ops.min(ops.where(stops, blocks, last), axis=1, keepdims=True) + 1

    def loss_positions(self, target_mask):
        """The `[batch, target_length]` positions the loss reads, or `None`.

        With a preprocessor that packs a fixed `target_length`, training
        projects only those positions to the vocabulary; otherwise (the
        target runs to the end of the sequence) every position.
        """
        target_length = None if self.preprocessor is None else self.preprocessor.target_length
        if target_length is None:
            return None
        length = ops.shape(target_mask)[1]
        index = ops.arange(length, dtype="int32")[None, :]
        first = ops.min(ops.where(target_mask, index, length), axis=1, keepdims=True)
        return first + ops.arange(target_length, dtype="int32")[None, :]

    def unrolled_logits(
        self, token_ids, padding_mask, target_mask, logits, positions=None,
        attention_mask="auto",
    ):
        """Logits after one unrolled denoising step (SUNDAE, Eq. 5).

        The unrolled input is the argmax of the first `logits` (temperature
        0, as in the paper) on the target region, the prefix kept clean. No
        gradient flows through that sample.
        """
        denoised = ops.cast(ops.argmax(ops.stop_gradient(logits), axis=-1), "int32")
        if positions is not None:
            denoised = _scatter(denoised, positions, ops.shape(token_ids)[1])
        denoised = ops.where(target_mask, denoised, token_ids)
        return self.logits(
            denoised, padding_mask, target_mask, attention_mask, positions=positions
        )

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="auto",
        **kwargs,
    ):
        """Configure training and decoding.

        Args:
            optimizer: `"auto"` (AdamW, learning rate 1e-3, the paper's
                fine-tuning rate; clipped at global norm 1), or any Keras
                optimizer.
            loss: must be `"auto"`: the loss is the noise's objective
                (`self.noise.loss`: L(1:2) for uniform noise, the
                masked-diffusion ELBO for mask noise).
            weighted_metrics: `"auto"` reports target-token `accuracy`.
            sampler: `"auto"` keeps the current sampler (a fresh
                `DiffusionSampler()` at first), or a `DiffusionSampler`.
            **kwargs: passed to `keras.Model.compile`.
        """
        if loss not in ("auto", None):
            raise ValueError(
                "`DiffusionDecoder` has its loss built in (its noise's objective); "
                f"call `compile()` without `loss`. Received: loss={loss!r}"
            )
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(1e-3, global_clipnorm=1.0)
        if weighted_metrics == "auto":
            weighted_metrics = [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            ]
        keras.Model.compile(
            self, optimizer=optimizer, weighted_metrics=weighted_metrics, **kwargs
        )
        if sampler != "auto" or getattr(self, "sampler", None) is None:
            self.sampler = _get_sampler(None if sampler == "auto" else sampler)
        self.generate_function = None

    def compile_from_config(self, config):
        """Restore `compile()` arguments saved in a `.keras` file."""
        config = keras.saving.deserialize_keras_object(config)
        config["loss"] = "auto"
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, **kwargs):
        """keras-hub's `fit()`, without Keras' warning that `shuffle` is
        ignored. keras-hub hands Keras a dataset whatever it is given (it
        batches in-memory inputs itself, in their order), and Keras never
        shuffles a dataset: shuffle in-memory inputs before the call, or
        pass a shuffled `tf.data.Dataset`."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
            return super().fit(*args, **kwargs)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The noise's objective on the target region (`sample_weight`).

        `DiffusionPreprocessor` hands the target region over as
        `sample_weight` (times any per-example weights given to `fit()`);
        packed batches without one use `x["target_mask"]`.
        """
        labels, weights = self._loss_targets(x, y, y_pred, sample_weight)
        loss = self.noise.loss(labels, y_pred, weights)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def _loss_targets(self, x, y, y_pred, sample_weight):
        if sample_weight is None:
            sample_weight = x["target_mask"]
        weights = ops.cast(sample_weight, "float32")
        if len(weights.shape) == 1:
            weights = weights[:, None] * ops.cast(x["target_mask"], "float32")
        positions = y_pred.get("positions")
        weights = _gather(weights, positions)
        if "trained" in y_pred:  # Block diffusion: the block this step trained.
            weights = weights * y_pred["trained"]
        return _gather(y, positions), weights

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """`accuracy`: of the first pass, on the corrupted target tokens."""
        if self._compile_metrics is not None:
            labels, weights = self._loss_targets(x, y, y_pred, sample_weight)
            weights = weights * ops.cast(y_pred["corrupted"], "float32")
            self._compile_metrics.update_state(labels, y_pred["logits"], weights)
        return self.get_metrics_result()

    # --- generation ---

    def generate_step(self, inputs, stop_token_ids=None):
        """Decode one packed batch with the sampler; keep each best candidate.

        `inputs` may hold a `"window"` array whose *length* is the number of
        positions each step computes logits for (`generate()` sets it from
        the prompt lengths; a shape, so the compiled loop knows it), and a
        `"record"` array whose length is the room for recorded states
        (`denoising_trajectory()`): the output then holds `"states"`
        `[batch, record, length]` and `"num_states"`.
        """
        # The output is cut at the end token afterwards; the sampler may use
        # the end and padding tokens to order its commits (`ordered_stop`):
        # the ids `generate()` was given, else the preprocessor's.
        if stop_token_ids is None and self.preprocessor is not None:
            stop_token_ids = self.preprocessor.stop_token_ids
        token_ids = ops.cast(inputs["token_ids"], "int32")
        padding_mask = inputs["padding_mask"]
        target_mask = ops.cast(inputs["target_mask"], "bool")
        batch_size, length = ops.shape(token_ids)
        window = ops.shape(inputs["window"])[0] if "window" in inputs else length
        n = self.sampler.num_samples

        def repeat(t):
            return ops.repeat(t, n, axis=0)

        denoiser = WindowedLogits(
            self, repeat(padding_mask), repeat(target_mask), window,
            use_cache=self.sampler.cache,
        )
        record = ops.shape(inputs["record"])[0] if "record" in inputs else None
        tokens, scores, passes, row_passes, *recorded = self.sampler(
            denoiser,
            repeat(token_ids),
            repeat(target_mask),
            vocabulary_size=self.output_vocabulary_size,
            num_steps=inputs.get("num_steps"),
            model=self,
            noise=self.noise,
            stop_token_ids=stop_token_ids,
            record=record,
        )
        best = ops.argmin(ops.reshape(scores, (batch_size, n)), axis=-1)

        def best_of(t):  # [batch * n, ...] -> each prompt's best candidate.
            t = ops.reshape(t, (batch_size, n) + tuple(ops.shape(t)[1:]))
            index = ops.reshape(best, (batch_size, 1) + (1,) * (len(t.shape) - 2))
            return ops.take_along_axis(t, index, axis=1)[:, 0]

        outputs = {
            "token_ids": best_of(tokens),
            "padding_mask": padding_mask,
            "target_mask": target_mask,
            "num_forward_passes": ops.full((batch_size,), passes, "int32"),
            # What each prompt alone would cost: its slowest candidate's calls.
            "row_forward_passes": ops.max(ops.reshape(row_passes, (batch_size, n)), axis=-1),
        }
        if recorded:
            states, count = recorded
            outputs["states"] = best_of(ops.transpose(states, (1, 0, 2)))
            outputs["num_states"] = ops.full((batch_size,), count, "int32")
        return outputs

    def generate(
        self,
        inputs,
        max_length=None,
        stop_token_ids="auto",
        strip_prompt=False,
        num_steps=None,
    ):
        """Generate text for prompts by parallel denoising.

        Args:
            inputs: a prompt string, a list of them, `{"prefix": strings}`,
                or already packed `{"token_ids", "padding_mask",
                "target_mask"}` tensors (then token ids come back).
            max_length: total length, prompt included. Defaults to the
                preprocessor's `sequence_length`.
            stop_token_ids: `"auto"` cuts each output at the end token;
                `None` returns the whole target region (with `block_size`,
                the blocks after the one that ended a row hold its end
                token: they are not decoded); a list of ids cuts at those
                and is what the sampler orders its commits by
                (`ordered_stop`) and ends block decoding by: the way to
                give packed inputs, which have no preprocessor to ask, their
                end and padding tokens.
            strip_prompt: bool. Return only the generated text.
            num_steps: int >= 1. Overrides the sampler's step count for this
                call without recompiling.

        Returns:
            A string, or a list of strings (token dicts for packed inputs).
        """
        packed = isinstance(inputs, dict) and "token_ids" in inputs
        single = isinstance(inputs, str)
        batch = self._generation_batch(inputs, max_length, num_steps)
        given = None if stop_token_ids in (None, "auto") else tuple(stop_token_ids)
        outputs = self.make_generate_function()(batch, stop_token_ids=given)
        if packed:
            return {k: ops.convert_to_numpy(v) for k, v in outputs.items()}
        texts = self.preprocessor.generate_postprocess(
            outputs, strip_prompt=strip_prompt, stop_token_ids=stop_token_ids
        )
        return texts[0] if single else texts

    def _generation_batch(self, inputs, max_length, num_steps):
        """The packed batch `generate_step` decodes, with its step count and
        window; inputs checked before any work."""
        if num_steps is None:
            num_steps = self.sampler.num_steps
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(
                f"`num_steps` must be an int >= 1. Received: {num_steps!r}"
            )
        packed = isinstance(inputs, dict) and "token_ids" in inputs
        if not packed and self.preprocessor is None:
            raise ValueError(
                "Generating from strings needs a `preprocessor`. Attach one, "
                "or pass packed `{'token_ids', 'padding_mask', 'target_mask'}`."
            )
        if packed:
            batch = dict(inputs)
        else:
            if max_length is not None:
                check_sequence_length(self.backbone, max_length, "max_length")
            batch = self.preprocessor.generate_preprocess(
                inputs, sequence_length=max_length
            )
        batch["num_steps"] = ops.convert_to_tensor(num_steps, "int32")
        if self.sampler.cache:
            cached_task(self)  # Built eagerly, before compiling.
        target_mask = ops.convert_to_numpy(batch["target_mask"]).astype(bool)
        if not target_mask.any(axis=1).all():
            raise ValueError("Every row needs at least one target position to generate.")
        firsts = target_mask.argmax(axis=1)
        window = self.sampler.window_size(
            target_mask.shape[1], int(firsts.min()), int(firsts.max()), model=self
        )
        batch["window"] = np.zeros((window,), "int32")  # Its shape is read.
        return batch

    def denoising_trajectory(self, prompt, max_length=None, num_steps=None):
        """Decode one prompt as `generate()` does and return every state.

        The states are recorded by the decoding loop itself, the one compiled
        `generate()` runs, with the same sampler, options (strategy, blocks,
        cache, early stop, candidates: the best one's states) and seed: the
        last state is `generate()`'s output for the same prompt and seed.
        Watch the target settle with `plot_denoising_trajectory`.

        Args:
            prompt: a prompt string.
            max_length: total length, prompt included.
            num_steps: steps per block. Defaults to the sampler's.

        Returns:
            A dict with `"texts"` (the target text at each state: the start,
            then after each decoding step; cut at the end token),
            `"tokens"` (the token strings of the target region at each
            state, up to where the final output ends) and `"token_ids"`
            (`[states, length]`).

        Example:
        ```python
        model.compile(sampler=keras_textdiff.DiffusionSampler(seed=0))
        trajectory = model.denoising_trajectory("def add(a, b):")
        model.compile(sampler=keras_textdiff.DiffusionSampler(seed=0))  # Same seed again.
        model.generate("def add(a, b):", strip_prompt=True) == trajectory["texts"][-1]  # True
        ```
        """
        if not isinstance(prompt, str):
            raise ValueError(f"`prompt` must be one string. Received: {type(prompt).__name__}")
        if self.preprocessor is None:
            raise ValueError("`denoising_trajectory` needs a `preprocessor` to read the prompt.")
        batch = self._generation_batch([prompt], max_length, num_steps)
        num_steps = int(ops.convert_to_numpy(batch["num_steps"]))  # Checked there.
        is_target = ops.convert_to_numpy(batch["target_mask"]).astype(bool)[0]
        span = np.flatnonzero(is_target)
        num_blocks = self.sampler.num_blocks(int(span[-1] - span[0] + 1), len(is_target), model=self)
        batch["record"] = np.zeros((num_blocks * num_steps + 1,), "int32")  # Room, as a shape.
        outputs = self.make_generate_function()(batch, stop_token_ids=None)
        states = ops.convert_to_numpy(outputs["states"])[0]
        states = states[: int(ops.convert_to_numpy(outputs["num_states"])[0])]
        mask_token_id = self.noise.mask_token_id
        # Mask tokens may lie outside the tokenizer: text shows them as padding.
        shown = np.where(states == mask_token_id, self.preprocessor.pad_token_id, states)
        texts = self.preprocessor.generate_postprocess(
            {"token_ids": shown, "target_mask": np.stack([is_target] * len(states))},
            strip_prompt=True,
        )
        target = states[:, is_target]
        stops = set(self.preprocessor.stop_token_ids)
        end = next((i for i, t in enumerate(target[-1]) if t in stops), target.shape[1])
        target = target[:, : max(end, 1)]
        unique = sorted(set(target.ravel().tolist()) - {mask_token_id})
        pieces = dict(zip(unique, self.preprocessor._detokenize([[t] for t in unique])))
        pieces[mask_token_id] = "<mask>"
        tokens = [[pieces[int(t)] for t in state] for state in target]
        return {"texts": texts, "tokens": tokens, "token_ids": states}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention": self.attention,
                "block_size": self.block_size,
                "shifted_prediction": self.shifted_prediction,
                "annealing_steps": self.annealing_steps,
                "noise": keras.layers.serialize(self.noise),
                "sampler": keras.saving.serialize_keras_object(self.sampler),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("noise"), dict):
            config["noise"] = keras.layers.deserialize(config["noise"])
        if isinstance(config.get("sampler"), dict):
            config["sampler"] = keras.saving.deserialize_keras_object(
                config["sampler"]
            )
        return super().from_config(config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Load a `DiffusionDecoder` saved with `save_to_preset()`.

        Args:
            preset: a local preset directory, or a Kaggle (`kaggle://`) or
                Hugging Face (`hf://`) handle of one.
            load_weights: bool. Load the saved weights.

        To turn an autoregressive preset into a diffusion model, use
        `keras_textdiff.AR2DiffConverter`.
        """
        from keras_hub.src.utils.preset_utils import TASK_CONFIG_FILE
        from keras_hub.src.utils.preset_utils import check_config_class
        from keras_hub.src.utils.preset_utils import check_file_exists
        from keras_hub.src.utils.preset_utils import get_preset_loader
        from keras_hub.src.utils.preset_utils import load_json

        loader = get_preset_loader(preset)
        if not check_file_exists(preset, TASK_CONFIG_FILE):
            raise ValueError(
                f"{preset!r} holds no `DiffusionDecoder` (no task.json). For "
                "an autoregressive keras-hub preset, convert it with "
                "`keras_textdiff.AR2DiffConverter().convert(preset)`."
            )
        # keras-hub would build another task's backbone into this class,
        # without its tokenizer: an AR preset must be converted instead.
        task = check_config_class(load_json(preset, TASK_CONFIG_FILE))
        if not issubclass(task, cls):
            kind = "an autoregressive" if issubclass(task, CausalLM) else "a"
            raise ValueError(
                f"{preset!r} is {kind} `{task.__name__}` preset, not a "
                f"`{cls.__name__}`. Convert an autoregressive preset with "
                "`keras_textdiff.AR2DiffConverter().convert(preset)` or "
                "`textdiff convert --preset PRESET --out DIR`, then load DIR."
            )
        model = loader.load_task(cls, load_weights, True, **kwargs)
        if model.preprocessor is not None:
            check_vocabulary(model.backbone, model.preprocessor.tokenizer)
        return model


def _gather(values, positions):
    """`values[b, positions[b, k]]` (`values` itself when `positions` is None)."""
    if positions is None:
        return values
    return ops.take_along_axis(values, ops.cast(positions, "int32"), axis=1)


def _scatter(window_values, positions, length):
    """Place `window_values` `[batch, window]` at their consecutive
    `positions` in a `[batch, length]` row (0 elsewhere)."""
    window = ops.shape(positions)[1]
    index = ops.arange(length, dtype="int32")[None, :] - positions[:, :1]
    inside = ops.logical_and(index >= 0, index < window)
    placed = ops.take_along_axis(window_values, ops.clip(index, 0, window - 1), axis=1)
    return ops.where(inside, placed, 0)


def _get_sampler(sampler):
    if sampler is None:
        return DiffusionSampler()
    if isinstance(sampler, dict):
        sampler = keras.saving.deserialize_keras_object(sampler)
    if not isinstance(sampler, DiffusionSampler):
        raise ValueError(
            "`sampler` must be a `keras_textdiff.DiffusionSampler` (keras-hub's "
            f"autoregressive samplers do not apply). Received: {sampler!r}"
        )
    return sampler
