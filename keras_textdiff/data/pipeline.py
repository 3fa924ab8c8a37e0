"""`tf.data` input pipelines for a `DiffusionDecoder`.

`model.fit(dict_of_lists, shuffle=True)` cannot be seeded (keras-hub passes
in-memory data through without our seed), so these functions build the
`tf.data.Dataset` themselves: the order of the examples depends only on
`seed` (stateless shuffles, one permutation per epoch, independent of the
global TF seed), then batches are packed by the `DiffusionPreprocessor`.
"""

import numpy as np
import tensorflow as tf


def _permuted_indices(n, seed, shuffle, repeat):
    """Indices 0..n-1, one stateless permutation per epoch when shuffling."""
    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)

    def epoch_order(epoch):
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.cast(seed, tf.int64), epoch])
            )
        return tf.data.Dataset.from_tensor_slices(order)

    return epochs.flat_map(epoch_order)


def _check_batch_size(batch_size):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )


def _pack_pairs(preprocessor, pairs, chunk_size=4096):
    """Packs pairs eagerly (packing a pair is deterministic), in chunks.

    Returns the packed `x` arrays and the loss weights (`sample_weight`).
    """
    chunks = []
    for start in range(0, len(pairs), chunk_size):
        chunk = pairs[start : start + chunk_size]
        x, _, weights = preprocessor(
            {
                "prefix": [p["prefix"] for p in chunk],
                "target": [p["target"] for p in chunk],
            }
        )
        chunks.append({**{k: np.asarray(v) for k, v in x.items()}, "_weights": np.asarray(weights)})
    packed = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    return packed, packed.pop("_weights")


def to_dataset(
    examples,
    preprocessor,
    batch_size,
    seed=0,
    shuffle=True,
    repeat=False,
    drop_remainder=False,
    verbose=True,
):
    """Packs `{"prefix", "target"}` examples into a `tf.data.Dataset`.

    Pairs that do not fit `preprocessor.sequence_length` whole (and pairs
    with an empty prefix) are dropped first with
    `preprocessor.fitting_pairs`, and the number dropped is printed. The
    others are packed by `preprocessor` once, up front (packing a pair is
    deterministic, and this keeps the tokenizer out of the `tf.data` graph,
    which is far faster to build and run; the packed arrays take
    `3 * len(examples) * sequence_length` bytes plus the int32 ids), then
    shuffled with `seed` (a new permutation every epoch when `repeat=True`;
    the order depends on nothing but `seed`, not on the global TF seed),
    batched and prefetched. Keys other than `"prefix"` and `"target"` are
    ignored.

    Args:
        examples: list of dicts with `"prefix"` and `"target"` strings, e.g.
            from `load_task`.
        preprocessor: a `keras_textdiff.DiffusionPreprocessor`.
        batch_size: int, examples per batch.
        seed: int, the shuffling seed.
        shuffle: bool; `False` keeps the order of `examples`.
        repeat: bool, repeat forever (pass `steps_per_epoch` to `fit`).
        drop_remainder: bool, drop the last smaller batch of each pass.
        verbose: bool, print how many examples were dropped.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)` batches, `x` =
        `{"token_ids": int32, "padding_mask": bool, "target_mask": bool}`,
        each `[batch, sequence_length]`, `y` the int32 `token_ids` and
        `sample_weight` the float32 loss weights (the target region).
        Feed it to a `DiffusionDecoder` whose `preprocessor` is `None`
        (keras-hub's `fit` would otherwise pack the packed batches again).

    Raises:
        ValueError: if `examples` is empty, an example lacks `"prefix"` or
            `"target"`, or no example fits `sequence_length`.

    Example:

    ```python
    train = load_task("mbpp", "data/mbpp/mbpp.jsonl", "train")
    ds = to_dataset(train, preprocessor, batch_size=8, seed=0, repeat=True)
    # keras-hub's `fit` maps a model's own preprocessor over a tf.data
    # dataset, so train on packed batches with a model that has none:
    model = keras_textdiff.DiffusionDecoder(backbone, preprocessor=None)
    model.fit(ds, steps_per_epoch=100, epochs=3)
    ```
    """
    _check_batch_size(batch_size)
    examples = list(examples)
    if not examples:
        raise ValueError("`examples` is empty: nothing to put in a dataset.")
    for k, example in enumerate(examples):
        if not isinstance(example, dict) or not {"prefix", "target"} <= set(example):
            keys = sorted(example) if isinstance(example, dict) else type(example).__name__
            raise ValueError(
                f"`examples[{k}]` must be a dict with 'prefix' and 'target' "
                f"strings. Received: {keys}"
            )
    pairs = [{"prefix": e["prefix"], "target": e["target"]} for e in examples]
    kept = preprocessor.fitting_pairs(pairs)
    dropped = len(pairs) - len(kept)
    if verbose and dropped:
        print(
            f"to_dataset: dropped {dropped} of {len(pairs)} examples that do "
            f"not fit sequence_length={preprocessor.sequence_length} (or have "
            f"an empty prefix); {len(kept)} remain."
        )
    if not kept:
        raise ValueError(
            f"None of the {len(pairs)} examples fits sequence_length="
            f"{preprocessor.sequence_length} (start + prefix + end + target + "
            "end). Raise `sequence_length` or use shorter examples."
        )
    packed, weights = _pack_pairs(preprocessor, kept)
    packed = {key: tf.constant(value) for key, value in packed.items()}
    weights = tf.constant(weights)

    def gather(indices):
        x = {key: tf.gather(value, indices) for key, value in packed.items()}
        return x, x["token_ids"], tf.gather(weights, indices)

    indices = _permuted_indices(len(kept), seed, shuffle, repeat)
    dataset = indices.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(gather).prefetch(tf.data.AUTOTUNE)


def text_dataset(
    texts,
    preprocessor,
    batch_size,
    seed=0,
    shuffle=True,
    repeat=False,
    drop_remainder=False,
    verbose=True,
):
    """Packs raw texts (a corpus) into a `tf.data.Dataset`.

    Each text becomes one sequence, packed by `preprocessor` inside the
    `tf.data` pipeline (so a text gets a new random split every time it is
    seen): the preprocessor crops a random window
    that fits `sequence_length` and splits it into prefix and target at a
    random token (its own `seed` controls that randomness). Empty strings
    are dropped (and counted in the printed message); the order of the
    texts depends only on `seed`.

    Args:
        texts: list of strings, e.g. `load_python_stdlib("train")["texts"]`.
        preprocessor: a `keras_textdiff.DiffusionPreprocessor`.
        batch_size: int, texts per batch.
        seed: int, the shuffling seed.
        shuffle, repeat, drop_remainder, verbose: as in `to_dataset`.

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches as in `to_dataset`.

    Example:

    ```python
    texts = load_python_stdlib("train")["texts"]
    ds = text_dataset(texts, model.preprocessor, batch_size=16, seed=0, repeat=True)
    model.fit(ds, steps_per_epoch=200)
    ```
    """
    _check_batch_size(batch_size)
    if isinstance(texts, str):
        raise ValueError("`texts` must be a list of strings, not one string.")
    texts = list(texts)
    bad = [k for k, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(
            f"`texts` must hold strings; `texts[{bad[0]}]` is a "
            f"{type(texts[bad[0]]).__name__}."
        )
    kept = [t for t in texts if t]
    if verbose and len(kept) < len(texts):
        print(f"text_dataset: dropped {len(texts) - len(kept)} empty texts.")
    if not kept:
        raise ValueError("`texts` holds no non-empty string.")
    texts = tf.constant(kept, tf.string)
    indices = _permuted_indices(len(kept), seed, shuffle, repeat)
    dataset = indices.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda i: preprocessor(tf.gather(texts, i)))
    return dataset.prefetch(tf.data.AUTOTUNE)
