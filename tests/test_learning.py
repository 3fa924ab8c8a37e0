"""Learning really works: a tiny diffusion model learns to copy words."""

import numpy as np
import tensorflow as tf

import keras_textdiff as ktd
from conftest import LETTERS
from conftest import gpt2_backbone
from conftest import letter_tokenizer


def random_words(rng, n):
    return ["".join(rng.choice(list(LETTERS), rng.integers(3, 7))) for _ in range(n)]


def test_tiny_model_learns_to_copy_words():
    rng = np.random.default_rng(0)
    train, held_out = random_words(rng, 4000), random_words(rng, 50)
    held_out = [w for w in held_out if w not in set(train)]
    tokenizer = letter_tokenizer()
    # Issue calibration: 2 layers, 64 wide, batch 64, ~1500 steps.
    backbone = gpt2_backbone(tokenizer.vocabulary_size(), hidden_dim=64)
    model = ktd.DiffusionDecoder(
        backbone, ktd.DiffusionPreprocessor(tokenizer, sequence_length=16)
    )
    ds = (
        tf.data.Dataset.from_tensor_slices({"prefix": train, "target": train})
        .shuffle(4000, seed=0)
        .repeat()
        .batch(64)
    )
    model.fit(ds, steps_per_epoch=1500, epochs=1, verbose=0)
    model.compile(sampler=ktd.DiffusionSampler(seed=0))  # the paper's sampler
    outputs = model.generate(held_out, max_length=16, strip_prompt=True)
    exact = np.mean([o == w for o, w in zip(outputs, held_out)])
    assert exact > 0.9, list(zip(held_out, outputs))[:10]
