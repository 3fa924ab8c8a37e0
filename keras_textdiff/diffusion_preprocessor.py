"""Pack (prefix, target) text into the fixed-length layout a diffusion decoder reads."""

import keras
import numpy as np
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

# Like keras-hub, TensorFlow is needed to preprocess text, not to import the
# package: a GPU machine without TF can still decode packed token ids.
from keras_hub.src.utils.tensor_utils import tf  # `None` without TensorFlow.


def _to_ragged(ids):
    """Tokenizer output (a ragged tensor, or lists on keras-hub's Python path)."""
    if isinstance(ids, tf.RaggedTensor):
        return tf.cast(ids, "int32")
    if isinstance(ids, tf.Tensor):
        return tf.RaggedTensor.from_tensor(tf.cast(ids, "int32"))
    return tf.ragged.constant(ids, dtype="int32", ragged_rank=1)


def _as_batch(x):
    """Strings (or a single string) as a rank-1 string tensor."""
    x = tf.convert_to_tensor(x, dtype=tf.string)
    return tf.reshape(x, [-1]), x.shape.rank == 0


def special_token_ids(tokenizer):
    """The ids of the tokens `tokenizer` declares special.

    Its keras-hub special tokens (start and end, and pad or mask where the
    tokenizer names them) and a byte-pair tokenizer's `unsplittable_tokens`
    (e.g. `<|padding|>`, id 0 in `pretrain`'s tokenizers: the padding id of
    `GPT2Tokenizer`, which does not name a padding token). Their text is
    never part of generated text.

    Returns:
        A sorted list of ints.
    """
    tokens = set(tokenizer.special_tokens)
    tokens.update(getattr(tokenizer, "unsplittable_tokens", None) or ())
    vocabulary = set(tokenizer.get_vocabulary())
    return sorted(int(tokenizer.token_to_id(t)) for t in tokens if t in vocabulary)


def _string_list(x):
    if isinstance(x, str):
        return [x]
    if isinstance(x, (tf.Tensor, np.ndarray)):
        x = tf.reshape(tf.convert_to_tensor(x, tf.string), [-1]).numpy()
        return [s.decode("utf-8") for s in x]
    return [s.decode("utf-8") if isinstance(s, bytes) else s for s in x]


def check_lengths(sequence_length, target_length):
    """Raise a clear error unless the lengths can pack an example."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) \
            or sequence_length < 4:
        raise ValueError(
            "`sequence_length` must be an int >= 4 (start, prefix, end, "
            f"target). Received: {sequence_length!r}"
        )
    if target_length is not None and (
        isinstance(target_length, bool)
        or not isinstance(target_length, int)
        or not 1 <= target_length <= sequence_length - 3
    ):
        raise ValueError(
            "`target_length` must be None or an int in [1, "
            f"sequence_length - 3 = {sequence_length - 3}] (start, prefix "
            f"and end take the rest). Received: {target_length!r}"
        )


@keras.saving.register_keras_serializable(package="keras_textdiff")
class DiffusionPreprocessor(Preprocessor):
    """Tokenize and pack text for a `DiffusionDecoder`.

    Every example becomes one sequence of exactly `sequence_length` tokens:

    ```
    [start] prefix ... [sep] | target ... [end] [pad] [pad] ...
    <----- frozen prefix ---> <----------- target region ----------->
    ```

    The prefix is never corrupted and never changes while decoding; the
    separator after it (the end token by default) marks where it stops.
    The *target region* is everything
    after it: the target, an end token, then padding up to `sequence_length`.
    Noise and loss cover that whole region, padding included: that is how the
    model learns where its output stops (the paper has no length predictor).

    With `target_length=T` the target region is the `T` positions after the
    prefix, whatever the prefix's length; positions after it are padding
    that nothing attends to and no loss reads. Short answers to long
    prompts (SQuAD) then do not drown in padding, and training projects
    only `T` positions per example to the vocabulary. Generation packs
    `T` target positions after each prompt.

    Inputs to `__call__` (the `fit()` path) are either raw strings, which get
    a prefix-LM split at a uniformly random token (a random window of the
    string is taken first when it is too long), or a dict
    `{"prefix": strings, "target": strings}` of explicit pairs. A pair that
    does not fit raises an error: trim the data or raise `sequence_length`.

    Outputs are `(x, y, sample_weight)` with `x = {"token_ids",
    "padding_mask", "target_mask"}`, `y` the clean `token_ids`, and
    `sample_weight` the loss weights: 1 on the target region (times any
    per-example weight passed in), 0 elsewhere.

    Args:
        tokenizer: a `keras_hub.tokenizers.Tokenizer` with `end_token_id`
            and `pad_token_id` (and optionally `start_token_id`).
        sequence_length: int. Length of every packed sequence.
        add_start_token: bool. Put the tokenizer's start token first.
        target_length: int or `None`. The length of the target region
            (target, end token and padding); `None`: up to `sequence_length`.
        seed: int or `None`. Seed of the random prefix/target split.
        separator: what closes the prefix: `"end_token"` (the tokenizer's
            end token, the default), or text, tokenized on its own (e.g.
            `"\\n"`: an AR model fine-tuned on `prompt + "\\n" + answer`
            reads its prompts that way; with shifted prediction the first
            target token is then predicted where the AR model predicted it),
            or `""` for none.

    Example:
    ```python
    tokenizer = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=..., merges=...)
    preprocessor = keras_textdiff.DiffusionPreprocessor(tokenizer, 64)
    x, y, sample_weight = preprocessor(
        {"prefix": ["def f(x):\\n"], "target": ["  return x\\n"]}
    )
    x, y, sample_weight = preprocessor(["raw text is split at a random point"])
    ```
    """

    def __init__(
        self,
        tokenizer,
        sequence_length=128,
        add_start_token=True,
        seed=None,
        target_length=None,
        separator="end_token",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not callable(tokenizer):
            raise ValueError(
                "`tokenizer` must be a keras-hub tokenizer (e.g. "
                "`keras_hub.tokenizers.GPT2Tokenizer`, or the AR model's "
                f"`preprocessor.tokenizer`). Received: {tokenizer!r:.80}"
            )
        if not isinstance(separator, str):
            raise ValueError(
                '`separator` must be "end_token" or a string of text (e.g. '
                f'"\\n", or "" for none). Received: {separator!r}'
            )
        if tf is None:
            raise ImportError(
                "`DiffusionPreprocessor` needs TensorFlow for its text ops: "
                "`pip install tensorflow`. (A `DiffusionDecoder` with "
                "`preprocessor=None` decodes packed token ids without it.)"
            )
        check_lengths(sequence_length, target_length)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.target_length = target_length
        self.add_start_token = add_start_token
        self.seed = seed
        self.separator = separator

    # --- token ids of the layout ---

    @property
    def end_token_id(self):
        return self.tokenizer.end_token_id

    @property
    def pad_token_id(self):
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return self.end_token_id if pad is None else pad

    @property
    def _separator(self):
        """The separator's token ids (tokenized when first needed: a preset's
        tokenizer gets its vocabulary after this layer is made)."""
        if self.separator == "end_token":
            return [self.end_token_id]
        if not self.separator:
            return []
        if getattr(self, "_separator_ids", None) is None:
            with tf.init_scope():  # Eagerly, even when first asked inside tf.data.
                ids = _to_ragged(self.tokenizer([self.separator]))
            self._separator_ids = ids.to_list()[0]
        return self._separator_ids

    @property
    def stop_token_ids(self):
        """The ids that end an output: the end token and the padding token."""
        return sorted({self.end_token_id, self.pad_token_id})

    def _start_ids(self):
        start = getattr(self.tokenizer, "start_token_id", None)
        return [start] if self.add_start_token and start is not None else []

    def fitting_pairs(self, pairs):
        """The `{"prefix", "target"}` pairs that fit `sequence_length` whole.

        Packing refuses pairs that do not fit (nothing is cut silently);
        use this to filter a corpus first. Pairs with an empty prefix are
        dropped too. Pairs with a `"suffix"` (infilling) need room for the
        whole `target_length` region and the suffix after it.

        Example:
        ```python
        pairs = preprocessor.fitting_pairs(pairs)
        model.fit({"prefix": [p["prefix"] for p in pairs],
                   "target": [p["target"] for p in pairs]})
        ```
        """
        pairs = list(pairs)
        if not pairs:
            return []
        # start + prefix + separator + target + end
        room = self.sequence_length - len(self._start_ids()) - len(self._separator) - 1
        prefix_room, target_room = room, room
        if self.target_length is not None:
            # The whole target region must fit after the prefix.
            prefix_room = room + 1 - self.target_length
            target_room = self.target_length - 1
        prefix = self.tokenizer([p["prefix"] for p in pairs])
        target = self.tokenizer([p["target"] for p in pairs])
        suffix = self.tokenizer([p.get("suffix", "") for p in pairs])
        return [
            p
            for p, a, b, c in zip(pairs, prefix, target, suffix)
            if len(a) + len(b) <= room
            and 0 < len(a) <= prefix_room - len(c)
            and len(b) <= target_room
        ]

    def _tokenize(self, *batches):
        """Each rank-1 batch of strings as ragged ids, in one tokenizer call.

        Traced into a `tf.data` graph, keras-hub's byte-pair tokenizer adds
        thousands of ops per call: one call for prefix, target and suffix
        together makes `fit()` start seconds sooner than three.
        """
        ids = _to_ragged(self.tokenizer(tf.concat(batches, axis=0)))
        if len(batches) == 1:
            return ids
        ends = tf.cumsum([tf.shape(b)[0] for b in batches])
        starts = tf.concat([[0], ends[:-1]], axis=0)
        return tuple(ids[starts[i] : ends[i]] for i in range(len(batches)))

    def _pack(
        self, prefix, target, sequence_length, add_end=True, crop=False, suffix=None
    ):
        """Concatenate `[start] prefix [separator] target [end]`, pad, and mask.

        Returns `(token_ids, padding_mask, target_mask)`. With a
        `target_length`, a longer target is an error, or is cut to fit with
        `crop` (raw text, whose split point is arbitrary anyway). A `suffix`
        (ragged ids, infilling) follows the target region, which is then
        padded to exactly `target_length` positions.
        """
        batch = prefix.nrows()
        start = tf.constant(self._start_ids(), "int32")
        start = tf.RaggedTensor.from_tensor(tf.tile(start[None], [batch, 1]))
        end = tf.fill([batch, 1], tf.constant(self.end_token_id, "int32"))
        separator = tf.constant(self._separator, "int32", shape=[len(self._separator)])
        separator = tf.RaggedTensor.from_tensor(tf.tile(separator[None], [batch, 1]))
        head = tf.concat([start, prefix, separator], axis=1)
        if self.target_length is not None:
            too_long = tf.reduce_any(
                head.row_lengths() + self.target_length > sequence_length
            )
            if tf.executing_eagerly() and bool(too_long):
                raise ValueError(
                    f"A prefix leaves no room for the `target_length` = "
                    f"{self.target_length} target positions within "
                    f"`sequence_length` = {sequence_length}. Raise "
                    "`sequence_length`, or filter the examples with "
                    "`fitting_pairs`."
                )
            room = self.target_length - int(add_end)
            if crop:
                target = target[:, :room]
            elif tf.executing_eagerly() and bool(
                tf.reduce_any(target.row_lengths() > room)
            ):
                raise ValueError(
                    f"A target does not fit in `target_length` = "
                    f"{self.target_length} tokens (target + end). Raise "
                    "`target_length`, or filter the examples with "
                    "`fitting_pairs`."
                )
        parts = [head, target] + ([end] if add_end else [])
        if suffix is not None:
            # The target region is exactly `target_length` positions (target,
            # end, padding), and the suffix comes after it.
            region = tf.concat(parts[1:], axis=1).to_tensor(
                default_value=self.pad_token_id,
                shape=[batch, self.target_length],
            )
            parts = [head, tf.RaggedTensor.from_tensor(region), suffix]
        packed = tf.concat(parts, axis=1)
        lengths = packed.row_lengths()
        too_long = tf.reduce_any(lengths > sequence_length)
        message = (
            "An example does not fit in `sequence_length` = "
            f"{sequence_length} tokens (start + prefix + separator + target + end"
            f"{' + suffix' if suffix is not None else ''}). "
            "Raise `sequence_length`, or shorten or filter the examples."
        )
        if tf.executing_eagerly():
            if bool(too_long):
                raise ValueError(message + f" Lengths: {lengths.numpy()}")
        else:
            tf.debugging.Assert(tf.logical_not(too_long), [message, lengths])
        token_ids = packed.to_tensor(
            default_value=self.pad_token_id, shape=[batch, sequence_length]
        )
        positions = tf.range(sequence_length, dtype="int64")[None, :]
        target_mask = positions >= head.row_lengths()[:, None]
        padding_mask = tf.ones_like(target_mask)
        if self.target_length is not None:
            end_of_target = head.row_lengths()[:, None] + self.target_length
            target_mask = tf.logical_and(target_mask, positions < end_of_target)
            padding_mask = positions < end_of_target
            if suffix is not None:
                padding_mask = positions < lengths[:, None]
        return token_ids, padding_mask, target_mask

    def _random_split(self, tokens):
        """Crop a random window that fits, then split it at a random point."""
        room = self.sequence_length - len(self._start_ids()) - len(self._separator) - 1
        n = tokens.row_lengths()
        width = tf.minimum(n, room)
        u = tf.random.uniform([tokens.nrows(), 2], seed=self.seed)
        offset = tf.cast(u[:, 0] * tf.cast(n - width + 1, "float32"), "int64")
        # Split point k in [1, width - 1]: both parts non-empty when possible.
        k = 1 + tf.cast(u[:, 1] * tf.cast(width - 1, "float32"), "int64")
        k = tf.minimum(k, width)
        if self.target_length is not None:  # Leave room for the target region.
            k = tf.minimum(k, room + 1 - self.target_length)
        index = tf.ragged.range(n)
        start = offset[:, None]
        window = (index >= start) & (index < start + width[:, None])
        prefix = tf.ragged.boolean_mask(tokens, window & (index < start + k[:, None]))
        target = tf.ragged.boolean_mask(tokens, window & (index >= start + k[:, None]))
        return prefix, target

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict):
            missing = {"prefix", "target"} - set(x)
            if missing:
                raise ValueError(
                    "Pairs must be a dict with both 'prefix' and 'target' "
                    f"strings; missing {sorted(missing)}. Pass raw strings "
                    "instead to get a random prefix/target split."
                )
            prefix, target, suffix = self._tokenize_pairs(x)
            crop = False
        else:
            strings, _ = _as_batch(x)
            prefix, target = self._random_split(self._tokenize(strings))
            suffix, crop = None, True
        token_ids, padding_mask, target_mask = self._pack(
            prefix, target, self.sequence_length, crop=crop, suffix=suffix
        )
        x = {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "target_mask": target_mask,
        }
        # The loss reads the target region: Keras' sample-weight path.
        weights = tf.cast(target_mask, "float32")
        if sample_weight is not None:
            sample_weight = tf.cast(sample_weight, "float32")
            if sample_weight.shape.rank == 1:
                sample_weight = sample_weight[:, None]
            weights = weights * sample_weight
        return keras.utils.pack_x_y_sample_weight(x, token_ids, weights)

    def _tokenize_pairs(self, x):
        """Prefix, target and suffix (infilling; `None` without one) ids."""
        batches = [_as_batch(x["prefix"])[0], _as_batch(x["target"])[0]]
        if "suffix" not in x:
            return (*self._tokenize(*batches), None)
        self._check_suffix()
        return self._tokenize(*batches, _as_batch(x["suffix"])[0])

    def _suffix(self, x):
        """The tokenized `"suffix"` of dict inputs (infilling), or `None`."""
        if "suffix" not in x:
            return None
        self._check_suffix()
        return self._tokenize(_as_batch(x["suffix"])[0])

    def _check_suffix(self):
        if self.target_length is None:
            raise ValueError(
                "A 'suffix' (infilling: the text after the target) needs a "
                "fixed-size target region. Make the preprocessor with "
                "`target_length=T`, the most tokens a filled-in span may take "
                "(plus its end token)."
            )

    # --- generation ---

    def generate_preprocess(self, x, sequence_length=None):
        """Pack prompts as frozen prefixes with an empty target region.

        Args:
            x: a string, a list of strings, or `{"prefix": strings}`.
            sequence_length: total length, prompt included. Defaults to
                `self.sequence_length`.

        Returns:
            `{"token_ids", "padding_mask", "target_mask"}`; target positions
            hold the pad token until the sampler fills them.
        """
        suffix = None
        if isinstance(x, dict):
            if "prefix" not in x:
                raise ValueError(
                    "Prompts given as a dict need a 'prefix' key. Received "
                    f"keys: {sorted(x)}"
                )
            suffix = self._suffix(x)
            x = x["prefix"]
        prompts = _string_list(x)
        if not prompts:
            raise ValueError(
                "`inputs` is empty: pass at least one prompt string."
            )
        empty = [i for i, p in enumerate(prompts) if not p.strip()]
        if empty:
            raise ValueError(
                f"Prompts must be non-empty; prompts at positions {empty} are "
                "empty or whitespace. Give the model some text to continue."
            )
        prefix = self._tokenize(tf.constant(prompts))
        lengths = prefix.row_lengths().numpy()
        if suffix is not None and suffix.nrows() != len(prompts):
            raise ValueError(
                f"Got {len(prompts)} prefixes but {int(suffix.nrows())} "
                "suffixes: give one suffix per prompt (\"\" for none)."
            )
        if sequence_length is None and self.target_length is not None:
            # Just enough for the longest prompt and its target region, in
            # steps of 32 so that few prompt lengths need their own compile.
            around = lengths if suffix is None else lengths + suffix.row_lengths().numpy()
            needed = int(around.max()) + len(self._start_ids()) + len(self._separator) + self.target_length
            # (Never past `self.sequence_length`: the position table may end there.)
            sequence_length = min(-(-needed // 32) * 32, max(needed, self.sequence_length))
        sequence_length = sequence_length or self.sequence_length
        room = sequence_length - len(self._start_ids()) - len(self._separator) - 1
        if lengths.max() > room:
            i = int(lengths.argmax())
            raise ValueError(
                f"`max_length` = {sequence_length} leaves no room to generate "
                f"after prompt {i}, which has {lengths[i]} tokens. Pass "
                f"`max_length` > {lengths[i] + len(self._start_ids()) + len(self._separator)}, "
                "or a shorter prompt."
            )
        empty_target = tf.ragged.constant([[]] * len(prompts), dtype="int32")
        token_ids, padding_mask, target_mask = self._pack(
            prefix, empty_target, sequence_length, add_end=False, suffix=suffix
        )
        return {
            "token_ids": keras.ops.convert_to_tensor(token_ids.numpy()),
            "padding_mask": keras.ops.convert_to_tensor(padding_mask.numpy()),
            "target_mask": keras.ops.convert_to_tensor(target_mask.numpy()),
        }

    def generate_postprocess(self, x, strip_prompt=False, stop_token_ids="auto"):
        """Detokenize decoded sequences, cutting the target at its end token.

        Special tokens (`special_token_ids`: start, end, and any the
        tokenizer declares; in the target, the padding token too) are left
        out of the text: an under-trained model's stray `<|padding|>` is
        neither shown nor scored.

        Args:
            x: `{"token_ids", "target_mask"}` from the sampler.
            strip_prompt: bool. Return only the generated text.
            stop_token_ids: `"auto"` (the end and padding tokens), a list of
                ids that end the output, or `None` to keep the whole target
                region.

        Returns:
            A list of strings.
        """
        if stop_token_ids == "auto":
            stop_token_ids = self.stop_token_ids
        stop = set(stop_token_ids or [])
        special = (
            set(self._start_ids())
            | {self.end_token_id}
            | set(special_token_ids(self.tokenizer))
        )
        # Padding is special where the layout pads: the target region. (In
        # the prompt, GPT-2's padding id 0 may be an ordinary token.)
        target_special = special | {self.pad_token_id}
        token_ids = keras.ops.convert_to_numpy(x["token_ids"])
        target_mask = keras.ops.convert_to_numpy(x["target_mask"]).astype(bool)
        valid = x.get("padding_mask")
        valid = np.ones_like(target_mask) if valid is None else keras.ops.convert_to_numpy(valid)
        sequences = []
        for ids, is_target, is_valid in zip(
            token_ids.tolist(), target_mask.tolist(), valid.astype(bool).tolist()
        ):
            first = is_target.index(True) if True in is_target else len(ids)
            prompt = ids[:first]  # Everything before the target region.
            target = [t for t, m in zip(ids, is_target) if m]
            # An infilling suffix: the valid positions after the target.
            last = first + len(target)
            suffix = [t for t, v in zip(ids[last:], is_valid[last:]) if v]
            cut = next((i for i, t in enumerate(target) if t in stop), None)
            target = [t for t in target[:cut] if t not in target_special]
            prompt = [t for t in prompt if t not in special]
            suffix = [t for t in suffix if t not in special]
            sequences.append(target if strip_prompt else prompt + target + suffix)
        return _string_list(self._detokenize(sequences))

    def _detokenize(self, sequences):
        # Detokenize one sequence at a time: some tokenizers reject empty rows
        # in a batch.
        return [
            _string_list(self.tokenizer.detokenize([s]))[0] if s else ""
            for s in sequences
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "add_start_token": self.add_start_token,
                "seed": self.seed,
                "target_length": self.target_length,
                "separator": self.separator,
            }
        )
        return config
