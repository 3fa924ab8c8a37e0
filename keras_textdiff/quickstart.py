"""`textdiff quickstart`: train a small diffusion model from scratch, and show it.

Two tasks, each scored beside trivial baselines:

* `"numbers"` (the default): read a number written in English words and
  write it in digits (`"three hundred twelve" -> "312"`; see
  `keras_textdiff.data.number_words`), one token per character. Every
  held-out number is new, so copying the prompt and looking up the closest
  training spelling both score 0% exact match; a tiny model trained for a
  few minutes on 2 CPU cores gets most of them right. The recipe is the one
  of `guides/text_diffusion_in_ten_minutes.py`.
* `"code"`: write Python function bodies from their signatures, trained on
  the Python standard library (a real code corpus on every machine) with a
  byte-level BPE. It reports validation loss, then the exact-match and parse
  rates of the bodies it writes for held-out signatures beside those of a
  body of `pass`. A few minutes of training on 2 CPU cores give a model
  that writes code-shaped text, not working code: the numbers say so.

Both print some held-out answers with their references, show the denoising
trajectory of one sample (as text and as a PNG), save the model as a preset
and write their metrics to `metrics.json`.
"""

import ast
import json
import os
import random
import time

import keras
import keras_hub
import tensorflow as tf

from keras_textdiff.arguments import check_int
from keras_textdiff.arguments import check_positive_number
from keras_textdiff.bpe import character_tokenizer
from keras_textdiff.bpe import count_tokens
from keras_textdiff.bpe import train_byte_pair_tokenizer
from keras_textdiff.data.number_words import closest_training_targets
from keras_textdiff.data.number_words import number_word_pairs
from keras_textdiff.data.python_stdlib import load_python_stdlib
from keras_textdiff.diffusion_decoder import DiffusionDecoder
from keras_textdiff.diffusion_preprocessor import DiffusionPreprocessor
from keras_textdiff.presets import check_writable
from keras_textdiff.samplers import DiffusionSampler
from keras_textdiff.visualization import plot_denoising_trajectory

# What each task trains with unless told otherwise; the numbers task has no
# `sequence_length` or `vocabulary_size` to choose (one token per character,
# the length its longest example needs).
TASK_DEFAULTS = {
    "numbers": {"max_steps": 900, "batch_size": 64, "num_scored": 200},
    "code": {
        "max_steps": 3000,
        "batch_size": 32,
        "num_scored": 64,
        "sequence_length": 64,
        "vocabulary_size": 2048,
    },
}

# GPT-2 shaped backbones: (layers, heads, hidden, intermediate).
MODEL_SIZES = {
    "tiny": (2, 4, 128, 512),
    "small": (4, 4, 256, 1024),
    "base": (6, 6, 384, 1536),
}


def gpt2_backbone(size, vocabulary_size, sequence_length):
    """A GPT-2-shaped backbone of one of the `MODEL_SIZES`, without dropout."""
    layers, heads, hidden, intermediate = MODEL_SIZES[size]
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=intermediate,
        max_sequence_length=sequence_length,
        dropout=0.0,
    )


class TimeBudget(keras.callbacks.Callback):
    """Stop `fit()` once `seconds` have passed since this callback was made
    (the whole `fit()` call: setting up its data pipeline takes seconds
    too), and say so."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.stopped = False
        self.start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if not self.stopped and time.time() - self.start > self.seconds:
            self.model.stop_training = True
            self.stopped = True

    def on_train_end(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.elapsed = time.time() - self.start
        why = f"the {self.seconds:g} s time budget" if self.stopped else "max_steps"
        print(f"    stopped at {why}, after {steps} steps ({self.elapsed:.0f} s)")


def _parses(code):
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError):
        return False


def body_scores(prompts, bodies, references):
    """Exact match (%) and the share (%) of `signature + body` that parse."""
    exact = [b.strip() == r.strip() for b, r in zip(bodies, references)]
    parses = [_parses(p + b) for p, b in zip(prompts, bodies)]
    return {
        "exact_match": 100.0 * sum(exact) / len(exact),
        "parses": 100.0 * sum(parses) / len(parses),
    }


def _continuations(texts, max_chars, limit, seed):
    """(a line, the lines that follow it) pairs, filling about `max_chars`.

    Unlike function bodies, these targets fill most of the target region, so
    the model sees mostly code rather than padding.
    """
    pairs = []
    for text in texts:
        lines = text.split("\n")
        for i in range(0, len(lines) - 1, 8):
            if not lines[i].strip():
                continue
            target, size = [], 0
            for line in lines[i + 1 :]:
                size += len(line) + 1
                if size > max_chars:
                    break
                target.append(line)
            if target:
                pairs.append({"prefix": lines[i] + "\n", "target": "\n".join(target) + "\n"})
    random.Random(seed).shuffle(pairs)
    return pairs[:limit]


def code_tokenizer(texts, vocabulary_size, special_tokens=("<|endoftext|>",)):
    """A byte-level BPE learned on the first ~4 MB of `texts` (plenty for a
    small vocabulary)."""
    corpus, size_chars = [], 0
    for text in texts:
        corpus.append(text)
        size_chars += len(text)
        if size_chars > 4_000_000:
            break
    return train_byte_pair_tokenizer(
        corpus, vocabulary_size=vocabulary_size, special_tokens=special_tokens
    )


def _check_output_dir(output_dir):
    """Refuse, before any work, a folder that holds another run or cannot be
    written."""
    taken = [n for n in ("preset", "metrics.json", "trajectory.png")
             if os.path.exists(os.path.join(output_dir, n))]
    if taken:
        raise ValueError(
            f"{output_dir!r} already holds a quickstart run ({', '.join(taken)}). "
            "Pass another `--output-dir`, or delete that folder to run again."
        )
    check_writable(output_dir)
    os.makedirs(output_dir, exist_ok=True)


def _exact_match(answers, references):
    """The share (%) of answers equal to their reference."""
    return 100.0 * sum(a == r for a, r in zip(answers, references)) / len(references)


def _shown_examples(answers, references, count):
    """The indices of the first `count` examples, the last swapped for the
    first wrong answer when those are all right and one is wrong: the
    examples shown should not hide the errors."""
    shown = list(range(min(count, len(answers))))
    wrong = [i for i, (a, r) in enumerate(zip(answers, references)) if a != r]
    if shown and wrong and wrong[0] >= len(shown):
        shown[-1] = wrong[0]
    return shown


def _train(model, pairs, batch_size, max_steps, train_seconds, seed):
    """`fit()` on `pairs` until `max_steps` or the time budget; returns
    (steps, seconds, whether the time budget stopped it)."""
    columns = {
        "prefix": [p["prefix"] for p in pairs],
        "target": [p["target"] for p in pairs],
    }
    train_ds = (
        tf.data.Dataset.from_tensor_slices(columns)
        .shuffle(10_000, seed=seed)
        .repeat()
        .batch(batch_size)
    )
    budget = TimeBudget(train_seconds)
    steps_per_epoch = min(100, max_steps)
    # One line per 100 steps (no ETA: the time budget, not the epoch count,
    # ends training).
    model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        epochs=-(-max_steps // steps_per_epoch),
        callbacks=[budget],
        verbose=2,
    )
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    return steps, budget.elapsed, budget.stopped


def _show_trajectory(model, prompt, output_dir):
    """Print the denoising trajectory of `prompt` and draw it as a PNG;
    returns the PNG's path."""
    trajectory = model.denoising_trajectory(prompt)
    for step, text in enumerate(trajectory["texts"]):
        label = "start" if step == 0 else f"step {step:2d}"
        print(f"    {label:>7}: {text[:100]!r}")
    # The picture shows the output and the position after it, not the
    # padding that follows.
    shown = len(model.preprocessor.tokenizer(trajectory["texts"][-1])) + 1
    return plot_denoising_trajectory(
        [row[:shown] for row in trajectory["tokens"]],
        os.path.join(output_dir, "trajectory.png"),
        title=f"Denoising {prompt.strip()!r}",
        caption=f"Output: {trajectory['texts'][-1]!r}",
    )


def _save(model, results, output_dir):
    """Save the preset and `metrics.json` (atomically: never half a file)."""
    model.save_to_preset(results["preset"])
    path = os.path.join(output_dir, "metrics.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(
        f"Saved the model to {results['preset']} (load it with "
        f"DiffusionDecoder.from_preset), the picture to "
        f"{results['trajectory_png']}, the metrics to {path}."
    )


def _task_arguments(task, max_steps, batch_size, num_scored, sequence_length,
                    vocabulary_size):
    """The task's defaults for the arguments left `None`; a `ValueError`
    for one that does not apply to the task."""
    if task not in TASK_DEFAULTS:
        raise ValueError(
            f"`task` must be one of {sorted(TASK_DEFAULTS)}. Received: task={task!r}"
        )
    given = {
        "max_steps": max_steps,
        "batch_size": batch_size,
        "num_scored": num_scored,
        "sequence_length": sequence_length,
        "vocabulary_size": vocabulary_size,
    }
    stray = [k for k, v in given.items() if v is not None and k not in TASK_DEFAULTS[task]]
    if stray:
        names, one = " and ".join(f"`{k}`" for k in stray), len(stray) == 1
        raise ValueError(
            f"{names} {'applies' if one else 'apply'} to task 'code' only "
            "(`--task code`): the numbers task has one token per character and "
            "takes its sequence length from its longest example. Leave "
            f"{'it' if one else 'them'} out. Received: "
            + ", ".join(f"{k}={given[k]!r}" for k in stray)
        )
    arguments = {k: v for k, v in given.items() if k in TASK_DEFAULTS[task]}
    for name, value in arguments.items():
        arguments[name] = TASK_DEFAULTS[task][name] if value is None else value
        check_int(name, arguments[name])
    return arguments


def run_quickstart(
    output_dir="textdiff_runs/quickstart",
    task="numbers",
    size="tiny",
    train_seconds=300,
    max_steps=None,
    batch_size=None,
    sequence_length=None,
    vocabulary_size=None,
    num_prompts=3,
    num_scored=None,
    seed=0,
):
    """Train, evaluate, sample and save a small diffusion model.

    Args:
        output_dir: where the preset, metrics and trajectory PNG go.
        task: `"numbers"` (number words to digits) or `"code"` (Python
            function bodies from their signatures); see the module docstring.
        size: one of `"tiny"`, `"small"`, `"base"` (see `MODEL_SIZES`).
        train_seconds: training time budget in seconds.
        max_steps: upper bound on training steps. Defaults to 900 for
            numbers, 3000 for code.
        batch_size: training batch size. Defaults to 64 for numbers, 32 for
            code.
        sequence_length: code only: packed length of signature + body
            (default 64). The numbers task takes the length its longest
            example needs.
        vocabulary_size: code only: size of the BPE vocabulary trained on the
            corpus (default 2048). The numbers task has one token per
            character.
        num_prompts: how many held-out answers to print.
        num_scored: how many held-out examples to answer and score. Defaults
            to all 200 held-out numbers, or 64 held-out signatures.
        seed: seed for data order, initialization and sampling (the
            held-out numbers are always the same 200).

    Returns:
        A dict of metrics (also written to `output_dir/metrics.json`).
    """
    arguments = _task_arguments(
        task, max_steps, batch_size, num_scored, sequence_length, vocabulary_size
    )
    if size not in MODEL_SIZES:
        raise ValueError(
            f"`size` must be one of {sorted(MODEL_SIZES)}. Received: {size!r}"
        )
    check_positive_number("train_seconds", train_seconds, "a finite number of seconds > 0")
    check_int("num_prompts", num_prompts, minimum=0)
    _check_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    clock = time.time()
    run = _numbers_quickstart if task == "numbers" else _code_quickstart
    model, results = run(
        output_dir, size=size, train_seconds=train_seconds, num_prompts=num_prompts,
        seed=seed, **arguments,
    )
    results["total_seconds"] = round(time.time() - clock, 1)
    results["backend"] = keras.config.backend()
    _save(model, results, output_dir)
    print(json.dumps(results, indent=2))
    return results


def _paper_sampler(seed):
    """The paper's decoding: 10 steps at temperature 0.2, best of 8."""
    return DiffusionSampler(num_steps=10, temperature=0.2, num_samples=8, seed=seed)


def _numbers_quickstart(
    output_dir, size, train_seconds, max_steps, batch_size, num_scored, num_prompts, seed
):
    """Number words -> digits, as `guides/text_diffusion_in_ten_minutes.py`."""
    print("1/4 Writing the numbers 0 to 999 in words ...")
    pairs = number_word_pairs(num_held_out=200, seed=0)
    train, held_out = pairs["train"], pairs["test"][:num_scored]
    texts = [p[k] for p in pairs["train"] + pairs["test"] for k in ("prefix", "target")]
    tokenizer = character_tokenizer(texts)
    # The target region: the longest answer and the end token after it.
    target_length = max(count_tokens(tokenizer, [p["target"] for p in train])) + 1
    longest_prompt = max(count_tokens(tokenizer, [p["prefix"] for p in pairs["test"] + train]))
    sequence_length = 1 + longest_prompt + 1 + target_length  # start, prompt, end, target
    preprocessor = DiffusionPreprocessor(tokenizer, sequence_length, target_length=target_length)
    for pair in train[:3]:
        print(f"    {pair['prefix']!r} -> {pair['target']!r}")
    print(
        f"    {len(train)} numbers to train on, {len(pairs['test'])} held out "
        f"(never seen in training); one token per character "
        f"(vocabulary {tokenizer.vocabulary_size()}), {sequence_length} tokens "
        f"per example."
    )

    print(
        f"2/4 Training a {size} DiffusionDecoder for {max_steps} steps of "
        f"{batch_size} (at most {train_seconds:g} s) ..."
    )
    backbone = gpt2_backbone(size, tokenizer.vocabulary_size(), sequence_length)
    model = DiffusionDecoder(backbone, preprocessor)
    model.compile()
    steps, train_time, stopped = _train(
        model, train, batch_size, max_steps, train_seconds, seed
    )

    prompts = [p["prefix"] for p in held_out]
    references = [p["target"] for p in held_out]
    print(
        f"3/4 Digits for {len(prompts)} held-out numbers (10 steps, T 0.2, "
        "best of 8), beside two baselines:"
    )
    model.compile(sampler=_paper_sampler(seed))
    answers = model.generate(prompts, strip_prompt=True)
    scores = {
        "diffusion model": _exact_match(answers, references),
        "copy the prompt (baseline)": _exact_match(prompts, references),
        "closest training spelling (baseline)": _exact_match(
            closest_training_targets(prompts, train), references
        ),
    }
    print(f"    {'':38}{'exact match':>12}")
    for name, score in scores.items():
        print(f"    {name:38}{score:11.1f}%")
    wrong = sum(a != r for a, r in zip(answers, references))
    print(f"    {wrong} of {len(prompts)} wrong. Some answers:")
    examples = []
    for i in _shown_examples(answers, references, num_prompts):
        verdict = "right" if answers[i] == references[i] else "WRONG"
        print(
            f"    {prompts[i]!r:30} -> {answers[i]!r:7} "
            f"reference {references[i]!r:6} {verdict}"
        )
        examples.append(
            {"prompt": prompts[i], "answer": answers[i], "reference": references[i]}
        )

    print(f"4/4 Denoising trajectory of {prompts[0]!r} (reference {references[0]!r}):")
    picture = _show_trajectory(model, prompts[0], output_dir)
    results = {
        "task": "numbers",
        "model_size": size,
        "parameters": int(model.count_params()),
        "train_steps": steps,
        "train_seconds": round(train_time, 1),
        "stopped_by_time_budget": stopped,
        "held_out_numbers": len(prompts),
        "exact_match": scores["diffusion model"],
        "baseline_copy_prompt_exact_match": scores["copy the prompt (baseline)"],
        "baseline_closest_training_exact_match": scores[
            "closest training spelling (baseline)"
        ],
        "wrong": wrong,
        "examples": examples,
        "preset": os.path.join(output_dir, "preset"),
        "trajectory_png": picture,
    }
    return model, results


def _code_quickstart(
    output_dir, size, train_seconds, max_steps, batch_size, num_scored, num_prompts,
    seed, sequence_length, vocabulary_size,
):
    """Function bodies from signatures, on the Python standard library."""
    print("1/5 Reading the Python standard library's source ...")
    max_chars = 4 * sequence_length
    train = load_python_stdlib("train", max_chars=max_chars)
    validation = load_python_stdlib("validation", max_chars=max_chars)
    texts = train["texts"]
    random.Random(seed).shuffle(texts)
    tokenizer = code_tokenizer(texts, vocabulary_size)
    preprocessor = DiffusionPreprocessor(tokenizer, sequence_length, seed=seed)
    functions = preprocessor.fitting_pairs(train["functions"])
    continuations = preprocessor.fitting_pairs(
        _continuations(texts, 3 * sequence_length, len(functions), seed)
    )
    train_pairs = functions + continuations
    validation_pairs = preprocessor.fitting_pairs(validation["functions"])
    print(
        f"    {len(functions)} functions (signature -> body) and "
        f"{len(continuations)} line continuations to train on, "
        f"{len(validation_pairs)} held-out functions; all fit "
        f"{sequence_length} tokens; "
        f"BPE vocabulary {tokenizer.vocabulary_size()}."
    )

    print(f"2/5 Training a {size} DiffusionDecoder for ~{train_seconds}s ...")
    backbone = gpt2_backbone(size, tokenizer.vocabulary_size(), sequence_length)
    model = DiffusionDecoder(backbone, preprocessor)
    model.compile()
    random.Random(seed).shuffle(train_pairs)
    steps, train_time, _ = _train(
        model, train_pairs, batch_size, max_steps, train_seconds, seed
    )

    print("3/5 Validation (held-out modules) ...")
    held_out = validation_pairs[:512]
    val_ds = tf.data.Dataset.from_tensor_slices(
        {
            "prefix": [p["prefix"] for p in held_out],
            "target": [p["target"] for p in held_out],
        }
    ).batch(batch_size)
    metrics = model.evaluate(val_ds, return_dict=True, verbose=0)
    print(f"    validation loss {metrics['loss']:.3f} (L1 + L2)")

    print(
        f"4/5 Bodies for {len(held_out[:num_scored])} held-out signatures "
        "(10 steps, best of 8), beside a body of `pass`:"
    )
    model.compile(sampler=DiffusionSampler(seed=seed))
    scored = held_out[:num_scored]
    prompts = [p["prefix"] for p in scored]
    references = [p["target"] for p in scored]
    model.generate(prompts[:batch_size])  # compile once: the timing is decoding
    start = time.time()
    bodies = []
    for i in range(0, len(prompts), batch_size):
        bodies += model.generate(prompts[i : i + batch_size], strip_prompt=True)
    latency = time.time() - start
    scores = body_scores(prompts, bodies, references)
    baseline = body_scores(prompts, ["    pass\n"] * len(prompts), references)
    print(f"    {'':22}{'exact match':>12}{'parses':>9}")
    for name, row in [("diffusion model", scores), ("`pass` (baseline)", baseline)]:
        print(f"    {name:22}{row['exact_match']:11.1f}%{row['parses']:8.1f}%")
    for prompt, body, reference in list(zip(prompts, bodies, references))[:num_prompts]:
        print("    " + "-" * 60)
        print("    " + (prompt + body).rstrip().replace("\n", "\n    "))
        print("    reference:")
        print("    " + (prompt + reference).rstrip().replace("\n", "\n    "))
    print("    " + "-" * 60)

    print("5/5 Denoising trajectory of one sample:")
    picture = _show_trajectory(model, prompts[0], output_dir)
    results = {
        "task": "code",
        "model_size": size,
        "parameters": int(model.count_params()),
        "train_steps": int(steps),
        "train_seconds": round(train_time, 1),
        "validation_loss": float(metrics["loss"]),
        "held_out_signatures": len(prompts),
        "exact_match": scores["exact_match"],
        "parses": scores["parses"],
        "baseline_pass_exact_match": baseline["exact_match"],
        "baseline_pass_parses": baseline["parses"],
        "generate_seconds": round(latency, 3),
        "preset": os.path.join(output_dir, "preset"),
        "trajectory_png": picture,
    }
    return model, results
