"""The byte-level BPE tokenizer of GGUF files, split the way llama.cpp splits.

A GGUF file stores its tokenizer's vocabulary and merges, and names its
pre-tokenizer (`tokenizer.ggml.pre`: the regex that cuts text into words
before BPE). `GGUFBytePairTokenizer` is a keras-hub `BytePairTokenizer` that
applies that same split both eagerly (Hugging Face `tokenizers`) and inside
`tf.data` (TensorFlow's RE2), so both paths give the same ids.
"""

import re

import keras
import keras_hub
from keras_hub.src.utils.tensor_utils import preprocessing_function

# Special tokens that end generation wherever a vocabulary has them, besides
# its named end token: llama.cpp's end-of-generation ("EOG") tokens, which it
# recognizes by their text (`llama_vocab::impl::load`, llama-vocab.cpp).
# SmolLM2-Instruct, for one, ends a turn with "<|im_end|>" (its end token)
# and a text with "<|endoftext|>".
END_OF_GENERATION_TOKENS = (
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<EOT>",
)

# Oniguruma's `\s` in Unicode mode (what Hugging Face `tokenizers` uses),
# spelled out so that TensorFlow's RE2 matches the same characters: RE2's
# own `\s` is ASCII only.
_WS = r"\t\n\v\f\r\x{85}\p{Z}"
# Whitespace that is not a line break, for the Llama 3 split.
_WS_NOT_NEWLINE = r"\t\v\f\x{85}\p{Z}"
# RE2 has no lookahead, so the TensorFlow path marks with this character the
# place where `\s+(?!\S)` ends its match (see `_PreTokenizer`). It is a
# Unicode noncharacter, reserved for such internal use.
_MARK = "\ufdd0"

_GPT2_SPLIT = (
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
    r"|\s+(?!\S)|\s+"
)
_GPT2_SPLIT_TF = (
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+"
    rf"| ?[^{_WS}\p{{L}}\p{{N}}]+|[{_WS}]+{_MARK}|[{_WS}]+"
)
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT_TF = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    rf"| ?[^{_WS}\p{{L}}\p{{N}}]+[\r\n]*|[{_WS}]*[\r\n]+"
    rf"|[{_WS}]+{_MARK}|[{_WS}]+"
)


class _PreTokenizer:
    """How one family of GGUF pre-tokenizers splits text into words.

    `split` is llama.cpp's (and Hugging Face's) regex. `split_tf` is the
    same regex for RE2, with `\\s+(?!\\S)` ("a run of whitespace, less its
    last character when a non-space follows") replaced by "whitespace
    followed by `_MARK`"; `mark` and `mark_tf` insert `_MARK` before that
    last character, in the runs where `\\s+(?!\\S)` would be reached.
    """

    def __init__(self, split, split_tf, mark, digits, ignore_merges):
        self.split = split
        self.split_tf = split_tf
        self.mark = mark
        self.digits = digits  # Split every digit off first.
        self.ignore_merges = ignore_merges  # Whole words in the vocabulary.


_PRE_TOKENIZER_FAMILIES = {
    "gpt2": _PreTokenizer(
        _GPT2_SPLIT,
        _GPT2_SPLIT_TF,
        # Whitespace runs of 2+ characters followed by a non-space.
        mark=rf"([{_WS}]+)([{_WS}][^{_WS}])",
        digits=False,
        ignore_merges=False,
    ),
    "gpt2-digits": _PreTokenizer(
        _GPT2_SPLIT,
        _GPT2_SPLIT_TF,
        mark=rf"([{_WS}]+)([{_WS}][^{_WS}])",
        digits=True,
        ignore_merges=False,
    ),
    "llama3": _PreTokenizer(
        _LLAMA3_SPLIT,
        _LLAMA3_SPLIT_TF,
        # `\s*[\r\n]+` takes whitespace up to the last line break first, so
        # only runs without line breaks reach `\s+(?!\S)`.
        mark=rf"([{_WS_NOT_NEWLINE}]+)([{_WS_NOT_NEWLINE}][^{_WS}])",
        digits=False,
        ignore_merges=True,
    ),
}

# `tokenizer.ggml.pre` values -> family, as in llama.cpp's `llama-vocab.cpp`.
SUPPORTED_PRE_TOKENIZERS = {
    **dict.fromkeys(
        ["gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "exaone4"], "gpt2"
    ),
    **dict.fromkeys(
        [
            "smollm",
            "starcoder",
            "refact",
            "command-r",
            "codeshell",
            "exaone",
            "minerva-7b",
        ],
        "gpt2-digits",
    ),
    **dict.fromkeys(
        [
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
        ],
        "llama3",
    ),
}


def _byte_alphabet():
    """GPT-2's map from bytes to the printable characters BPE tokens use."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_TO_CHAR = _byte_alphabet()
_ALPHABET = frozenset(_BYTE_TO_CHAR.values())


@keras.saving.register_keras_serializable(package="keras_textdiff")
class GGUFBytePairTokenizer(keras_hub.tokenizers.BytePairTokenizer):
    """A byte-level BPE tokenizer with the word split of a GGUF model.

    keras-hub's `BytePairTokenizer` (0.32) splits words with a GPT-2-like
    regex in `tf.data` and, eagerly, with Hugging Face `tokenizers` and a
    pattern that is matched literally (so not at all), and Llama 3's
    tokenizer neither. This one splits words as llama.cpp does for the
    file's `tokenizer.ggml.pre` (`pre_tokenizer` names the family):

    * `"gpt2"`: GPT-2's regex.
    * `"gpt2-digits"`: every digit is a word of its own, then GPT-2's regex
      (SmolLM, SmolLM2, StarCoder).
    * `"llama3"`: Llama 3's regex; a word that is in the vocabulary is one
      token, whatever the merges say.

    Eager calls use Hugging Face `tokenizers` with that regex. Calls inside
    `tf.data` or a `tf.function` run the same split in RE2 and give the same
    ids, except that RE2's Unicode tables are older (letters and digits
    added in recent Unicode versions can split differently) and that text
    containing the noncharacter U+FDD0, used as an internal marker, loses
    it. Special tokens (`unsplittable_tokens`) are split off first, as in
    Hugging Face `tokenizers`.

    Args:
        vocabulary: dict mapping tokens to ids, or a path to a json file.
        merges: list of merge rules `"a b"`, or a path to a merges file.
        pre_tokenizer: `"gpt2"`, `"gpt2-digits"` or `"llama3"`.
        bos_token: the start token.
        eos_token: the end token.
        pad_token: the padding token; `None` pads with `eos_token`. Note
            that keras-hub's `generate()` stops at once when the padding
            token is one of its stop tokens (`eos_token`, `eot_token`):
            `load_gguf` picks another one.
        eot_token: `None`, or a second token that also ends generation (e.g.
            Llama 3's `"<|eot_id|>"`).
        unsplittable_tokens: tokens kept whole in the text (the GGUF's
            control and user-defined tokens); defaults to the ones above.
        **kwargs: passed to `keras_hub.tokenizers.BytePairTokenizer`.

    Example:

    >>> vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "Ġ": 4}
    >>> tokenizer = GGUFBytePairTokenizer(
    ...     vocabulary, ["a b"], bos_token="<|endoftext|>",
    ...     eos_token="<|endoftext|>")
    >>> tokenizer("ab ba<|endoftext|>").tolist()
    [3, 4, 2, 1, 0]
    """

    # `backbone_cls` (for `from_preset`) is set in `gguf.py`, next to the
    # backbone class.

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        pre_tokenizer="gpt2",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token=None,
        eot_token=None,
        **kwargs,
    ):
        if pre_tokenizer not in _PRE_TOKENIZER_FAMILIES:
            raise ValueError(
                "`pre_tokenizer` must be one of "
                f"{sorted(_PRE_TOKENIZER_FAMILIES)}. "
                f"Received: pre_tokenizer={pre_tokenizer!r}"
            )
        if kwargs.get("add_prefix_space"):
            raise ValueError("`add_prefix_space=True` is not supported.")
        self.pre_tokenizer = pre_tokenizer
        self._add_special_token(bos_token, "start_token")
        self._add_special_token(eos_token, "end_token")
        self._add_special_token(
            eos_token if pad_token is None else pad_token, "pad_token"
        )
        self.eot_token = eot_token
        if eot_token is not None:
            # `CausalLM.generate()` also stops on `end_token2_id`.
            self._add_special_token(eot_token, "end_token2")
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

    def _family(self):
        return _PRE_TOKENIZER_FAMILIES[self.pre_tokenizer]

    # --- Eager path: Hugging Face `tokenizers`. ---

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        from tokenizers import Regex
        from tokenizers import pre_tokenizers

        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        family = self._family()
        steps = []
        if family.digits:
            steps.append(pre_tokenizers.Digits(individual_digits=True))
        steps.append(
            pre_tokenizers.Split(Regex(family.split), behavior="isolated")
        )
        steps.append(
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        )
        self._tokenizer.pre_tokenizer = pre_tokenizers.Sequence(steps)
        self._tokenizer.model.ignore_merges = family.ignore_merges

    # --- TensorFlow path (`tf.data`, `tf.function`). ---

    def _split_words_tf(self, inputs):
        """Split a batch of strings into a ragged batch of words."""
        import tensorflow as tf
        import tensorflow_text as tf_text

        family = self._family()
        pieces = tf.RaggedTensor.from_tensor(tf.expand_dims(inputs, 1))
        flat = pieces.flat_values
        is_special = tf.zeros_like(flat, dtype=tf.bool)
        if self.unsplittable_tokens:
            # Longest first: RE2 takes the first alternative that matches.
            tokens = sorted(set(self.unsplittable_tokens), key=len)[::-1]
            special = "|".join(re.escape(t) for t in tokens)
            pieces = tf_text.regex_split(pieces, special, special)
            pieces = pieces.merge_dims(1, 2)
            flat = pieces.flat_values
            is_special = tf.strings.regex_full_match(flat, special)
        # Each piece that is not a special token is split on its own.
        texts = tf.where(is_special, "", flat)
        if family.digits:
            texts = tf_text.regex_split(texts, r"\p{N}", r"\p{N}")
        texts = tf.ragged.map_flat_values(
            tf.strings.regex_replace, texts, family.mark, r"\1" + _MARK + r"\2"
        )
        words = tf_text.regex_split(texts, family.split_tf, family.split_tf)
        if family.digits:
            words = words.merge_dims(1, 2)
        words = tf.ragged.map_flat_values(
            tf.strings.regex_replace, words, _MARK, ""
        )
        specials = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(flat, is_special),
            tf.cast(is_special, "int64"),
        )
        # A row holds either the words of a piece or one special token.
        words = tf.concat([words, specials], axis=1)
        words = tf.RaggedTensor.from_row_splits(words, pieces.row_splits)
        return words.merge_dims(1, 2)

    def _bpe_merge_and_update_cache_tf(self, tokens):
        if not self._family().ignore_merges:
            return super()._bpe_merge_and_update_cache_tf(tokens)
        import tensorflow as tf

        symbols = self.byte2unicode.lookup(tf.strings.bytes_split(tokens))
        whole = tf.strings.reduce_join(symbols, axis=1)
        merged = tf.strings.reduce_join(
            self._bpe_merge_tf(symbols), axis=1, separator=" "
        )
        in_vocabulary = self.token_to_id_map.lookup(whole) != -1
        self.cache.insert(tokens, tf.where(in_vocabulary, whole, merged))

    @preprocessing_function
    def _tokenize_tf(self, inputs):
        # keras-hub's `BytePairTokenizer._tokenize_tf`, with our word split.
        import tensorflow as tf

        self._maybe_initialized_tf()
        inputs = tf.convert_to_tensor(inputs)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = tf.expand_dims(inputs, 0)
        if inputs.shape.rank > 1:
            raise ValueError(
                "`tokenize()` inputs should be a string, list of strings, or "
                f"string tensor with rank < 2. Received: {inputs}"
            )
        raw_tokens = self._split_words_tf(inputs)
        token_row_splits = raw_tokens.row_splits
        flat_tokens = raw_tokens.flat_values

        cache_lookup = self.cache.lookup(flat_tokens)
        cache_mask = cache_lookup == ""
        has_unseen_words = tf.math.reduce_any(
            (cache_lookup == "") & (flat_tokens != "")
        )

        def process_unseen_tokens():
            unseen_tokens = tf.boolean_mask(flat_tokens, cache_mask)
            self._bpe_merge_and_update_cache_tf(unseen_tokens)
            return self.cache.lookup(flat_tokens)

        tokenized_words = tf.cond(
            has_unseen_words, process_unseen_tokens, lambda: cache_lookup
        )
        tokens = tf.strings.split(tokenized_words, sep=" ")
        if self.compute_dtype != tf.string:
            tokens = self.token_to_id_map.lookup(tokens)
        tokens = tf.RaggedTensor.from_row_splits(
            tokens.flat_values,
            tf.gather(tokens.row_splits, token_row_splits),
        )
        if self.sequence_length:
            output_shape = tokens.shape.as_list()
            output_shape[-1] = self.sequence_length
            tokens = tokens.to_tensor(
                default_value=self.pad_token_id, shape=output_shape
            )
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
            tf.ensure_shape(tokens, shape=[self.sequence_length])
        return tokens

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pre_tokenizer": self.pre_tokenizer,
                "bos_token": self.start_token,
                "eos_token": self.end_token,
                "pad_token": self.pad_token,
                "eot_token": self.eot_token,
            }
        )
        return config
