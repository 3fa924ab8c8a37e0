"""
Title: Training and decoding on many devices: data and model parallel
Author: keras_textdiff
Date created: 2026-11-23
Last modified: 2026-12-01
Description: Keras' own distribution API (JAX) for DiffusionDecoder: the
same fit() and generate() on 8 devices, and what changes on a TPU VM or a
multi-GPU host.
Accelerator: None needed (8 devices are simulated on the CPU); a TPU VM or a
multi-GPU host runs it unchanged.
"""

"""
## Introduction

keras_textdiff scales with Keras' own distribution API
(`keras.distribution`, JAX backend). There are two ways to split a job:

- **data parallel**: every device holds all the weights and a slice of every
  batch; the gradients are averaged. Use it while the model fits on one
  device.
- **model parallel**: the devices form a 2-D mesh `BATCHxMODEL`; batches are
  split over `BATCH` devices and the large weights over `MODEL` devices,
  following a `LayoutMap` for the backbone's architecture (keras-hub's own
  `get_layout_map()` for Gemma, Llama, Qwen and relatives, ours for the
  others: `keras_textdiff.distribution.LAYOUTS`).

Only one thing changes in your program: the distribution is set *before*
the model is created, so that every variable is created with its layout.

This guide simulates 8 devices on the CPU, which shows the mechanics (not a
speedup: the 8 "devices" share the same cores). Set
`KERAS_TEXTDIFF_GUIDE_FAST=1` to run it in seconds (the tests do).
"""

"""
## Setup

JAX reads the number of CPU devices once, when it starts, so the flag goes
first. It only concerns the CPU: on a TPU VM or a GPU host JAX uses the
accelerators and this line changes nothing (drop it there).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("KERAS_BACKEND", "jax")

import inspect  # noqa: E402
import json  # noqa: E402

import keras  # noqa: E402
import keras_hub  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.bpe import train_byte_pair_tokenizer  # noqa: E402
from keras_textdiff.data.python_stdlib import extract_functions  # noqa: E402
from keras_textdiff.distribution import distributed  # noqa: E402
from keras_textdiff.distribution import layout_source  # noqa: E402
from keras_textdiff.quickstart import gpt2_backbone  # noqa: E402

FAST = os.environ.get("KERAS_TEXTDIFF_GUIDE_FAST") == "1"
WORK_DIR = os.environ.get("KERAS_TEXTDIFF_GUIDE_DIR", "guide_runs/distributed")
LENGTH = 64
BATCH_SIZE = 16  # A multiple of the mesh's BATCH size.
EPOCHS = 1 if FAST else 10

print(keras.distribution.list_devices())

"""
## Data and a model

A small task: the signatures and bodies of the functions of a few
standard-library modules, a byte-level BPE learned on their source, and a
function that builds, compiles and trains a GPT-2-shaped diffusion model on
them. The function knows nothing about devices.
"""

sources = [inspect.getsource(m) for m in (json.decoder, json.encoder, json.scanner, inspect)]
tokenizer = train_byte_pair_tokenizer(sources, vocabulary_size=512 if FAST else 2048)
preprocessor = ktd.DiffusionPreprocessor(tokenizer, LENGTH, seed=0)
pairs = preprocessor.fitting_pairs([p for s in sources for p in extract_functions(s)])
pairs = pairs[: BATCH_SIZE * (len(pairs) // BATCH_SIZE)]  # Whole batches.
if FAST:
    pairs = pairs[:BATCH_SIZE]
print(f"{len(pairs)} signature -> body pairs")
# Tokenized and packed once (large-scale training reads pre-tokenized data
# too): token ids, padding and target masks. The model then needs no
# preprocessor (`preprocessor=None`).
columns = {key: [p[key] for p in pairs] for key in ("prefix", "target")}
x, y, _ = preprocessor(columns)
x, y = keras.tree.map_structure(keras.ops.convert_to_numpy, (x, y))


def build_and_train():
    keras.utils.set_random_seed(0)
    backbone = gpt2_backbone("tiny", tokenizer.vocabulary_size(), LENGTH)
    model = ktd.DiffusionDecoder(backbone, preprocessor=None)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0)
    print(f"  loss after {EPOCHS} epoch(s): {history.history['loss'][-1]:.4f}")
    return model


print("One device:")
_ = build_and_train()

"""
## Data parallel

The one added line is the `with`: everything created inside gets the
distribution. `"data"` is `keras.distribution.DataParallel` over all
devices; each of the 8 devices gets 2 of the 16 examples of a batch.
"""

print("Data parallel, 8 devices:")
with distributed("data"):
    build_and_train()

"""
## Model parallel

`"2x4"`: 2 groups of 4 devices. Each batch is split in 2; within a group
the weights are split 4 ways. The mesh needs the backbone (a class, an
instance or a preset directory) to pick its layout map. A mesh that does not
fit raises an error that says what would: a `BATCH x MODEL` that does not
divide the device count, a batch size that `BATCH` does not divide, or a
weight dimension (heads, hidden, intermediate size) that `MODEL` does not.
"""

print("Model parallel, 2x4:", layout_source(keras_hub.models.GPT2Backbone))
with distributed("2x4", keras_hub.models.GPT2Backbone, batch_size=BATCH_SIZE):
    model = build_and_train()
    for variable in model.backbone.weights[:4]:
        spec = variable.value.sharding.spec
        print(f"  {variable.path:<50} {str(tuple(variable.shape)):<14} {spec}")
    model.compile(sampler=ktd.DiffusionSampler(num_steps=5, num_samples=2, seed=0))
    prompts = preprocessor.generate_preprocess(["def decode(self, s):"])
    sharded_output = model.generate(prompts)["token_ids"]
    preset = os.path.join(WORK_DIR, "model_parallel_preset")
    model.save_to_preset(preset)

"""
The losses above agree to rounding: the distribution changes where the
numbers are computed, not what is computed.

## Saved while sharded, loaded anywhere

`save_to_preset()` gathers the shards into ordinary arrays, so the preset
loads on one device (or on another mesh), and decodes the same tokens.
"""

reloaded = ktd.DiffusionDecoder.from_preset(preset)
reloaded.compile(sampler=ktd.DiffusionSampler(num_steps=5, num_samples=2, seed=0))
assert (reloaded.generate(prompts)["token_ids"] == sharded_output).all()
text = preprocessor.generate_postprocess({**prompts, "token_ids": sharded_output})
print(text)

"""
## On a TPU VM or a multi-GPU host

1. Install JAX for the accelerator (`pip install -U "jax[tpu]"` on a TPU VM,
   `pip install -U "jax[cuda12]"` on a GPU host) and keras_textdiff.
2. Leave out the `XLA_FLAGS` line: `keras.distribution.list_devices()` then
   lists the real devices (8 TPU cores on a v4-8, or the host's GPUs).
3. Keep everything else. In Python, the same `with distributed(...)` line;
   on the command line, one flag on `pretrain`, `adapt`, `finetune`,
   `evaluate` or `generate`:

```bash
textdiff finetune --preset runs/adapt/preset --task mbpp --data mbpp.jsonl \\
    --out runs/ft --steps 1000 --batch-size 64 --data-parallel
textdiff finetune ... --model-parallel 2x4    # 2-way data x 4-way model parallel
```

The run's `run_config.json` records the mesh. Checkpoints are plain arrays,
so an interrupted run resumes on any number of devices.

Choosing the mesh: `BATCH x MODEL` is the number of devices; the batch size
is a multiple of `BATCH`; `MODEL` divides the attention heads, hidden and
intermediate sizes (and, with keras-hub's layout maps, the vocabulary; they
also split weights over `BATCH`). Data parallel first; model parallel when
the weights and optimizer state no longer fit on one device.

Several hosts (a TPU pod slice): call `keras.distribution.initialize()` on
every host before creating the model, and run the same program on each; the
command line does not do this for you yet.
"""
