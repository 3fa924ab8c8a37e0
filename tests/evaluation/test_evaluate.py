import collections
import re
import string

import keras_hub
import pytest

import keras_textdiff as ktd
from conftest import ar_letter_tokenizer
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from keras_textdiff.evaluation import evaluate
from keras_textdiff.evaluation.evaluate import strip_prompt

SEQUENCE_LENGTH = 12


class StubModel:
    """`generate` answers from a table: prompt -> list of outputs, cycled."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        self.counts = {}

    def generate(self, prompts, max_length=None):
        self.calls.append((list(prompts), max_length))
        outputs = []
        for prompt in prompts:
            options = self.answers[prompt]
            i = self.counts.get(prompt, 0)
            self.counts[prompt] = i + 1
            outputs.append(options[i % len(options)])
        return outputs


def test_translation_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    predictions = ["the cat sat on the mat", "a dog ran in the park", "hello"]
    targets = ["the cat is on the mat", "the dog ran in a park", "hello there"]
    examples = [{"prefix": f"p{i}", "target": t} for i, t in enumerate(targets)]
    model = StubModel({f"p{i}": [p] for i, p in enumerate(predictions)})
    result = evaluate(model, examples, "translation", batch_size=2, verbose=0)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [targets]).score)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(predictions, [targets]).score)
    assert result["num_examples"] == 3 and result["predictions"] == predictions
    assert [len(prompts) for prompts, _ in model.calls] == [2, 1]  # batches of 2


def test_squad_by_hand():
    examples = [
        {"prefix": "q1", "target": "a cat sat down", "answers": ["a cat sat down"]},
        {"prefix": "q2", "target": "Paris", "answers": ["paris", "Paris, France"]},
    ]
    model = StubModel({"q1": ["the cat sat"], "q2": ["Paris."]})
    result = evaluate(model, examples, "squad", verbose=0)
    # q1: F1 0.8 (see test_metrics), EM 0; q2: EM and F1 1.
    assert result["f1"] == pytest.approx(90.0)
    assert result["exact_match"] == pytest.approx(50.0)


CORRECT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
MBPP = {"target": CORRECT, "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"],
        "setup_code": "import math", "reference_code": CORRECT}


def test_mbpp_pass_at_1():
    examples = [dict(MBPP, prefix="good"), dict(MBPP, prefix="bad")]
    model = StubModel({"good": [CORRECT], "bad": [WRONG]})
    result = evaluate(model, examples, "mbpp", verbose=0, timeout=5.0)
    assert result["pass@1"] == pytest.approx(50.0)
    assert result["predictions"] == [CORRECT, WRONG]


def test_mbpp_setup_code_runs_after_the_generated_code():
    # Like MBPP task 367: the setup builds objects from the solution's class.
    code = "class Node:\n    def __init__(self, v):\n        self.v = v\n\ndef value(n):\n    return n.v\n"
    example = {"prefix": "p", "target": code, "reference_code": code,
               "setup_code": "root = Node(3)", "tests": ["assert value(root) == 3"]}
    result = evaluate(StubModel({"p": [code]}), [example], "mbpp", verbose=0)
    assert result["pass@1"] == 100.0


def test_mbpp_pass_at_k_over_samples():
    examples = [dict(MBPP, prefix="half"), dict(MBPP, prefix="none"), dict(MBPP, prefix="all")]
    model = StubModel({"half": [CORRECT, WRONG], "none": [WRONG], "all": [CORRECT]})
    result = evaluate(model, examples, "mbpp", num_samples=2, k=(1, 2), batch_size=4, verbose=0)
    # pass@1: (1/2 + 0 + 1) / 3; pass@2: (1 + 0 + 1) / 3.
    assert result["pass@1"] == pytest.approx(50.0)
    assert result["pass@2"] == pytest.approx(200 / 3)
    assert result["predictions"][0] == [CORRECT, WRONG]
    assert [p for call, _ in model.calls for p in call] == ["half", "half", "none", "none", "all", "all"]


def test_humaneval_pass_at_1():
    prompt = 'def inc(x):\n    """Add one."""\n'
    example = {"prompt": prompt, "test": "def check(candidate):\n    assert candidate(1) == 2\n",
               "entry_point": "inc", "target": "    return x + 1\n"}
    examples = [dict(example, prefix=prompt), dict(example, prefix=prompt + " ")]
    model = StubModel({prompt: ["    return x + 1\n"], prompt + " ": ["    return x\n"]})
    assert evaluate(model, examples, "humaneval", verbose=0)["pass@1"] == pytest.approx(50.0)


def test_argument_errors():
    model = StubModel({"a": ["b"]})
    ok = [{"prefix": "a", "target": "b"}]
    with pytest.raises(ValueError, match="translation, squad, mbpp, humaneval"):
        evaluate(model, ok, "summarization")
    with pytest.raises(ValueError, match="`examples`"):
        evaluate(model, [], "translation")
    with pytest.raises(ValueError, match=r"examples\[0\].*answers"):
        evaluate(model, ok, "squad")
    with pytest.raises(ValueError, match="`k`"):
        evaluate(model, [dict(MBPP, prefix="a")], "mbpp", num_samples=1, k=(1, 2))
    with pytest.raises(ValueError, match="`batch_size`"):
        evaluate(model, ok, "translation", batch_size=0)
    with pytest.raises(ValueError, match="`model`"):
        evaluate(object(), ok, "translation")


def test_strip_prompt():
    assert strip_prompt("abc def", "abc") == " def"
    assert strip_prompt("abc def", "ABC", round_tripped="abc") == " def"
    assert strip_prompt("ab cdef", "ab x") == "cdef"  # longest common prefix


def squad_scores(predictions, answers):
    """SQuAD v1.1 exact match and F1 in percent, written out from the
    official evaluate-v1.1.py: normalize (lowercase, no punctuation, no
    articles, single spaces), best over each example's answers."""

    def normalize(text):
        text = "".join(c for c in text.lower() if c not in string.punctuation)
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())

    def f1(prediction, answer):
        p, a = normalize(prediction).split(), normalize(answer).split()
        same = sum((collections.Counter(p) & collections.Counter(a)).values())
        return 0.0 if same == 0 else 2 * same / (len(p) + len(a))

    em = [max(float(normalize(p) == normalize(a)) for a in ans) for p, ans in zip(predictions, answers)]
    f1s = [max(f1(p, a) for a in ans) for p, ans in zip(predictions, answers)]
    return 100 * sum(em) / len(em), 100 * sum(f1s) / len(f1s)


def tiny_gpt2_causal_lm():
    tokenizer = ar_letter_tokenizer()
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    backbone = gpt2_backbone(tokenizer.vocabulary_size(), sequence_length=SEQUENCE_LENGTH)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=preprocessor)


def test_keras_hub_causal_lm_greedy_and_sampler(capsys):
    model = tiny_gpt2_causal_lm()
    original = model.sampler
    prompts = ["abc", "de", "fgh", "ij", "k"]
    model.compile(sampler="greedy")
    end = model.preprocessor.tokenizer.end_token
    expected = []
    for p, full in zip(prompts, model.generate(prompts)):
        assert full.startswith(p)
        expected.append(full[len(p):].split(end)[0])
    model.compile(sampler=original)
    # Answers the greedy predictions match in part, after normalization
    # (case, articles, punctuation), in full, or not at all.
    answers = [
        [expected[0] + " zz"],
        ["zz", "The " + expected[1].upper() + "."],
        [expected[2]],
        ["zz"],
        ["zz " + expected[4], "zz"],
    ]
    examples = [{"prefix": p, "target": "xyz", "answers": a} for p, a in zip(prompts, answers)]
    result = evaluate(model, examples, "squad", batch_size=2, verbose=1)
    assert "3/3" in capsys.readouterr().out  # the progress bar over 3 batches
    assert model.sampler is original  # restored
    assert result["predictions"] == expected
    em, f1 = squad_scores(expected, answers)
    assert 0 < em < f1 < 100  # Not a trivial 0 or 100.
    assert (result["exact_match"], result["f1"]) == (pytest.approx(em), pytest.approx(f1))
    sampled = evaluate(model, examples[:2], "squad", verbose=0, max_length=8,
                       sampler=keras_hub.samplers.TopKSampler(k=5, seed=1))
    assert len(sampled["predictions"]) == 2
    tokenize = model.preprocessor.tokenizer
    for prompt, prediction in zip(["abc", "de"], sampled["predictions"]):
        # start token + prompt + continuation <= max_length tokens.
        assert 1 + len(tokenize(prompt)) + len(tokenize(prediction)) <= 8


def test_diffusion_decoder():
    tokenizer = letter_tokenizer()
    backbone = gpt2_backbone(tokenizer.vocabulary_size())
    model = ktd.DiffusionDecoder(backbone, ktd.DiffusionPreprocessor(tokenizer, SEQUENCE_LENGTH))
    original = model.sampler
    prefixes = ["abc", "de", "fgh"]
    config = dict(num_steps=2, num_samples=2, seed=3)
    model.compile(sampler=ktd.DiffusionSampler(**config))
    predictions = model.generate(prefixes, strip_prompt=True)
    model.compile(sampler=original)
    # Answers that the (seeded) predictions match in part, in full, not at all.
    answers = [[predictions[0].split()[0]], ["zz", predictions[1]], ["ab"]]
    examples = [{"prefix": p, "target": "ab", "answers": a} for p, a in zip(prefixes, answers)]
    result = evaluate(model, examples, "squad", verbose=0,
                      sampler=ktd.DiffusionSampler(**config))
    assert model.sampler is original
    assert result["predictions"] == predictions
    em, f1 = squad_scores(predictions, answers)
    assert 0 < em < f1 < 100  # Not a trivial 0 or 100.
    assert (result["exact_match"], result["f1"]) == (pytest.approx(em), pytest.approx(f1))
    assert result["num_examples"] == 3
