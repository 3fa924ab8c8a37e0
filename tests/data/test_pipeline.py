"""`to_dataset` / `text_dataset`: packing, seeded shuffling, filtering."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import LETTERS
from conftest import letter_tokenizer

import keras_textdiff as ktd
from keras_textdiff.data import text_dataset
from keras_textdiff.data import to_dataset

SEQUENCE_LENGTH = 12


@pytest.fixture(scope="module")
def preprocessor():
    return ktd.DiffusionPreprocessor(letter_tokenizer(), SEQUENCE_LENGTH)


def _examples(n=20):
    # Prefix = one letter that identifies the example; target fits easily.
    return [
        {"prefix": LETTERS[i % 26] * (1 + i // 26), "target": "ab", "id": i}
        for i in range(n)
    ]


def _first_tokens(dataset):
    """Per batch, the first prefix token of each row (identifies examples)."""
    return [x["token_ids"].numpy()[:, 1].tolist() for x, *_ in dataset]


def _ids(text):
    """The letter tokenizer's ids, independently: a..z are 1..26."""
    return [LETTERS.index(c) + 1 for c in text]


def _packed(prefix, target):
    """`[start] prefix [end] target [end]`, padded; end = pad = start = 0."""
    ids = [0] + _ids(prefix) + [0] + _ids(target) + [0]
    ids += [0] * (SEQUENCE_LENGTH - len(ids))
    target_mask = [i >= len(prefix) + 2 for i in range(SEQUENCE_LENGTH)]
    return tuple(ids), tuple(target_mask)


def test_to_dataset_shapes_and_values(preprocessor):
    dataset = to_dataset(_examples(10), preprocessor, batch_size=4, shuffle=False)
    x_spec, y_spec, w_spec = dataset.element_spec
    assert w_spec.dtype == tf.float32
    assert x_spec["token_ids"].shape.as_list() == [None, SEQUENCE_LENGTH]
    assert x_spec["token_ids"].dtype == tf.int32
    assert x_spec["padding_mask"].dtype == tf.bool
    assert x_spec["target_mask"].dtype == tf.bool
    assert y_spec.dtype == tf.int32
    batches = list(dataset)
    assert [len(y) for _, y, _ in batches] == [4, 4, 2]
    x, y, weights = batches[0]
    np.testing.assert_array_equal(weights, np.asarray(x["target_mask"], "float32"))
    np.testing.assert_array_equal(x["token_ids"], y)
    # [start] a [end] a b [end] [pad]...: letter ids are 1..26, end = pad = 0.
    assert y.numpy()[0].tolist() == [0, 1, 0, 1, 2, 0] + [0] * 6
    assert x["target_mask"].numpy()[0].tolist() == [False] * 3 + [True] * 9
    # Every row, in order, is its example packed.
    rows = [
        (tuple(ids), tuple(mask))
        for x, _, _ in batches
        for ids, mask in zip(x["token_ids"].numpy().tolist(), x["target_mask"].numpy().tolist())
    ]
    assert rows == [_packed(e["prefix"], e["target"]) for e in _examples(10)]
    assert all(np.asarray(x["padding_mask"]).all() for x, _, _ in batches)
    # The same as packing the pairs directly.
    direct, _, _ = preprocessor({"prefix": ["a", "b"], "target": ["ab", "ab"]})
    np.testing.assert_array_equal(y.numpy()[:2], direct["token_ids"])


def test_to_dataset_seeded_shuffle(preprocessor):
    examples = _examples(20)
    order = lambda seed: sum(_first_tokens(to_dataset(examples, preprocessor, 5, seed=seed)), [])
    first = order(0)
    assert sorted(first) == list(range(1, 21))
    assert first != list(range(1, 21))
    assert order(0) == first  # Same seed, same order...
    tf.random.set_seed(123)  # ...whatever the global TF seed.
    assert order(0) == first
    assert order(1) != first  # A different seed, a different order.


def test_to_dataset_repeat_reshuffles_each_epoch(preprocessor):
    dataset = to_dataset(_examples(6), preprocessor, 3, seed=0, repeat=True)
    tokens = sum(_first_tokens(dataset.take(4)), [])
    epoch_1, epoch_2 = tokens[:6], tokens[6:]
    assert sorted(epoch_1) == sorted(epoch_2) == [1, 2, 3, 4, 5, 6]
    assert epoch_1 != epoch_2
    assert sum(_first_tokens(dataset.take(4)), []) == tokens  # Re-iterating.


def test_to_dataset_drop_remainder(preprocessor):
    dataset = to_dataset(_examples(10), preprocessor, 4, drop_remainder=True)
    assert dataset.element_spec[1].shape.as_list() == [4, SEQUENCE_LENGTH]
    assert len(list(dataset)) == 2


def test_to_dataset_drops_what_does_not_fit(preprocessor, capsys):
    examples = _examples(4) + [
        {"prefix": "a", "target": "b" * 20},  # Too long.
        {"prefix": "", "target": "b"},  # Empty prefix.
    ]
    dataset = to_dataset(examples, preprocessor, 8, shuffle=False)
    assert "dropped 2 of 6 examples" in capsys.readouterr().out
    assert _first_tokens(dataset) == [[1, 2, 3, 4]]
    with pytest.raises(ValueError, match="None of the 1 examples fits"):
        to_dataset(examples[4:5], preprocessor, 8)


def test_to_dataset_bad_inputs(preprocessor):
    with pytest.raises(ValueError, match="empty"):
        to_dataset([], preprocessor, 4)
    with pytest.raises(ValueError, match=r"examples\[1\].*'prefix' and 'target'.*\['question'"):
        to_dataset([{"prefix": "a", "target": "b"}, {"question": "a"}], preprocessor, 4)
    with pytest.raises(ValueError, match="batch_size"):
        to_dataset(_examples(2), preprocessor, 0)


def test_text_dataset(preprocessor, capsys):
    # Building and iterating a pipeline with the tokenizer inside costs a few
    # seconds, so this test builds only two.
    # Runs of distinct letters; the last three longer than the 9 tokens that
    # fit (12 - start - end - end), so they are cropped to a window.
    texts = [LETTERS[i : 2 * i + 3] for i in range(7)]
    texts += [LETTERS[:10], LETTERS[10:21], LETTERS[:12][::-1], ""]
    # Every packing the docstring allows, independently: a window of
    # min(len, 9) consecutive tokens at any offset, split at any token with
    # both parts non-empty.
    packings = {}
    for index, text in enumerate(texts[:-1]):
        width = min(len(text), 9)
        for offset in range(len(text) - width + 1):
            for k in range(1, width):
                key = _packed(text[offset : offset + k], text[offset + k : offset + width])
                assert packings.setdefault(key, index) == index  # Unambiguous.

    def texts_of(batches):
        """Each row's text (by its packing, which must be one of those)."""
        found = []
        for x, y, weights in batches:
            np.testing.assert_array_equal(x["token_ids"], y)
            np.testing.assert_array_equal(weights, np.asarray(x["target_mask"], "float32"))
            assert np.asarray(x["padding_mask"]).all()
            for ids, mask in zip(y.numpy().tolist(), x["target_mask"].numpy().tolist()):
                assert (tuple(ids), tuple(mask)) in packings, (ids, mask)
                found.append((packings[tuple(ids), tuple(mask)], tuple(ids)))
        return found

    dataset = text_dataset(texts, preprocessor, batch_size=4, seed=0)
    assert "dropped 1 empty texts" in capsys.readouterr().out
    batches = list(dataset)
    assert [len(y) for _, y, _ in batches] == [4, 4, 2]
    assert batches[0][1].dtype == tf.int32
    # Every text once per pass, in an order that changes with the seed.
    first = [index for index, _ in texts_of(batches)]
    assert sorted(first) == list(range(10))
    other = text_dataset(texts, preprocessor, 5, seed=1, repeat=True, verbose=False)
    epochs = texts_of(other.take(4))
    order = [index for index, _ in epochs]
    assert sorted(order[:10]) == sorted(order[10:]) == list(range(10))
    assert order[:10] != first and order[10:] != order[:10]
    # A text gets a new random split (and window) each time it is seen.
    assert {text: ids for text, ids in epochs[:10]} != {text: ids for text, ids in epochs[10:]}
    with pytest.raises(ValueError, match="list of strings"):
        text_dataset("abc", preprocessor, 4)
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        text_dataset(["abc", 3], preprocessor, 4)


def test_to_dataset_trains_a_model(preprocessor):
    from conftest import gpt2_backbone

    dataset = to_dataset(_examples(16), preprocessor, 8, seed=0)
    model = ktd.DiffusionDecoder(
        gpt2_backbone(preprocessor.tokenizer.vocabulary_size(), sequence_length=SEQUENCE_LENGTH),
        preprocessor=None,  # The batches are packed already.
    )
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
