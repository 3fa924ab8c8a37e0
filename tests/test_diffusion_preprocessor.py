import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from conftest import letter_tokenizer
from keras_textdiff import DiffusionPreprocessor


def _np(x):
    return {k: ops.convert_to_numpy(v) for k, v in x.items()}


def test_pairs_are_packed_with_a_frozen_prefix():
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(tokenizer, sequence_length=10)
    x, y, weights = pre({"prefix": ["ab"], "target": ["cde"]})
    x = _np(x)
    a, b, c, d, e = (tokenizer.token_to_id(t) for t in "abcde")
    end = tokenizer.end_token_id
    # [start] a b [end] | c d e [end] [pad] [pad]
    np.testing.assert_array_equal(
        x["token_ids"][0], [end, a, b, end, c, d, e, end, end, end]
    )
    np.testing.assert_array_equal(
        x["target_mask"][0], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    )
    assert x["padding_mask"].all()
    np.testing.assert_array_equal(ops.convert_to_numpy(y), x["token_ids"])
    # The loss weights (Keras' sample_weight) are the target region.
    np.testing.assert_array_equal(ops.convert_to_numpy(weights), x["target_mask"].astype("float32"))


def test_target_length_bounds_the_target_region_whatever_the_prefix():
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(tokenizer, sequence_length=12, target_length=3)
    x, y, weights = pre(
        {"prefix": ["ab", "abcde"], "target": ["c", "fg"]}, sample_weight=[1.0, 0.5]
    )
    x = _np(x)
    end = tokenizer.end_token_id
    a, b, c = (tokenizer.token_to_id(t) for t in "abc")
    # [start] a b [end] | c [end] [pad] | (outside: padding nobody reads)
    np.testing.assert_array_equal(x["token_ids"][0][:7], [end, a, b, end, c, end, end])
    np.testing.assert_array_equal(x["target_mask"][0], [0] * 4 + [1] * 3 + [0] * 5)
    np.testing.assert_array_equal(x["padding_mask"][0], [1] * 7 + [0] * 5)
    np.testing.assert_array_equal(x["target_mask"][1], [0] * 7 + [1] * 3 + [0] * 2)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(weights), x["target_mask"] * np.array([[1.0], [0.5]], "float32")
    )
    with pytest.raises(ValueError, match="target_length"):
        pre({"prefix": ["a"], "target": ["abc"]})  # 3 tokens + end > 3
    assert pre.fitting_pairs([{"prefix": "a", "target": "abc"}, {"prefix": "a", "target": "ab"}]) == [
        {"prefix": "a", "target": "ab"}
    ]
    # Generation: T target positions after each prompt, the rest padding.
    batch = _np(pre.generate_preprocess(["ab", "abcde"]))
    assert batch["target_mask"].sum(axis=1).tolist() == [3, 3]
    np.testing.assert_array_equal(batch["padding_mask"], np.cumsum(batch["target_mask"][:, ::-1], 1)[:, ::-1] > 0)


@pytest.mark.parametrize("target_length", [0, 10, 2.5, True])
def test_bad_target_length_is_refused(target_length):
    with pytest.raises(ValueError, match="target_length"):
        DiffusionPreprocessor(letter_tokenizer(), sequence_length=12, target_length=target_length)


def test_raw_strings_get_a_random_split_and_fit():
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(tokenizer, sequence_length=12, seed=0)
    text = "abcdefghijklmnopqrstuvwxyz"
    prefix_lengths = set()
    for _ in range(20):
        x, _, _ = pre([text])
        x = _np(x)
        ids, mask = x["token_ids"][0], x["target_mask"][0]
        prefix_lengths.add(int((~mask).sum()))
        # start + prefix + end + target + end fills the 12 tokens exactly,
        # and the letters form one contiguous window of the text.
        letters = [tokenizer.id_to_token(int(t)) for t in ids if t != 0]
        assert "".join(letters) in text and len(letters) == 9
        assert mask[-1] and not mask[0]
    assert len(prefix_lengths) > 3  # the split point moves


@pytest.mark.parametrize("separator", ["end_token", "xy"])
def test_works_in_tf_data(separator):
    tokenizer = letter_tokenizer()
    # A fresh preprocessor: a text separator is first tokenized in the graph.
    pre = DiffusionPreprocessor(tokenizer, sequence_length=10, separator=separator)
    ds = tf.data.Dataset.from_tensor_slices(
        {"prefix": ["ab", "c"], "target": ["cd", "efg"]}
    ).batch(2).map(pre)
    x, y, _ = next(iter(ds))
    assert x["token_ids"].shape == (2, 10)
    raw = DiffusionPreprocessor(tokenizer, sequence_length=10, separator=separator, seed=0)
    x, _, _ = next(iter(tf.data.Dataset.from_tensor_slices(["abcdefgh"]).batch(1).map(raw)))
    ids, target = x["token_ids"].numpy()[0], x["target_mask"].numpy()[0]
    first = int(np.argmax(target))
    if separator == "xy":
        xy = [tokenizer.token_to_id(t) for t in "xy"]
        assert ids[first - 2:first].tolist() == xy


def test_generate_preprocess_and_postprocess_round_trip():
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(tokenizer, sequence_length=10)
    x = _np(pre.generate_preprocess(["abc", "d"], sequence_length=8))
    assert x["token_ids"].shape == (2, 8)
    np.testing.assert_array_equal(x["target_mask"][1], [0, 0, 0, 1, 1, 1, 1, 1])
    # Fill the targets: "xy" then the end token, then junk that is cut.
    ids = x["token_ids"].copy()
    xx, yy, zz = (tokenizer.token_to_id(t) for t in "xyz")
    ids[0, 5:] = [xx, yy, 0]
    ids[1, 3:] = [zz, 0, xx, xx, xx]
    out = {"token_ids": ids, "target_mask": x["target_mask"]}
    assert pre.generate_postprocess(out) == ["abcxy", "dz"]
    assert pre.generate_postprocess(out, strip_prompt=True) == ["xy", "z"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p({"target": ["ab"]}), "prefix"),
        (lambda p: p({"prefix": ["abcdefgh"], "target": ["abc"]}), "sequence_length"),
        (lambda p: p.generate_preprocess([]), "empty"),
        (lambda p: p.generate_preprocess(["ab", " "]), "non-empty"),
        (lambda p: p.generate_preprocess(["abcdefgh"]), "max_length"),
        (lambda p: p.generate_preprocess(["abcd"], sequence_length=6), "max_length"),
        (lambda p: DiffusionPreprocessor(letter_tokenizer(), 2), "sequence_length"),
    ],
)
def test_bad_input(call, match):
    pre = DiffusionPreprocessor(letter_tokenizer(), sequence_length=10)
    with pytest.raises(ValueError, match=match):
        call(pre)


def test_fitting_pairs_keeps_exactly_what_packs():
    pre = DiffusionPreprocessor(letter_tokenizer(), sequence_length=10)
    # Letters are one token each; the layout adds 3 (start, end, end).
    pairs = [
        {"prefix": "abc", "target": "defg"},  # 3 + 4 + 3 = 10: fits
        {"prefix": "abc", "target": "defgh"},  # 11: too long
        {"prefix": "", "target": "abc"},  # no prefix
    ]
    kept = pre.fitting_pairs(pairs)
    assert kept == pairs[:1]
    pre({"prefix": [kept[0]["prefix"]], "target": [kept[0]["target"]]})
    with pytest.raises(ValueError, match="does not fit"):
        pre({"prefix": ["abc"], "target": ["defgh"]})
    assert pre.fitting_pairs([]) == []


@pytest.mark.parametrize("separator, expected", [("end_token", "END"), ("xy", "xy"), ("", "")])
def test_separator_closes_the_prefix(separator, expected):
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(
        tokenizer, sequence_length=12, target_length=4, separator=separator
    )
    end = tokenizer.end_token_id
    ids = [tokenizer.token_to_id(t) for t in "ab"]
    sep = [end] if expected == "END" else [tokenizer.token_to_id(t) for t in expected]
    c = tokenizer.token_to_id("c")
    x = _np(pre({"prefix": ["ab"], "target": ["c"]})[0])
    # [start] a b [separator] | c [end] [pad] [pad] | padding
    head = [end, *ids, *sep]
    np.testing.assert_array_equal(x["token_ids"][0][: len(head) + 2], head + [c, end])
    np.testing.assert_array_equal(
        np.flatnonzero(x["target_mask"][0]), np.arange(len(head), len(head) + 4)
    )
    # Generation packs the same prefix; the output is the target only.
    g = _np(pre.generate_preprocess(["ab"]))
    np.testing.assert_array_equal(g["token_ids"][0][: len(head)], head)
    assert np.flatnonzero(g["target_mask"][0])[0] == len(head)
    filled = g["token_ids"].copy()
    filled[0, len(head)] = c
    filled[0, len(head) + 1] = end
    out = {"token_ids": filled, "target_mask": g["target_mask"]}
    assert pre.generate_postprocess(out, strip_prompt=True) == ["c"]
    # Room: start + prefix + separator + target region.
    room = 12 - 1 - len(sep) - 4
    assert pre.fitting_pairs([{"prefix": "a" * room, "target": "c"}])
    assert not pre.fitting_pairs([{"prefix": "a" * (room + 1), "target": "c"}])
    assert DiffusionPreprocessor.from_config(pre.get_config()).separator == separator


def test_bad_separator_is_refused():
    with pytest.raises(ValueError, match="separator"):
        DiffusionPreprocessor(letter_tokenizer(), 10, separator=None)


def test_a_suffix_follows_a_fixed_target_region_for_infilling():
    tokenizer = letter_tokenizer()
    pre = DiffusionPreprocessor(tokenizer, sequence_length=14, target_length=4)
    x, _, weights = pre(
        {"prefix": ["ab", "a"], "target": ["c", "cde"], "suffix": ["de", ""]}
    )
    x = _np(x)
    end = tokenizer.end_token_id
    a, b, c, d, e = (tokenizer.token_to_id(t) for t in "abcde")
    # [start] a b [end] | c [end] [pad] [pad] | d e | padding nobody reads
    np.testing.assert_array_equal(x["token_ids"][0][:10], [end, a, b, end, c, end, end, end, d, e])
    np.testing.assert_array_equal(x["target_mask"][0], [0] * 4 + [1] * 4 + [0] * 6)
    np.testing.assert_array_equal(x["padding_mask"][0], [1] * 10 + [0] * 4)
    # An empty suffix: the region alone, as without one.
    np.testing.assert_array_equal(x["token_ids"][1][:7], [end, a, end, c, d, e, end])
    np.testing.assert_array_equal(x["padding_mask"][1], [1] * 7 + [0] * 7)
    np.testing.assert_array_equal(ops.convert_to_numpy(weights), x["target_mask"].astype("float32"))

    # Generation packs the suffix after an empty region of T positions, and
    # the text comes back in reading order: prefix, target, suffix.
    batch = _np(pre.generate_preprocess({"prefix": ["ab"], "suffix": ["de"]}))
    np.testing.assert_array_equal(batch["target_mask"][0][:10], [0] * 4 + [1] * 4 + [0, 0])
    np.testing.assert_array_equal(batch["token_ids"][0][8:10], [d, e])
    batch["token_ids"][0][4:8] = [c, c, end, end]  # What a model wrote.
    assert pre.generate_postprocess(batch) == ["abccde"]
    assert pre.generate_postprocess(batch, strip_prompt=True) == ["cc"]

    # Room: start + prefix + separator + T + suffix must fit.
    pairs = [{"prefix": "abcd", "target": "a", "suffix": "abcde"},
             {"prefix": "abcd", "target": "a", "suffix": "abcd"}]
    assert pre.fitting_pairs(pairs) == pairs[1:]
    pre({k: [v] for k, v in pairs[1].items()})  # 1 + 4 + 1 + 4 + 4 = 14.
    with pytest.raises(ValueError, match="suffix"):
        pre({k: [v] for k, v in pairs[0].items()})


def test_a_suffix_needs_a_target_length_and_one_per_prompt():
    tokenizer = letter_tokenizer()
    with pytest.raises(ValueError, match="target_length"):
        DiffusionPreprocessor(tokenizer, 12)({"prefix": ["a"], "target": ["b"], "suffix": ["c"]})
    pre = DiffusionPreprocessor(tokenizer, 12, target_length=3)
    with pytest.raises(ValueError, match="one suffix per prompt"):
        pre.generate_preprocess({"prefix": ["a", "b"], "suffix": ["c"]})
