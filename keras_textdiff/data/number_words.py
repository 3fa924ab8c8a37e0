"""Numbers written in English words, and their digits: a task to learn in minutes.

`"three hundred twelve" -> "312"`. A small model trained from scratch learns
it in a few minutes on a CPU, and its answers can be checked at a glance;
every held-out number is new, so copying the prompt or looking up the
closest training spelling scores 0% exact match. `textdiff quickstart` and
the guide `guides/text_diffusion_in_ten_minutes.py` train on it.

To get a held-out number right a model has to learn how the words compose:
the word before "hundred" is the first digit, the "-ty" words give the tens,
"teen" words are two digits at once, and a missing tens word means a `0` in
the middle.
"""

import difflib

import numpy as np

from keras_textdiff.arguments import check_int

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve "
    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
COUNT = 1000  # The numbers 0 to 999.


def number_words(n):
    """English words for `0 <= n < 1000`, without "and" or hyphens.

    Args:
        n: an int from 0 to 999.

    Returns:
        A string of lowercase words separated by single spaces.

    Raises:
        ValueError: if `n` is not an int from 0 to 999.

    Example:

    >>> number_words(312)
    'three hundred twelve'
    >>> number_words(206), number_words(80), number_words(0)
    ('two hundred six', 'eighty', 'zero')
    """
    check_int("n", n, minimum=0)
    if n >= COUNT:
        raise ValueError(f"`n` must be < {COUNT}. Received: n={n!r}")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    rest = "" if n % 100 == 0 else " " + number_words(n % 100)
    return ONES[n // 100] + " hundred" + rest


def number_word_pairs(num_held_out=200, seed=0):
    """All 1,000 numbers as `{"prefix": words, "target": digits}`, split in two.

    The numbers 0 to 999 are put in the order of
    `numpy.random.default_rng(seed).permutation(1000)`; the first
    `num_held_out` of that order are the test split, the rest the train
    split, both in that order. The split depends only on `seed` and
    `num_held_out`, so it is the same on every machine (with numpy's
    `Generator`, whose permutations are stable across versions). The two
    splits never share a number, and so never share a prefix or a target.

    Args:
        num_held_out: int from 0 to 1000. How many numbers to hold out.
        seed: int >= 0. Seed of the permutation.

    Returns:
        A dict with `"train"` and `"test"`, each a list of
        `{"prefix", "target"}` dicts.

    Raises:
        ValueError: if `num_held_out` or `seed` is out of range.

    Example:

    >>> pairs = number_word_pairs()
    >>> len(pairs["train"]), len(pairs["test"])
    (800, 200)
    >>> pairs["test"][0]
    {'prefix': 'four hundred fifty nine', 'target': '459'}
    >>> number_word_pairs(num_held_out=0)["train"][0] == pairs["test"][0]
    True
    """
    check_int("num_held_out", num_held_out, minimum=0)
    if num_held_out > COUNT:
        raise ValueError(
            f"`num_held_out` must be <= {COUNT}. Received: num_held_out={num_held_out!r}"
        )
    check_int("seed", seed, minimum=0)
    order = np.random.default_rng(seed).permutation(COUNT)
    pairs = [{"prefix": number_words(int(n)), "target": str(n)} for n in order]
    return {"train": pairs[num_held_out:], "test": pairs[:num_held_out]}


def closest_training_targets(prefixes, train_pairs):
    """The target of the training pair whose prefix is spelled most like each prefix.

    A baseline: the best a model that only memorized its training pairs
    could answer. "Most like" is `difflib.get_close_matches`' similarity
    (`SequenceMatcher.ratio`; of prefixes that tie, the one that sorts
    last). On `number_word_pairs` it
    scores 0% exact match on the held-out numbers, since each of them is a
    number no training pair has.

    Args:
        prefixes: list of strings.
        train_pairs: non-empty list of `{"prefix", "target"}` dicts.

    Returns:
        A list of target strings, one per prefix.

    Example:

    >>> train = [{"prefix": "forty one", "target": "41"},
    ...          {"prefix": "five hundred", "target": "500"}]
    >>> closest_training_targets(["forty two", "six hundred"], train)
    ['41', '500']
    """
    if not train_pairs:
        raise ValueError("`train_pairs` is empty: pass the pairs to look answers up in.")
    target_of = {}
    for pair in train_pairs:
        target_of.setdefault(pair["prefix"], pair["target"])
    candidates = list(target_of)
    return [
        target_of[difflib.get_close_matches(p, candidates, n=1, cutoff=0)[0]]
        for p in prefixes
    ]
