"""`textdiff quickstart`'s job, on a budget of a few steps."""

import difflib
import json
import os
import re

import pytest

from keras_textdiff import DiffusionDecoder
from keras_textdiff import DiffusionSampler
from keras_textdiff.data.number_words import number_word_pairs
from keras_textdiff.quickstart import body_scores
from keras_textdiff.quickstart import run_quickstart

# Word values, to read the task's words back without its own code.
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen " \
    "fourteen fifteen sixteen seventeen eighteen nineteen".split()
_VALUES = {w: i for i, w in enumerate(_UNITS)}
_VALUES.update({w: 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)})


def _read_number(words):
    total = 0
    for word in words.split():
        total = total * 100 if word == "hundred" else total + _VALUES[word]
    return total


def test_number_word_pairs_spell_every_number_once_and_hold_out_a_fixed_fifth():
    pairs = number_word_pairs()
    train, test = pairs["train"], pairs["test"]
    assert (len(train), len(test)) == (800, 200)
    every = train + test
    assert sorted(int(p["target"]) for p in every) == list(range(1000))
    for pair in every:
        assert _read_number(pair["prefix"]) == int(pair["target"]), pair
        assert pair["target"] == str(int(pair["target"]))  # No leading zeros.
    assert number_word_pairs() == pairs  # The same split every time.
    assert number_word_pairs(seed=1)["test"] != test
    with pytest.raises(ValueError, match="num_held_out"):
        number_word_pairs(num_held_out=1001)


def test_body_scores_count_exact_bodies_and_parsing_functions():
    prompts = ["def f():\n", "def g():\n", "def h():\n"]
    bodies = ["    return 1\n", "    return (\n", "  pass"]
    references = ["    return 1\n", "    return 2\n", "    pass\n"]
    scores = body_scores(prompts, bodies, references)
    assert scores["exact_match"] == pytest.approx(200 / 3)  # Whitespace aside.
    assert scores["parses"] == pytest.approx(200 / 3)  # "return (" does not.


def test_quickstart_numbers_scores_beside_its_baselines_and_reloads(tmp_path, capsys):
    out = str(tmp_path / "run")
    results = run_quickstart(out, train_seconds=60, max_steps=2, batch_size=4)
    printed = capsys.readouterr().out
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics == json.loads(json.dumps(results))
    assert metrics["task"] == "numbers" and metrics["train_steps"] == 2
    assert not metrics["stopped_by_time_budget"]
    assert "stopped at max_steps, after 2 steps" in printed

    # The printed table is the saved metrics.
    table = dict(re.findall(r"^ {4}(\S.*?) {2,}(\d+\.\d)%$", printed, re.M))
    assert table == {
        "diffusion model": f"{metrics['exact_match']:.1f}",
        "copy the prompt (baseline)": f"{metrics['baseline_copy_prompt_exact_match']:.1f}",
        "closest training spelling (baseline)":
            f"{metrics['baseline_closest_training_exact_match']:.1f}",
    }, printed

    # The baselines, recomputed here: each held-out number is new, so neither
    # copying the words nor the closest training spelling's digits is right.
    pairs = number_word_pairs()
    held_out = pairs["test"]
    assert metrics["held_out_numbers"] == len(held_out) == 200
    prompts = [p["prefix"] for p in held_out]
    references = [p["target"] for p in held_out]
    train = {p["prefix"]: p["target"] for p in pairs["train"]}

    def closest(words):
        return max(train, key=lambda t: (difflib.SequenceMatcher(None, t, words).ratio(), t))

    closest_right = sum(train[closest(w)] == r for w, r in zip(prompts, references))
    assert metrics["baseline_closest_training_exact_match"] == 100.0 * closest_right / 200 == 0.0
    assert metrics["baseline_copy_prompt_exact_match"] == 0.0

    # The preset reloads, and with the same sampler seed writes the answers
    # the metric was computed on.
    model = DiffusionDecoder.from_preset(metrics["preset"])
    model.compile(sampler=DiffusionSampler(num_steps=10, temperature=0.2, num_samples=8, seed=0))
    answers = model.generate(prompts, strip_prompt=True)
    right = [a == r for a, r in zip(answers, references)]
    assert metrics["exact_match"] == pytest.approx(100.0 * sum(right) / 200)
    assert metrics["wrong"] == right.count(False)
    assert f"{right.count(False)} of 200 wrong" in printed
    # Three examples, as printed, with an error among them when there is one.
    answer_of = dict(zip(prompts, answers))
    examples = metrics["examples"]
    assert len(examples) == 3
    for example in examples:
        assert example["answer"] == answer_of[example["prompt"]]
        verdict = "right" if example["answer"] == example["reference"] else "WRONG"
        line = (f"{example['prompt']!r:30} -> {example['answer']!r:7} "
                f"reference {example['reference']!r:6} {verdict}")
        assert line in printed, (line, printed)
    if not all(right):
        assert any(e["answer"] != e["reference"] for e in examples)

    # The denoising trajectory: the start and 10 steps, as text and as a picture.
    states = re.findall(r"^ +(start|step +\d+): ", printed, re.M)
    assert states == ["start"] + [f"step {i:2d}" for i in range(1, 11)], printed
    assert os.path.getsize(os.path.join(out, "trajectory.png")) > 0

    # Another quickstart into the same directory is refused before any work.
    before = os.path.getmtime(os.path.join(out, "metrics.json"))
    with pytest.raises(ValueError, match="already holds a quickstart run"):
        run_quickstart(out, max_steps=1)
    assert os.path.getmtime(os.path.join(out, "metrics.json")) == before


@pytest.mark.parametrize("arguments, message", [
    ({"task": "nope"}, "`task` must be one of"),
    ({"sequence_length": 64}, "`sequence_length` applies to task 'code' only"),
    ({"vocabulary_size": 300, "sequence_length": 8}, "`sequence_length` and `vocabulary_size`"),
    ({"task": "code", "batch_size": 0}, "`batch_size` must be an int >= 1"),
    ({"train_seconds": float("nan")}, "`train_seconds` must be a finite number"),
])
def test_quickstart_refuses_bad_arguments_before_any_work(tmp_path, arguments, message):
    out = str(tmp_path / "run")
    with pytest.raises(ValueError, match=re.escape(message)):
        run_quickstart(out, **arguments)
    assert not os.path.exists(out)


@pytest.mark.large  # The default task's run above is the CI's check.
def test_quickstart_code_trains_scores_saves_and_never_overwrites(tmp_path, capsys):
    out = str(tmp_path / "run")
    results = run_quickstart(
        out, task="code", train_seconds=60, max_steps=2, batch_size=4, num_scored=4
    )
    printed = capsys.readouterr().out
    assert results["task"] == "code" and results["train_steps"] == 2
    assert "stopped at max_steps, after 2 steps" in printed
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(results))
    assert results["baseline_pass_parses"] == 100.0  # `pass` always parses.
    assert os.path.exists(os.path.join(out, "preset", "config.json"))
    assert os.path.getsize(os.path.join(out, "trajectory.png")) > 0
    before = os.path.getmtime(os.path.join(out, "metrics.json"))
    with pytest.raises(ValueError, match="already holds a quickstart run"):
        run_quickstart(out, max_steps=1)
    assert os.path.getmtime(os.path.join(out, "metrics.json")) == before
