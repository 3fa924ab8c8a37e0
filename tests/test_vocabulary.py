"""A backbone whose embedding is larger than its tokenizer's vocabulary
(real models pad it: Qwen, Gemma) never writes an id the tokenizer lacks."""

import numpy as np
from keras import ops

import keras_textdiff as ktd
from conftest import gpt2_backbone
from conftest import letter_tokenizer


def test_generated_and_starting_ids_stay_inside_the_tokenizer():
    tokenizer = letter_tokenizer()
    size = tokenizer.vocabulary_size()
    model = ktd.DiffusionDecoder(
        gpt2_backbone(size + 35), ktd.DiffusionPreprocessor(tokenizer, 16)
    )
    assert model.output_vocabulary_size == size
    logits = ops.convert_to_numpy(model.finish_logits(ops.zeros((1, 2, size + 35))))
    assert (logits[..., size:] < -1e8).all() and (logits[..., :size] == 0).all()
    model.compile(sampler=ktd.DiffusionSampler(num_steps=2, num_samples=2, seed=0))
    batch = model.preprocessor.generate_preprocess(["abc", "de"] * 4)
    out = model.generate(dict(batch))
    assert out["token_ids"].max() < size
    states = model.denoising_trajectory("abc")["token_ids"]  # From the noise's draw on.
    assert np.max(states) < size
    assert all(isinstance(t, str) for t in model.generate(["abc", "de"]))
