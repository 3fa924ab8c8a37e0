"""Train a small byte-level BPE vocabulary, served by keras-hub's GPT-2 tokenizer
(or build a character-level one, `character_tokenizer`).

Why a subclass of `GPT2Tokenizer`: keras-hub's byte-pair tokenizer runs two
different implementations. Inside `tf.data` or a `tf.function` it uses its
TensorFlow path, which splits text into words with a GPT-2-like regex. In
eager Python calls it uses Hugging Face `tokenizers`, whose pre-tokenizer in
keras-hub 0.32 does not split at all (the split regex is passed as a plain
string, which `tokenizers` matches literally). A plain `GPT2Tokenizer`
therefore gives different ids, and different lengths, eagerly and in
`tf.data` (for 600 of 600 stdlib functions in a test with 4096 tokens).

`CodeGPT2Tokenizer` fixes the eager path: it uses `SPLIT_PATTERN`, a regex
that reproduces the TensorFlow path's word split exactly (checked on every
file of the CPython 3.11 standard library and on random whitespace-heavy
strings). The BPE is trained with that same split, so for the same text
these three give identical ids:

* the trained Hugging Face tokenizer's `encode(text).ids`,
* the keras-hub tokenizer called eagerly,
* the keras-hub tokenizer inside `tf.data`.

Known remaining differences, all in keras-hub's TensorFlow path only:

* it deletes the character "६" (U+096C, which it uses as an internal
  marker), so text containing it does not round trip in `tf.data`;
* letters added in recent Unicode versions (e.g. U+1C8A) may be split
  differently, because TensorFlow's RE2 has older Unicode tables;
* a special token written inside the text right after whitespace that
  holds a line break after its first character and ends with a space (e.g.
  `"x\\n\\n    <|endoftext|>"`) can be preceded by different whitespace
  tokens, because Hugging Face splits the text at special tokens before it
  splits words, and keras-hub only after inserting its marker.

Eager calls round trip every string exactly (byte-level BPE keeps all bytes).
"""

import json

import keras
import keras_hub
from tokenizers import Regex
from tokenizers import Tokenizer
from tokenizers import decoders
from tokenizers import models
from tokenizers import pre_tokenizers
from tokenizers import trainers

# keras-hub's TensorFlow path treats these as spaces too.
_SPECIAL_SPACES = "\u00a0\u2009\u202f\u3000"
_SPACE = "[\\t\\n\\f\\r " + _SPECIAL_SPACES + "]"  # RE2's `\s` + special.
_NOT_SPACE = "[^\\t\\n\\f\\r " + _SPECIAL_SPACES + "]"
_BREAK = "[\\n\\r\\t\\f" + _SPECIAL_SPACES + "]"  # Ends a whitespace word.
_SPLIT_BREAK = "[\\r\\t\\f" + _SPECIAL_SPACES + "]"  # Split off when last.
_PUNCTUATION = "[^\\t\\n\\f\\r " + _SPECIAL_SPACES + "\\p{L}\\p{N}]"

# The word split of keras-hub's TensorFlow path (`split_strings_for_bpe`),
# written as a single regex over the original text. Words are the matches
# and the text between them. In order:
SPLIT_PATTERN = "|".join(
    [
        # English contractions, as in GPT-2.
        "'s|'t|'re|'ve|'m|'ll|'d",
        # Whitespace before a space that starts a word: "\n\n   " + " def".
        f"{_SPACE}+(?= {_NOT_SPACE})",
        # Otherwise whitespace up to its last line break, which it keeps:
        # "   \n" in "x   \n", "\n\n" in "\n\nx".
        f"{_SPACE}+\\n(?!{_SPACE}*{_BREAK})",
        # ... or which becomes its own word when it is not "\n": " " + "\t".
        f"{_SPACE}+(?={_SPLIT_BREAK}(?!{_SPACE}*{_BREAK}))",
        f"(?<={_SPACE}){_SPLIT_BREAK}(?!{_SPACE}*{_BREAK})",
        # Whitespace at the end of the text: its last character is a word.
        f"{_SPACE}+(?=[ \\r\\t\\f{_SPECIAL_SPACES}]\\z)",
        # Letters, digits, and other characters, each with an optional space.
        " ?\\p{L}+",
        " ?\\p{N}+",
        # (A trailing vertical tab is split off punctuation.)
        f"(?: {_PUNCTUATION}*|{_PUNCTUATION}+)(?=\\v(?!{_PUNCTUATION}))",
        f" ?{_PUNCTUATION}+",
    ]
)


def _pre_tokenizer():
    """Split words with `SPLIT_PATTERN`, then map bytes to GPT-2 symbols."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


@keras.saving.register_keras_serializable(package="keras_textdiff")
class CodeGPT2Tokenizer(keras_hub.tokenizers.GPT2Tokenizer):
    """A `GPT2Tokenizer` whose eager calls match its `tf.data` calls.

    Eager calls use Hugging Face `tokenizers` with `SPLIT_PATTERN`, which
    splits words like keras-hub's TensorFlow path (see the module docstring),
    so ids and lengths are the same eagerly and in `tf.data`. Everything else
    (vocabulary, merges, special tokens, saving) is `GPT2Tokenizer`'s.
    `add_prefix_space=True` is not supported.

    Args:
        vocabulary: dict mapping tokens to ids, or a path to a json file.
        merges: list of merge rules `"a b"`, or a path to a merges file.
        **kwargs: passed to `keras_hub.tokenizers.GPT2Tokenizer`.

    Example:

    >>> vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3}
    >>> tokenizer = CodeGPT2Tokenizer(vocabulary, ["a b"])
    >>> tokenizer("abba").tolist()
    [3, 2, 1]
    """

    def __init__(self, vocabulary=None, merges=None, **kwargs):
        if kwargs.get("add_prefix_space"):
            raise ValueError("`add_prefix_space=True` is not supported.")
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        self._tokenizer.pre_tokenizer = _pre_tokenizer()


def _check_arguments(texts, vocabulary_size, special_tokens):
    if not texts:
        raise ValueError("`texts` is empty: pass the corpus to learn from.")
    if "<|endoftext|>" not in special_tokens:
        raise ValueError(
            "`special_tokens` must include '<|endoftext|>', the start/end/pad "
            f"token of GPT2Tokenizer. Received: special_tokens={special_tokens}"
        )
    # keras-hub cannot build a byte-pair tokenizer without merges, so the
    # vocabulary needs room for at least one merged token.
    smallest = 256 + len(special_tokens) + 1
    if vocabulary_size < smallest:
        raise ValueError(
            f"`vocabulary_size` must be at least {smallest} (256 bytes + "
            f"{len(special_tokens)} special tokens + 1 merge). "
            f"Received: vocabulary_size={vocabulary_size}"
        )


def _train_hf_tokenizer(texts, vocabulary_size, special_tokens, min_frequency):
    """Train and return a Hugging Face byte-level BPE `tokenizers.Tokenizer`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = _pre_tokenizer()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=min_frequency,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def _to_keras_hub(hf_tokenizer, special_tokens):
    """Wrap a trained Hugging Face byte-level BPE as a `CodeGPT2Tokenizer`."""
    model = json.loads(hf_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    if not merges:
        raise ValueError(
            "No pair of symbols occurs `min_frequency` times in `texts`, and "
            "keras-hub cannot build a byte-pair tokenizer without merges. "
            "Pass more text or lower `min_frequency`."
        )
    return CodeGPT2Tokenizer(
        vocabulary=hf_tokenizer.get_vocab(),
        merges=merges,
        unsplittable_tokens=list(special_tokens),
    )


def train_byte_pair_tokenizer(
    texts,
    vocabulary_size=4096,
    special_tokens=("<|endoftext|>",),
    min_frequency=2,
):
    """Learn a byte-level BPE on `texts` and return a keras-hub tokenizer.

    Training uses Hugging Face `tokenizers` (about 1 second for 3 MB of
    Python source and 4096 tokens on 2 CPU cores). The result is a
    `keras_hub.tokenizers.GPT2Tokenizer` (a `CodeGPT2Tokenizer`), which runs
    in `tf.data` and saves like any keras-hub tokenizer. Byte-level BPE
    keeps every byte, so indentation (spaces and tabs), blank lines and
    unicode round trip exactly, and eager calls give the same ids as the
    trained Hugging Face tokenizer and as `tf.data` (see the module
    docstring for the exceptions).
    Special tokens get the first ids, in order, so `"<|endoftext|>"` is id 0
    when it comes first. Special tokens inside the text are kept whole.

    Args:
        texts: a list (or iterable) of strings.
        vocabulary_size: int. Largest vocabulary size, special tokens
            included; smaller if `min_frequency` leaves too few merges.
        special_tokens: tuple of strings; must contain `"<|endoftext|>"`
            (the GPT-2 tokenizer's start, end and pad token).
        min_frequency: int. Minimum count of a pair to become a merge.

    Returns:
        A `keras_hub.tokenizers.GPT2Tokenizer`.

    Raises:
        ValueError: if `texts` is empty, `special_tokens` lacks
            `"<|endoftext|>"`, `vocabulary_size` is smaller than
            256 + the number of special tokens + 1, or training learned no
            merge (keras-hub's tokenizer needs at least one).

    Example:

    >>> code = "def f(x):\\n\\treturn x  # é\\n\\n"
    >>> tokenizer = train_byte_pair_tokenizer([code] * 50, 300)
    >>> tokenizer.detokenize(tokenizer(code)) == code
    True
    >>> tokenizer.token_to_id("<|endoftext|>")
    0
    """
    texts = list(texts)
    special_tokens = tuple(special_tokens)
    _check_arguments(texts, vocabulary_size, special_tokens)
    hf_tokenizer = _train_hf_tokenizer(
        texts, vocabulary_size, special_tokens, min_frequency
    )
    return _to_keras_hub(hf_tokenizer, special_tokens)


# The start, end and padding token of `GPT2Tokenizer`.
END_TOKEN = "<|endoftext|>"


def character_tokenizer(texts):
    """A keras-hub `GPT2Tokenizer` with one token per byte of `texts`.

    No training: the vocabulary is `"<|endoftext|>"` (id 0; the start, end
    and padding token), then every byte-level symbol that occurs in `texts`,
    sorted, then one token that never occurs. ASCII text gets one token per
    character, written as GPT-2 writes bytes (`"Ġ"` for a space, `"Ċ"` for
    a newline); any other character is one token per byte of its UTF-8
    encoding. A byte absent from `texts` has no id: eager calls drop it,
    `tf.data` gives it -1. So build the tokenizer from every text it will
    read, prompts and answers of all splits.

    Why the token that never occurs: keras-hub's `BytePairTokenizer` cannot
    be built with `merges=[]` (keras-hub 0.32 builds its lookup table of
    merges with the wrong key type and fails with `NotFoundError: Could not
    find device for node ... HashTableV2`), so the tokenizer gets one merge
    rule, `"<|endoftext|> <|endoftext|>"`, and its product. The end token
    is unsplittable: both of keras-hub's paths (eager calls and `tf.data`)
    cut it out of the text before splitting words into symbols, so the rule
    never fires and every byte stays its own token, with the same ids in
    both paths.

    Args:
        texts: a list (or iterable) of strings.

    Returns:
        A `keras_hub.tokenizers.GPT2Tokenizer`.

    Raises:
        ValueError: if `texts` holds no character.

    Example:

    >>> tokenizer = character_tokenizer(["sixty six", "66"])
    >>> tokenizer.vocabulary_size()  # The end token, "6istxyĠ", the unused one.
    9
    >>> tokenizer("six 66").tolist()
    [3, 2, 5, 7, 1, 1]
    >>> tokenizer.detokenize(tokenizer("six 66"))
    'six 66'
    """
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    symbols = set()
    for text in texts:
        for word, _ in byte_level.pre_tokenize_str(text):
            symbols.update(word)
    if not symbols:
        raise ValueError("`texts` holds no character: pass the texts to tokenize.")
    vocabulary = {END_TOKEN: 0}
    for token in sorted(symbols) + [END_TOKEN * 2]:
        vocabulary[token] = len(vocabulary)
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=vocabulary, merges=[f"{END_TOKEN} {END_TOKEN}"]
    )


def count_tokens(tokenizer, texts):
    """Counts the tokens of each text, e.g. to filter examples by length.

    Runs the tokenizer eagerly on the whole batch. For a `CodeGPT2Tokenizer`
    this is Hugging Face `tokenizers` (tens of thousands of short texts per
    second), and the counts equal the lengths the tokenizer gives in
    `tf.data`.

    Args:
        tokenizer: a keras-hub tokenizer, e.g. from
            `train_byte_pair_tokenizer`.
        texts: a list of strings.

    Returns:
        A list of ints, one per text.

    Example:

    >>> tokenizer = train_byte_pair_tokenizer(["return x\\n"] * 50, 300)
    >>> count_tokens(tokenizer, ["return x\\n", ""])
    [3, 0]
    """
    texts = list(texts)
    if not texts:
        return []
    return [len(ids) for ids in tokenizer.tokenize(texts)]
