"""Train a step and generate twice with one seed, on the backend named in argv.

Run by `test_backends.py` in a fresh process per backend (Keras picks its
backend once per process).
"""

import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1]

import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from conftest import gpt2_backbone  # noqa: E402
from conftest import letter_tokenizer  # noqa: E402

if sys.argv[1] == "torch":
    import torch

    torch.set_num_threads(1)

tokenizer = letter_tokenizer()
model = ktd.DiffusionDecoder(
    gpt2_backbone(tokenizer.vocabulary_size()),
    ktd.DiffusionPreprocessor(tokenizer, sequence_length=12),
)
words = ["abc", "defg", "hij", "klm"] * 4
history = model.fit({"prefix": words, "target": words}, batch_size=8, verbose=0)
assert np.isfinite(history.history["loss"][0])
outputs = []
for _ in range(2):
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=2, seed=5))
    outputs.append(model.generate(["abc", "de"], max_length=12))
assert outputs[0] == outputs[1], outputs
assert outputs[0][0].startswith("abc") and outputs[0][1].startswith("de")
model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=2, seed=6))
print("OK", outputs[0], model.generate(["abc", "de"], max_length=12))

# The fast decoding options compile (XLA on TF) and run (eager torch) too.
for options in ({"cache": True, "block_size": 3, "early_stop": True},
                {"strategy": "argmax_unrolled", "block_size": 4}):
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=2, seed=5, **options))
    fast = model.generate(["abc", "de"], max_length=12)
    assert fast[0].startswith("abc") and fast[1].startswith("de"), (options, fast)
print("fast options OK")

# Temperature 0's argmax (top_k on torch, for speed) is numpy's argmax, in
# float32 and bfloat16 (whole numbers below 256 are exact in bfloat16).
from keras import ops  # noqa: E402

from keras_textdiff.samplers.diffusion_sampler import argmax  # noqa: E402

rng = np.random.default_rng(0)
logits = np.stack([rng.permutation(200) for _ in range(6)]).reshape(2, 3, 200)
for dtype in ("float32", "bfloat16"):
    found = ops.convert_to_numpy(argmax(ops.cast(logits, dtype)))
    np.testing.assert_array_equal(found, logits.argmax(-1))
    assert found.dtype == np.int32, found.dtype
print("argmax OK")
