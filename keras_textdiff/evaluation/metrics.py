"""Text-generation metrics: BLEU, chrF, SQuAD exact match / F1 and pass@k.

All corpus metrics return floats on a 0-100 scale (sacrebleu's scale for
BLEU and chrF, percentages for SQuAD, like the official scripts); `pass_at_k`
returns a probability in [0, 1] and `mean_pass_at_k` a percentage.

Example:

>>> from keras_textdiff.evaluation import metrics
>>> metrics.exact_match(["The cat."], [["the cat"]])
100.0
>>> round(metrics.f1(["the cat sat"], [["a cat sat down"]]), 2)
80.0
>>> metrics.pass_at_k(num_samples=2, num_correct=1, k=1)
0.5
"""

import collections
import re
import string

import numpy as np


def _check_lengths(predictions, references, references_name="references"):
    if isinstance(predictions, str):
        raise ValueError(
            "`predictions` must be a list of strings, not a single string. "
            f"Received: {predictions!r}"
        )
    if predictions is None or len(predictions) == 0:
        raise ValueError(
            "`predictions` is empty: a metric needs at least one prediction."
        )
    if references is None or isinstance(references, str):
        raise ValueError(
            f"`{references_name}` must be a list with one entry per "
            f"prediction. Received: {references!r}"
        )
    if len(predictions) != len(references):
        raise ValueError(
            f"`predictions` and `{references_name}` must have the same length. "
            f"Received: len(predictions)={len(predictions)}, "
            f"len({references_name})={len(references)}."
        )


def _reference_lists(references):
    """Per-example lists of reference strings (a str becomes a 1-list)."""
    out = []
    for i, refs in enumerate(references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(
                f"`references[{i}]` is empty: each example needs at least one "
                "reference."
            )
        out.append(refs)
    return out


def _sacrebleu_streams(predictions, references):
    """Per-example reference lists -> sacrebleu's per-reference streams.

    sacrebleu wants `refs[j][i]` = the j-th reference of example i, all
    streams the same length; examples with fewer references are padded with
    `None`, which sacrebleu skips.
    """
    _check_lengths(predictions, references)
    per_example = _reference_lists(references)
    width = max(len(refs) for refs in per_example)
    return [
        [refs[j] if j < len(refs) else None for refs in per_example]
        for j in range(width)
    ]


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as e:
        raise ImportError(
            "BLEU and chrF need `sacrebleu`: `pip install sacrebleu` "
            "(or `pip install keras_textdiff[eval]`)."
        ) from e
    return sacrebleu


def bleu(predictions, references, **kwargs):
    """Corpus BLEU (sacrebleu, 0-100).

    Args:
        predictions: list of strings.
        references: list of strings (one reference each), or list of lists
            of strings (several references per example).
        **kwargs: passed to `sacrebleu.metrics.BLEU` (e.g. `tokenize="zh"`).

    Example:

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 6)
    100.0
    """
    streams = _sacrebleu_streams(predictions, references)
    return float(
        _sacrebleu().metrics.BLEU(**kwargs).corpus_score(list(predictions), streams).score
    )


def chrf(predictions, references, **kwargs):
    """Corpus chrF (sacrebleu, 0-100). `word_order=2` in kwargs gives chrF++.

    Example:

    >>> chrf(["the cat sat"], [["the cat sat"]])
    100.0
    """
    streams = _sacrebleu_streams(predictions, references)
    return float(
        _sacrebleu().metrics.CHRF(**kwargs).corpus_score(list(predictions), streams).score
    )


# SQuAD v1.1: the official evaluate-v1.1.py normalization and scores.


def normalize_answer(text):
    """SQuAD v1.1's normalization: lowercase, drop punctuation and the
    articles a/an/the, collapse whitespace.

    >>> normalize_answer("The  Cat, sat!")
    'cat sat'
    """

    def remove_articles(s):
        return re.sub(r"\b(a|an|the)\b", " ", s)

    def white_space_fix(s):
        return " ".join(s.split())

    def remove_punc(s):
        exclude = set(string.punctuation)
        return "".join(ch for ch in s if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(text.lower())))


def squad_f1_score(prediction, ground_truth):
    """Token-overlap F1 (0-1) of one prediction against one answer."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(
        ground_truth_tokens
    )
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_exact_match_score(prediction, ground_truth):
    """1.0 if the normalized strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def _squad_average(score_fn, predictions, references):
    _check_lengths(predictions, references)
    per_example = _reference_lists(references)
    total = sum(
        max(score_fn(prediction, answer) for answer in answers)
        for prediction, answers in zip(predictions, per_example)
    )
    return 100.0 * total / len(predictions)


def exact_match(predictions, references):
    """SQuAD v1.1 exact match, max over each example's answers, in percent.

    Args:
        predictions: list of strings.
        references: list of answer strings, or list of lists of them.

    >>> exact_match(["an apple", "pear"], [["Apple", "fruit"], ["plum"]])
    50.0
    """
    return _squad_average(squad_exact_match_score, predictions, references)


def f1(predictions, references):
    """SQuAD v1.1 token F1, max over each example's answers, in percent.

    >>> round(f1(["the cat sat"], [["a cat sat down"]]), 2)
    80.0
    """
    return _squad_average(squad_f1_score, predictions, references)


# pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int. Received: {value!r}")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {value}")


def pass_at_k(num_samples, num_correct, k):
    """Unbiased pass@k for one problem: 1 - C(n-c, k) / C(n, k).

    Computed as in the paper's numpy code, as a product that never forms
    the (huge) binomial coefficients.

    Args:
        num_samples: n, the number of generated samples.
        num_correct: c, how many of them passed.
        k: the k in pass@k, 1 <= k <= n.

    Returns:
        A float in [0, 1].

    >>> round(pass_at_k(10, 3, 1), 6)
    0.3
    >>> pass_at_k(5, 0, 2), pass_at_k(5, 4, 2)
    (0.0, 1.0)
    """
    for name, value in (("num_samples", num_samples), ("num_correct", num_correct), ("k", k)):
        _check_count(name, value)
    n, c = int(num_samples), int(num_correct)
    if c > n:
        raise ValueError(
            f"`num_correct` ({c}) cannot exceed `num_samples` ({n})."
        )
    if not 1 <= k <= n:
        raise ValueError(
            f"`k` must be in [1, num_samples={n}]. Received: k={k}"
        )
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(num_samples, num_correct, k):
    """pass@k averaged over problems, in percent.

    Args:
        num_samples: an int (the same n for all problems) or a list of ints.
        num_correct: a list of ints, one per problem.
        k: int.

    >>> mean_pass_at_k(2, [2, 1, 0], k=1)
    50.0
    """
    if num_correct is None or len(num_correct) == 0:
        raise ValueError("`num_correct` is empty: pass@k needs at least one problem.")
    if isinstance(num_samples, (int, np.integer)) and not isinstance(num_samples, bool):
        num_samples = [num_samples] * len(num_correct)
    if len(num_samples) != len(num_correct):
        raise ValueError(
            "`num_samples` and `num_correct` must have the same length. "
            f"Received: {len(num_samples)} and {len(num_correct)}."
        )
    values = [pass_at_k(n, c, k) for n, c in zip(num_samples, num_correct)]
    return 100.0 * float(np.mean(values))
