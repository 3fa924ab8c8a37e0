"""`textdiff quickstart`: train a small diffusion model on Python's own source.

The Python standard library is a real code corpus that is on every machine.
This job trains a byte-level BPE tokenizer on it, trains a `DiffusionDecoder`
from scratch for a few minutes to write function bodies from their
signatures, reports validation loss, then the exact-match and parse rates of
the bodies it writes for held-out signatures beside those of a body of
`pass`, prints some of them with their references, shows the denoising
trajectory of one sample (as text and as a PNG), and saves the model as a
preset. A few minutes of training on 2 CPU cores give a model that writes
code-shaped text, not working code: the numbers say so.
"""

import ast
import json
import os
import random
import time

import keras
import keras_hub
import tensorflow as tf

from keras_textdiff.bpe import train_byte_pair_tokenizer
from keras_textdiff.data.python_stdlib import load_python_stdlib
from keras_textdiff.diffusion_decoder import DiffusionDecoder
from keras_textdiff.diffusion_preprocessor import DiffusionPreprocessor
from keras_textdiff.presets import check_writable
from keras_textdiff.samplers import DiffusionSampler
from keras_textdiff.visualization import plot_denoising_trajectory

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
    """Stop `fit()` once `seconds` of training have passed, and say so."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if not self.stopped and time.time() - self.start > self.seconds:
            self.model.stop_training = True
            self.stopped = True

    def on_train_end(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        why = f"the {self.seconds:g} s time budget" if self.stopped else "max_steps"
        print(f"    stopped at {why}, after {steps} steps ({time.time() - self.start:.0f} s)")


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


def run_quickstart(
    output_dir="textdiff_runs/quickstart",
    size="tiny",
    train_seconds=300,
    max_steps=3000,
    batch_size=32,
    sequence_length=64,
    vocabulary_size=2048,
    num_prompts=3,
    num_scored=64,
    seed=0,
):
    """Train, evaluate, sample and save a small code diffusion model.

    Args:
        output_dir: where the preset, metrics and trajectory PNG go.
        size: one of `"tiny"`, `"small"`, `"base"` (see `MODEL_SIZES`).
        train_seconds: training time budget in seconds.
        max_steps: upper bound on training steps.
        batch_size: training batch size.
        sequence_length: packed length of signature + body.
        vocabulary_size: size of the BPE vocabulary trained on the corpus.
        num_prompts: how many held-out completions to print.
        num_scored: how many held-out signatures to complete and score.
        seed: seed for data order, initialization and sampling.

    Returns:
        A dict of metrics (also written to `output_dir/metrics.json`).
    """
    if size not in MODEL_SIZES:
        raise ValueError(
            f"`size` must be one of {sorted(MODEL_SIZES)}. Received: {size!r}"
        )
    if train_seconds <= 0 or max_steps < 1:
        raise ValueError("`train_seconds` and `max_steps` must be positive.")
    _check_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    clock = time.time()

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
    columns = {
        "prefix": [p["prefix"] for p in train_pairs],
        "target": [p["target"] for p in train_pairs],
    }
    train_ds = (
        tf.data.Dataset.from_tensor_slices(columns)
        .shuffle(10_000, seed=seed)
        .repeat()
        .batch(batch_size)
    )
    start = time.time()
    steps_per_epoch = min(100, max_steps)
    # One line per 100 steps (no ETA: the time budget, not the epoch count,
    # ends training).
    model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        epochs=-(-max_steps // steps_per_epoch),
        callbacks=[TimeBudget(train_seconds)],
        verbose=2,
    )
    train_time = time.time() - start
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))

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
    trajectory = model.denoising_trajectory(prompts[0])
    for step, text in enumerate(trajectory["texts"]):
        label = "start" if step == 0 else f"step {step:2d}"
        print(f"    {label:>7}: {text[:100]!r}")
    # The picture shows the output and the position after it, not the
    # padding that follows.
    shown = len(model.preprocessor.tokenizer(trajectory["texts"][-1])) + 1
    picture = plot_denoising_trajectory(
        [row[:shown] for row in trajectory["tokens"]],
        os.path.join(output_dir, "trajectory.png"),
        title=f"Denoising {prompts[0].strip()!r}",
        caption=f"Output: {trajectory['texts'][-1]!r}",
    )
    preset = os.path.join(output_dir, "preset")
    model.save_to_preset(preset)

    results = {
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
        "total_seconds": round(time.time() - clock, 1),
        "preset": preset,
        "trajectory_png": picture,
        "backend": keras.config.backend(),
    }
    path = os.path.join(output_dir, "metrics.json")
    with open(path + ".tmp", "w") as f:  # Atomic: never half a file.
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(
        f"Saved the model to {preset} (load it with "
        f"DiffusionDecoder.from_preset), the picture to {picture}."
    )
    print(json.dumps(results, indent=2))
    return results
