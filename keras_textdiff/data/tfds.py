"""Any TensorFlow Datasets (TFDS) dataset as `{"prefix", "target"}` examples."""

import numpy as np


def _to_python(value):
    """numpy / bytes values from `tfds.as_numpy` as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _to_python(value.item())
        return [_to_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    return value


def _get_field(example, path, name):
    """Reads a dotted feature path such as `"answers.text"`."""
    value = example
    for k, part in enumerate(path.split(".")):
        if not isinstance(value, dict) or part not in value:
            where = ".".join(path.split(".")[:k]) or "the example"
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise KeyError(
                f"TFDS dataset {name!r} has no feature {path!r}: {where!r} "
                f"has no key {part!r} (available: {keys})."
            )
        value = value[part]
    return value


def load_tfds(
    name,
    split,
    fields,
    data_dir=None,
    download=False,
    max_examples=None,
    transform=None,
):
    """Loads a TFDS dataset by name as a list of example dicts.

    Each output key is read from a (possibly nested, dotted) feature path of
    the TFDS example; strings are decoded to `str`, numeric scalars become
    Python numbers and sequences become lists. `"prefix"` and `"target"`
    must be mapped, and must be strings, except that a list-valued
    `"target"` (e.g. SQuAD's `"answers.text"`) is replaced by its first
    element; map the same path to another key (`"answers"`) to keep them all.

    Nothing is downloaded unless `download=True`: the dataset must already be
    prepared under `data_dir` (TFDS's default `~/tensorflow_datasets` when
    `None`), and TFDS's Google Cloud Storage copy is never tried
    (`try_gcs=False`).

    Args:
        name: TFDS name, with config and version if needed, e.g.
            `"wmt14_translate/fr-en"` or `"squad/v1.1:3.0.0"`.
        split: TFDS split string, e.g. `"train"`, `"validation[:10%]"`.
        fields: dict `{output_key: feature_path}`, e.g.
            `{"prefix": "en", "target": "fr"}`.
        data_dir: directory holding the prepared dataset.
        download: bool, let TFDS download and prepare the dataset.
        max_examples: int or `None`, stop after this many examples.
        transform: optional function applied to every example dict after
            the mapping (e.g. to build a prompt from several fields); it
            returns the new example dict.

    Returns:
        A list of dicts with the keys of `fields` (or of `transform`'s
        output), in dataset order.

    Raises:
        FileNotFoundError: if the dataset is not prepared under `data_dir`
            and `download=False`.
        ValueError: if `fields` lacks `"prefix"` or `"target"`, or a field is
            not a string.
        KeyError: if a feature path does not exist (the message lists the
            available features).

    Example:

    >>> pairs = load_tfds(                                  # doctest: +SKIP
    ...     "wmt14_translate/fr-en", "validation",
    ...     {"prefix": "en", "target": "fr"}, data_dir="~/tensorflow_datasets")
    >>> squad = load_tfds(                                  # doctest: +SKIP
    ...     "squad/v1.1", "validation",
    ...     {"prefix": "question", "target": "answers.text",
    ...      "answers": "answers.text", "id": "id"},
    ...     transform=lambda e: e)
    """
    import tensorflow_datasets as tfds

    if not isinstance(fields, dict):
        raise ValueError(
            "`fields` must be a dict {output_key: feature_path}, e.g. "
            f"{{'prefix': 'en', 'target': 'fr'}}. Received: fields={fields!r}"
        )
    missing = [key for key in ("prefix", "target") if key not in fields]
    if missing and transform is None:
        raise ValueError(
            f"`fields` must map 'prefix' and 'target'; missing {missing}. "
            f"Received: fields={fields!r}"
        )
    try:
        dataset = tfds.load(
            name,
            split=split,
            data_dir=None if data_dir is None else str(data_dir),
            download=download,
            try_gcs=False,
            shuffle_files=False,
        )
    except AssertionError as error:  # TFDS's "could not find data".
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared under data_dir="
            f"{data_dir!r}: {error} (load_tfds never downloads unless "
            "download=True.)"
        ) from None
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    examples = []
    for raw in tfds.as_numpy(dataset):
        example = {
            key: _to_python(_get_field(raw, path, name))
            for key, path in fields.items()
        }
        if isinstance(example.get("target"), list):
            example["target"] = example["target"][0] if example["target"] else ""
        if transform is not None:
            example = transform(example)
        for key in ("prefix", "target"):
            if not isinstance(example.get(key), str):
                raise ValueError(
                    f"TFDS dataset {name!r}: {key!r} must be a string, got "
                    f"{type(example.get(key)).__name__} from feature "
                    f"{fields.get(key)!r}."
                )
        examples.append(example)
    return examples
