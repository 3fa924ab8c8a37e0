"""Infilling: a `"suffix"` after the target region, read by the denoiser."""

import numpy as np
from keras import ops

import keras_textdiff as ktd
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from keras_textdiff.data.python_stdlib import infill_examples


def _model(attention="bidirectional"):
    tokenizer = letter_tokenizer()
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, 16, target_length=4)
    return ktd.DiffusionDecoder(
        gpt2_backbone(tokenizer.vocabulary_size()), preprocessor, attention=attention
    )


def _target_logits(model, prefix, suffix):
    batch = model.preprocessor.generate_preprocess({"prefix": [prefix], "suffix": [suffix]})
    inputs = {"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]}
    logits = ops.convert_to_numpy(model(inputs))
    return logits[0][ops.convert_to_numpy(batch["target_mask"])[0]]


def test_the_target_reads_the_suffix_only_with_bidirectional_attention():
    bidirectional = _model()
    a = _target_logits(bidirectional, "abc", "de")
    b = _target_logits(bidirectional, "abc", "xy")
    assert np.abs(a - b).max() > 1e-4
    causal = _model("causal")
    np.testing.assert_allclose(
        _target_logits(causal, "abc", "de"), _target_logits(causal, "abc", "xy"), atol=1e-6
    )


def test_fit_and_generate_fill_only_the_hole():
    model = _model()
    pairs = {"prefix": ["ab", "cd"] * 4, "target": ["c", "e"] * 4, "suffix": ["de", "fg"] * 4}
    history = model.fit(pairs, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=1, seed=0))
    batch = model.preprocessor.generate_preprocess({"prefix": ["ab", "cd"], "suffix": ["de", "fg"]})
    out = model.generate(dict(batch))
    before = ops.convert_to_numpy(batch["token_ids"])
    target = ops.convert_to_numpy(batch["target_mask"])
    valid = ops.convert_to_numpy(batch["padding_mask"])
    # Prefix and suffix come back as they went in; only the hole changed.
    np.testing.assert_array_equal(out["token_ids"][~target & valid], before[~target & valid])
    assert (out["token_ids"][target] != before[target]).any()
    # As text: prefix, the filled hole, then the suffix.
    prompts = {"prefix": ["ab", "cd"], "suffix": ["de", "fg"]}
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=1, seed=0))
    texts = model.generate(prompts)
    model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=1, seed=0))
    holes = model.generate(prompts, strip_prompt=True)
    assert texts == [p + h + s for p, h, s in zip(["ab", "cd"], holes, ["de", "fg"])]


def test_infill_examples_hide_one_line_between_its_neighbours():
    function = {
        "prefix": "def f(a, b):\n",
        "target": '    """Doc."""\n    c = a + b\n    d = c * 2\n    return d\n',
    }
    examples = infill_examples([function], per_function=3, context_lines=1)
    # The docstring is never hidden nor shown; one line each side at most.
    assert examples == [
        {"prefix": "def f(a, b):\n", "target": "    c = a + b\n", "suffix": "    d = c * 2\n"},
        {"prefix": "def f(a, b):\n    c = a + b\n", "target": "    d = c * 2\n", "suffix": "    return d\n"},
        {"prefix": "def f(a, b):\n    d = c * 2\n", "target": "    return d\n", "suffix": ""},
    ]
    whole = "def f(a, b):\n    c = a + b\n    d = c * 2\n    return d\n"
    for e in examples:  # The hidden line between its neighbours, as in the function.
        last = e["prefix"].splitlines(keepends=True)[-1]
        assert (last + e["target"] + e["suffix"]) in whole
