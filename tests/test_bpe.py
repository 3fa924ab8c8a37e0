import random

import keras
import keras_hub
import pytest
import tensorflow as tf

from keras_textdiff import bpe
from keras_textdiff.bpe import count_tokens
from keras_textdiff.bpe import train_byte_pair_tokenizer

SPECIAL_TOKENS = ("<|endoftext|>", "<|mask|>")

CORPUS = [
    'def add(a, b):\n    """Add two numbers."""\n    return a + b\n\n\n',
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n"
    "        self.y = y\n\n    def norm(self):\n"
    "        return (self.x ** 2 + self.y ** 2) ** 0.5\n",
    "for i in range(10):\n\tif i % 2:\n\t\tprint('héllo', i)  # ünïcode\n\n",
    "async def fetch(url):\n    async with session.get(url) as r:\n"
    "        return await r.json()\n",
    "x = {'a': 1, 'b': [1, 2, 3]}  \nif not x:\n    raise ValueError('empty')\n",
] * 20

STRINGS = [
    CORPUS[1],
    "def f(x):\n\treturn x\n",
    "\tif x:\n\t\treturn 1\n\t \n",  # tabs, a whitespace-only line
    "a = 1\n\n\n\nb = 2\n",  # several blank lines
    "s = '日本語 ✓ ∑'  # émoji 🐍\n",
    "    \n  \t  \n",
    "x  = 1   \r\n\ty\t= 2\x0c\n",  # double spaces, CRLF, form feed
    "it's 'll 12345678 3.14e-10 \xa0 a\u3000b",
    "trailing spaces   ",
    "end<|endoftext|>next(<|mask|>)\n",
    "",
]


@pytest.fixture(scope="module")
def trained():
    hf_tokenizer = bpe._train_hf_tokenizer(CORPUS, 400, SPECIAL_TOKENS, 2)
    return hf_tokenizer, bpe._to_keras_hub(hf_tokenizer, SPECIAL_TOKENS)


def test_public_function_gives_the_same_tokenizer(trained):
    _, tokenizer = trained
    public = train_byte_pair_tokenizer(
        iter(CORPUS), vocabulary_size=400, special_tokens=SPECIAL_TOKENS
    )
    assert isinstance(public, keras_hub.tokenizers.GPT2Tokenizer)
    assert public.vocabulary == tokenizer.vocabulary
    assert public.merges == tokenizer.merges
    assert public.vocabulary_size() == 400


def test_round_trip_is_exact(trained):
    _, tokenizer = trained
    for text in STRINGS:
        assert tokenizer.detokenize(tokenizer(text)) == text
    assert tokenizer.detokenize(tokenizer.tokenize(STRINGS)) == STRINGS


def test_ids_equal_the_hugging_face_tokenizer(trained):
    hf_tokenizer, tokenizer = trained
    expected = [encoding.ids for encoding in hf_tokenizer.encode_batch(STRINGS)]
    for text, ids in zip(STRINGS, expected):
        assert tokenizer(text).tolist() == ids
        assert hf_tokenizer.decode(ids, skip_special_tokens=False) == text
    assert count_tokens(tokenizer, STRINGS) == [len(ids) for ids in expected]
    assert count_tokens(tokenizer, []) == []


def _random_strings(count, seed=0):
    pieces = list(" \t\n\r\x0c\xa0\u3000ab1_é日(=.#'\"") + ["'s", "  ", "\n\n"]
    pieces += ["def", "    ", "return", "\n    "]
    rng = random.Random(seed)
    return [
        "".join(rng.choice(pieces) for _ in range(rng.randint(1, 15)))
        for _ in range(count)
    ]


def test_tf_data_ids_equal_eager_ids(trained):
    # keras-hub runs a different (TensorFlow) implementation inside tf.data.
    hf_tokenizer, tokenizer = trained
    texts = [s for s in STRINGS if s] + _random_strings(300)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(64).map(tokenizer)
    in_tf_data = [row for batch in dataset for row in batch.to_list()]
    expected = [encoding.ids for encoding in hf_tokenizer.encode_batch(texts)]
    assert in_tf_data == expected
    assert tokenizer.tokenize(texts) == expected


def test_special_tokens(trained):
    _, tokenizer = trained
    assert tokenizer.token_to_id("<|endoftext|>") == 0
    assert tokenizer.end_token_id == tokenizer.start_token_id == 0
    assert tokenizer.pad_token_id == 0
    assert tokenizer.token_to_id("<|mask|>") == 1
    ids = tokenizer("a<|endoftext|>b<|mask|>").tolist()
    assert ids.count(0) == 1 and ids.count(1) == 1


def test_merges_compress_code(trained):
    _, tokenizer = trained
    assert len(tokenizer(CORPUS[1])) < 0.4 * len(CORPUS[1].encode())


def test_save_and_load(trained, tmp_path):
    _, tokenizer = trained
    tokenizer.save_assets(str(tmp_path))
    config = keras.saving.serialize_keras_object(tokenizer)
    restored = keras.saving.deserialize_keras_object(config)
    restored.load_assets(str(tmp_path))
    assert type(restored) is type(tokenizer)
    assert restored.tokenize(STRINGS) == tokenizer.tokenize(STRINGS)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"texts": []}, "empty"),
        ({"texts": ["a"], "vocabulary_size": 257}, "at least 258"),
        (
            {"texts": ["a"], "vocabulary_size": 258, "special_tokens": SPECIAL_TOKENS},
            "at least 259",
        ),
        ({"texts": ["a"], "special_tokens": ("<pad>",)}, "endoftext"),
        ({"texts": ["abc"], "min_frequency": 2}, "without merges"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_byte_pair_tokenizer(**kwargs)


def test_smallest_vocabulary_is_bytes_plus_special_tokens_plus_one_merge():
    tokenizer = train_byte_pair_tokenizer(["abab"], vocabulary_size=258)
    assert tokenizer.vocabulary_size() == 258
    assert tokenizer.detokenize(tokenizer("abc ✓\n")) == "abc ✓\n"
