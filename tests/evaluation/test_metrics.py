import itertools

import pytest

from keras_textdiff.evaluation import metrics


def test_squad_f1_and_exact_match_by_hand():
    # "the cat sat" -> "cat sat"; "a cat sat down" -> "cat sat down".
    # 2 common tokens: precision 2/2, recall 2/3, F1 = 2 * 1 * 2/3 / (5/3) = 0.8.
    assert metrics.f1(["the cat sat"], [["a cat sat down"]]) == pytest.approx(80.0)
    assert metrics.exact_match(["the cat sat"], [["a cat sat down"]]) == 0.0
    # Max over references: "Broncos" gives 2/3, "Denver Broncos team" gives 0.8.
    assert metrics.f1(["Denver Broncos"], [["Broncos", "Denver Broncos team"]]) == pytest.approx(80.0)
    # Averaged over examples, in percent; a plain string is one reference.
    assert metrics.f1(["the cat sat", "nothing"], ["a cat sat down", "else"]) == pytest.approx(40.0)
    assert metrics.exact_match(["The Cat!", "an  Apple.", "pear"], [["cat"], ["apple"], ["plum"]]) == pytest.approx(200 / 3)


def test_official_normalization():
    assert metrics.normalize_answer("The  Cat, sat!") == "cat sat"
    assert metrics.normalize_answer("theory of the Universe") == "theory of universe"
    assert metrics.normalize_answer("rock'n'roll") == "rocknroll"
    assert metrics.normalize_answer("An apple a day") == "apple day"
    assert metrics.squad_f1_score("the", "a") == 0.0  # both normalize to nothing


@pytest.mark.parametrize("name", ["bleu", "chrf"])
def test_bleu_and_chrf_equal_sacrebleu(name):
    sacrebleu = pytest.importorskip("sacrebleu")
    predictions = ["the cat sat on the mat", "a dog ran in the park today", "hello there"]
    references = ["the cat is on the mat", "the dog ran in a park", "hello there friend"]
    second = ["a cat sat on the mat", "a dog runs in the park", "hi there"]
    direct = getattr(sacrebleu, f"corpus_{name}")
    fn = getattr(metrics, name)
    assert fn(predictions, references) == pytest.approx(direct(predictions, [references]).score)
    both = [[a, b] for a, b in zip(references, second)]
    assert fn(predictions, both) == pytest.approx(direct(predictions, [references, second]).score)
    assert fn(predictions, both) != pytest.approx(fn(predictions, references))
    # A varying number of references equals repeating one (duplicates change nothing).
    ragged = [[references[0]], both[1], both[2]]
    padded = [references, [references[0], second[1], second[2]]]
    assert fn(predictions, ragged) == pytest.approx(direct(predictions, padded).score)
    assert isinstance(fn(predictions, references), float)


def brute_force_pass_at_k(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_enumeration_of_subsets():
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert metrics.pass_at_k(n, c, k) == pytest.approx(
                    brute_force_pass_at_k(n, c, k), abs=1e-12
                ), (n, c, k)


def test_pass_at_k_is_stable_for_large_n_and_averages():
    # C(1000, 500) overflows floats; the product form does not.
    value = metrics.pass_at_k(1000, 1, 500)
    assert value == pytest.approx(0.5)
    assert metrics.pass_at_k(200, 0, 100) == 0.0
    assert metrics.mean_pass_at_k(2, [2, 1, 0], k=1) == pytest.approx(50.0)
    assert metrics.mean_pass_at_k([1, 4], [1, 2], k=1) == pytest.approx(75.0)


@pytest.mark.parametrize("fn", [metrics.bleu, metrics.chrf, metrics.exact_match, metrics.f1])
def test_empty_and_mismatched_inputs_raise(fn):
    # The argument checks run before sacrebleu is imported.
    with pytest.raises(ValueError, match="`predictions` is empty"):
        fn([], [])
    with pytest.raises(ValueError, match="`references`"):
        fn(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="`predictions` must be a list"):
        fn("a", ["a"])
    with pytest.raises(ValueError, match=r"`references\[0\]` is empty"):
        fn(["a"], [[]])


def test_pass_at_k_argument_errors():
    with pytest.raises(ValueError, match="`k`"):
        metrics.pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="`num_correct`"):
        metrics.pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="`num_samples`"):
        metrics.pass_at_k(-1, 0, 1)
    with pytest.raises(ValueError, match="`num_correct` is empty"):
        metrics.mean_pass_at_k(3, [], 1)
    with pytest.raises(ValueError, match="same length"):
        metrics.mean_pass_at_k([3, 3], [1], 1)
