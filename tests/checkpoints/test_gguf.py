"""GGUF import: tiny random Llama files, checked against transformers.

Each test file is written here with `gguf.GGUFWriter` the way llama.cpp's
converter lays a Llama model out (metadata keys, tensor names, q/k rows
permuted for GGML's RoPE, byte-level BPE vocabulary and merges, control
tokens), then imported. The reference is Hugging Face transformers' own
GGUF loader (PyTorch) on the same file: its config reader, q/k
un-permutation, tokenizer builder and Llama forward pass are independent of
ours (it dequantizes with the same `gguf` package, so dequantization is
also checked against transformers' separate torch dequantizer).
"""

import json
import os
import random
import re

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip(
    "accelerate", reason="transformers' GGUF loader needs `accelerate`"
)

from keras_textdiff.checkpoints import GGUFBytePairTokenizer  # noqa: E402
from keras_textdiff.checkpoints import GGUFLlamaCausalLM  # noqa: E402
from keras_textdiff.checkpoints import SUPPORTED_QUANTIZATIONS  # noqa: E402
from keras_textdiff.checkpoints import import_gguf  # noqa: E402
from keras_textdiff.checkpoints import load_gguf  # noqa: E402

torch.set_num_threads(1)
Q = gguf.GGMLQuantizationType

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
HEADS, KV_HEADS, LAYERS = 4, 2, 2

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "It's a test, isn't it? They'll say we're done when it's done.",
    "def add(a, b):\n    return a + b\n\n\nprint(add(12, 345))\n",
    "Numbers: 1 22 333 4444 3.14159 2024-01-01 and 100%!",
    "naïve café déjà vu — ünïcödé text, 日本語のテキスト.",
    "    indented\tcode\twith\ttabs  and  double  spaces   ",
] * 20

TEXTS = [
    "Hello world",
    "The capital of France is",
    "  two  spaces\tand\ttabs\n\n\nnewlines  \n  x",
    "it's don't THEY'LL we've 's",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "naïve café — ünïcödé 日本語",
    "trailing spaces   ",
    "price: 3.14, year 2024, x  1",
    "a\u00a0b\u3000c \u2028 d",
    "",
]


# --- Writing GGUF files like llama.cpp. ---


def train_vocabulary():
    """A tiny byte-level BPE: (tokens, token types, merges)."""
    from tokenizers import Tokenizer
    from tokenizers import models
    from tokenizers import pre_tokenizers
    from tokenizers import trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    types = [3 if t in SPECIAL_TOKENS else 1 for t in tokens]
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return tokens, types, merges


def random_weights(vocabulary_size, seed, tied, hidden, intermediate):
    """Hugging Face-layout Llama weights, large enough to matter."""
    rng = np.random.default_rng(seed)
    head_dim = hidden // HEADS

    def normal(*shape, std=0.2):
        return rng.normal(0.0, std, shape).astype("float32")

    weights = {
        "token_embd.weight": normal(vocabulary_size, hidden, std=0.5),
        "output_norm.weight": 1.0 + normal(hidden, std=0.1),
    }
    if not tied:
        weights["output.weight"] = normal(vocabulary_size, hidden, std=0.5)
    for i in range(LAYERS):
        weights.update(
            {
                f"blk.{i}.attn_norm.weight": 1.0 + normal(hidden, std=0.1),
                f"blk.{i}.attn_q.weight": normal(HEADS * head_dim, hidden),
                f"blk.{i}.attn_k.weight": normal(KV_HEADS * head_dim, hidden),
                f"blk.{i}.attn_v.weight": normal(KV_HEADS * head_dim, hidden),
                f"blk.{i}.attn_output.weight": normal(hidden, HEADS * head_dim),
                f"blk.{i}.ffn_norm.weight": 1.0 + normal(hidden, std=0.1),
                f"blk.{i}.ffn_gate.weight": normal(intermediate, hidden),
                f"blk.{i}.ffn_up.weight": normal(intermediate, hidden),
                f"blk.{i}.ffn_down.weight": normal(hidden, intermediate),
            }
        )
    return weights


def llama_cpp_permute(weight, num_heads):
    """llama.cpp's `convert_hf_to_gguf.py` permutation of q/k rows."""
    rows = weight.shape[0]
    weight = weight.reshape(num_heads, 2, rows // num_heads // 2, -1)
    return weight.swapaxes(1, 2).reshape(rows, -1)


# Byte offsets of the fp16 scales in one block of each ggml type.
_FP16_OFFSETS = {
    Q.Q4_0: [0],
    Q.Q4_1: [0, 2],
    Q.Q5_0: [0],
    Q.Q5_1: [0, 2],
    Q.Q8_0: [0],
    Q.Q2_K: [80, 82],
    Q.Q3_K: [108],
    Q.Q4_K: [0, 2],
    Q.Q5_K: [0, 2],
    Q.Q6_K: [208],
    Q.IQ4_NL: [0],
}


def random_blocks(qtype, rows, columns, rng):
    """Random quantized data of `qtype` with finite, small fp16 scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (rows * columns // block_size, type_size))
    blocks = blocks.astype("uint8")
    # Scales that keep the weights around 0.1, as in a real model.
    low = {Q.Q3_K: 1e-4, Q.Q4_K: 1e-4, Q.Q5_K: 1e-4, Q.Q6_K: 1e-5}.get(
        qtype, 1e-3
    )
    for offset in _FP16_OFFSETS[qtype]:
        scales = rng.uniform(low, 10 * low, len(blocks)).astype("float16")
        blocks[:, offset : offset + 2] = scales.view("uint8").reshape(-1, 2)
    return blocks.reshape(rows, columns // block_size * type_size)


def write_gguf(
    path,
    qtype=Q.F32,
    tied=True,
    pre="gpt-2",
    seed=0,
    architecture="llama",
    vocabulary=None,
    hidden=64,
    intermediate=96,
):
    """Write a tiny llama.cpp-style Llama GGUF file; return its weights."""
    tokens, types, merges = vocabulary or train_vocabulary()
    weights = random_weights(len(tokens), seed, tied, hidden, intermediate)
    writer = gguf.GGUFWriter(os.fspath(path), architecture)
    writer.add_name("tiny llama")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(intermediate)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(1 if qtype == Q.F32 else int(qtype))
    writer.add_vocab_size(len(tokens))
    writer.add_rope_dimension_count(hidden // HEADS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_quantization_version(2)
    rng = np.random.default_rng(seed + 1)
    for name, weight in weights.items():
        if ".attn_q." in name:
            weight = llama_cpp_permute(weight, HEADS)
        elif ".attn_k." in name:
            weight = llama_cpp_permute(weight, KV_HEADS)
        if weight.ndim == 1 or qtype == Q.F32:
            writer.add_tensor(name, weight)
        elif qtype in _FP16_OFFSETS and qtype not in (Q.Q4_0, Q.Q4_1, Q.Q8_0):
            data = random_blocks(qtype, *weight.shape, rng)
            writer.add_tensor(name, data, raw_dtype=qtype)
        else:
            data = gguf.quants.quantize(weight, qtype)
            writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return weights


@pytest.fixture(scope="module")
def vocabulary():
    return train_vocabulary()


@pytest.fixture(scope="module")
def files(tmp_path_factory, vocabulary):
    """Tiny GGUF files, each in its own directory (for transformers)."""
    root = tmp_path_factory.mktemp("gguf")
    specs = {
        "f32": dict(qtype=Q.F32, tied=False),
        "q8_0": dict(qtype=Q.Q8_0, tied=True),
        "q4_1": dict(qtype=Q.Q4_1, tied=True, seed=1),
        "smollm": dict(qtype=Q.F32, tied=True, pre="smollm"),
        "llama3": dict(qtype=Q.F32, tied=True, pre="llama-bpe"),
    }
    paths = {}
    for key, spec in specs.items():
        (root / key).mkdir()
        paths[key] = root / key / f"tiny-{key}.gguf"
        write_gguf(paths[key], vocabulary=vocabulary, **spec)
    return paths


_transformers_models = {}


def transformers_model(path):
    if path not in _transformers_models:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
        _transformers_models[path] = model.eval()
    return _transformers_models[path]


def transformers_tokenizer(path):
    return transformers.AutoTokenizer.from_pretrained(
        path.parent, gguf_file=path.name
    )


def keras_logits(causal_lm, ids):
    ids = np.asarray(ids, "int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    return keras.ops.convert_to_numpy(causal_lm(inputs))


def torch_logits(path, ids):
    with torch.no_grad():
        output = transformers_model(path)(torch.tensor(np.asarray(ids)))
    return output.logits.numpy()


def tf_data_ids(tokenizer, texts):
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    return next(iter(dataset.map(tokenizer))).to_list()


IDS = [[5, 40, 77, 120, 3, 250, 9, 180, 64, 33, 301, 2], [7] * 4 + [99] * 8]


# --- Model: logits against transformers. ---


@pytest.mark.parametrize("key", ["f32", "q8_0", "q4_1"])
def test_logits_match_transformers(files, key):
    causal_lm = load_gguf(files[key])
    assert isinstance(causal_lm, keras_hub.models.Llama3CausalLM)
    backbone = causal_lm.backbone
    assert backbone.tie_word_embeddings == (key != "f32")
    assert backbone.rope_max_wavelength == 50000.0
    assert backbone.max_sequence_length == 128
    expected = torch_logits(files[key], IDS)
    logits = keras_logits(causal_lm, IDS)
    assert np.abs(expected).max() > 3.0  # Not a trivially small output.
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)


def test_backbone_alone_loads_without_tensorflow(files, tmp_path):
    """`load_gguf_backbone` builds the model on a machine without
    TensorFlow (a GPU machine that trains and decodes token ids): run in a
    process where importing TensorFlow fails, its logits match
    transformers'."""
    import subprocess
    import sys

    out = tmp_path / "logits.npy"
    script = f"""
import sys
for name in ("tensorflow", "tensorflow_text"):
    sys.modules[name] = None  # `import tensorflow` raises ImportError.
import numpy as np
from keras_textdiff.checkpoints import load_gguf_backbone
backbone = load_gguf_backbone({str(files["q4_1"])!r})
ids = np.array({IDS!r})
hidden = backbone({{"token_ids": ids, "padding_mask": np.ones_like(ids)}})
np.save({str(out)!r}, np.asarray(backbone.token_embedding(hidden, reverse=True)))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    np.testing.assert_allclose(
        np.load(out), torch_logits(files["q4_1"], IDS), atol=1e-4, rtol=1e-4
    )


def test_dequantized_weights_match_transformers_dequantizer(tmp_path):
    """`gguf.quants.dequantize` agrees with transformers' torch version."""
    from transformers.integrations.gguf import dequant

    rng = np.random.default_rng(0)
    checked = []
    for name in SUPPORTED_QUANTIZATIONS:
        qtype = Q[name]
        if int(qtype) not in dequant.GGML_BLOCK:
            continue
        data = random_blocks(qtype, 4, 512, rng)
        ours = gguf.quants.dequantize(data, qtype).reshape(-1)
        theirs = dequant.dequantize(torch.from_numpy(data.reshape(-1)), qtype)
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6, atol=1e-7)
        checked.append(name)
    assert set(checked) >= {"Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"}


@pytest.mark.parametrize(
    "qtype", [Q.Q5_0, Q.Q4_K, Q.Q6_K], ids=lambda q: q.name
)
def test_other_quantizations_load(tmp_path, vocabulary, qtype):
    path = tmp_path / "tiny.gguf"
    # K-quant blocks hold 256 values.
    write_gguf(
        path, qtype=qtype, vocabulary=vocabulary, hidden=256, intermediate=256
    )
    logits = keras_logits(load_gguf(path), IDS[:1])
    expected = torch_logits(path, IDS[:1])
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)


# --- Tokenizer. ---


@pytest.mark.parametrize("key", ["f32", "llama3"])
def test_tokenizer_matches_transformers(files, key):
    tokenizer = load_gguf(files[key]).preprocessor.tokenizer
    reference = transformers_tokenizer(files[key])
    expected = [
        reference(t, add_special_tokens=False)["input_ids"] for t in TEXTS
    ]
    assert [tokenizer(t).tolist() for t in TEXTS] == expected
    assert tf_data_ids(tokenizer, TEXTS) == expected
    assert tokenizer.detokenize(expected[4]) == TEXTS[4]


def test_smollm_pre_tokenizer_splits_digits(files, vocabulary):
    """`tokenizer.ggml.pre = "smollm"`: each digit is a word of its own.

    transformers' GGUF loader ignores this pre-tokenizer (it uses GPT-2's
    split), so the reference here is llama.cpp's split, written out.
    """
    tokenizer = load_gguf(files["smollm"]).preprocessor.tokenizer
    tokens, _, merges = vocabulary
    gpt2 = GGUFBytePairTokenizer(
        {t: i for i, t in enumerate(tokens)},
        merges,
        pre_tokenizer="gpt2",
        unsplittable_tokens=SPECIAL_TOKENS,
    )

    def expected(text):
        # llama.cpp: split off every digit, then GPT-2's regex on the rest.
        pieces = [p for p in re.split(r"(\d)", text) if p]
        return sum((gpt2(p).tolist() for p in pieces), [])

    texts = ["year 2024", "x  1", "a1b22 333", "no digits here"]
    assert [tokenizer(t).tolist() for t in texts] == [
        expected(t) for t in texts
    ]
    assert tf_data_ids(tokenizer, texts) == [expected(t) for t in texts]
    reference = transformers_tokenizer(files["smollm"])
    assert tokenizer("no digits here").tolist() == reference.encode(
        "no digits here", add_special_tokens=False
    )


def random_texts(count, seed):
    rng = random.Random(seed)
    parts = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000"]
    parts += ["a", "The", " cap", "ital", "é", "日本", "x"]
    parts += ["1", "22", "333", "4444", "'s", "'LL", "'", "!", "?!", ".", "-"]
    parts += ["<|im_start|>", "<|im_end|>"]
    return [
        "".join(rng.choices(parts, k=rng.randint(0, 14))) for _ in range(count)
    ]


@pytest.mark.parametrize("family", ["gpt2", "gpt2-digits", "llama3"])
def test_tf_data_matches_eager(vocabulary, family):
    tokens, _, merges = vocabulary
    tokenizer = GGUFBytePairTokenizer(
        {t: i for i, t in enumerate(tokens)},
        merges,
        pre_tokenizer=family,
        unsplittable_tokens=SPECIAL_TOKENS,
    )
    texts = random_texts(150, seed=len(family))
    eager = [tokenizer(t).tolist() for t in texts]
    assert tf_data_ids(tokenizer, texts) == eager
    # Byte-level BPE keeps every byte.
    assert [tokenizer.detokenize(ids) for ids in eager] == texts


# --- Presets. ---


def test_preset_round_trip(files, tmp_path):
    out_dir = tmp_path / "presets" / "tiny"
    assert import_gguf(files["q8_0"], out_dir) == str(out_dir)
    assert not [p for p in os.listdir(out_dir.parent) if p != "tiny"]
    causal_lm = keras_hub.models.CausalLM.from_preset(str(out_dir))
    assert isinstance(causal_lm, GGUFLlamaCausalLM)
    assert causal_lm.backbone.tie_word_embeddings
    expected = torch_logits(files["q8_0"], IDS)
    np.testing.assert_allclose(
        keras_logits(causal_lm, IDS), expected, atol=1e-4, rtol=1e-4
    )
    tokenizer = causal_lm.preprocessor.tokenizer
    assert tokenizer.start_token_id == 1 and tokenizer.end_token_id == 2
    # "<|endoftext|>" also ends generation (as in llama.cpp). The file pads
    # with the end token; keras-hub's generate() cannot: it pads with the
    # first token that ends nothing.
    assert tokenizer.end_token2_id == 0
    assert tokenizer.pad_token_id == 1
    assert not causal_lm.preprocessor.add_start_token
    reference = transformers_tokenizer(files["q8_0"])
    assert tokenizer(TEXTS[4]).tolist() == reference.encode(
        TEXTS[4], add_special_tokens=False
    )

    # Greedy generation, token for token, against transformers.
    prompt = "The capital of France is"
    causal_lm.compile(sampler="greedy")
    prompt_ids = reference.encode(prompt, add_special_tokens=False)
    model = transformers_model(files["q8_0"])
    with torch.no_grad():
        expected = model.generate(
            torch.tensor([prompt_ids]), max_new_tokens=8, do_sample=False
        )
    assert greedy_ids(causal_lm, [prompt], 8) == [expected[0].tolist()]


def greedy_ids(causal_lm, prompts, new_tokens):
    """Prompt and greedy continuation ids, up to `new_tokens` or the end."""
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
        ids[keep][: length + new_tokens].tolist()
        for ids, keep, length in zip(token_ids, mask, lengths)
    ]


def test_overwrite(files, tmp_path):
    out_dir = tmp_path / "preset"
    out_dir.mkdir()  # An empty directory is fine.
    import_gguf(files["f32"], out_dir)
    with pytest.raises(ValueError, match="is not empty.*overwrite=True"):
        import_gguf(files["q8_0"], out_dir)
    import_gguf(files["q8_0"], out_dir, overwrite=True)
    backbone = keras_hub.models.Backbone.from_preset(str(out_dir))
    assert backbone.tie_word_embeddings  # The q8_0 model replaced f32's.
    assert sorted(os.listdir(tmp_path)) == ["preset"]


def test_error_while_saving_leaves_nothing(files, tmp_path, monkeypatch):
    def broken_save(self, preset_dir, **kwargs):
        with open(os.path.join(preset_dir, "config.json"), "w") as f:
            f.write("{")
        raise OSError("disk full")

    old = tmp_path / "old"
    import_gguf(files["f32"], old)
    contents = sorted(os.listdir(old))
    monkeypatch.setattr(GGUFLlamaCausalLM, "save_to_preset", broken_save)
    with pytest.raises(OSError, match="disk full"):
        import_gguf(files["q8_0"], tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        import_gguf(files["q8_0"], old, overwrite=True)
    # No partial preset, no temporary directory, the old preset intact.
    assert sorted(os.listdir(tmp_path)) == ["old"]
    assert sorted(os.listdir(old)) == contents
    backbone = keras_hub.models.Backbone.from_preset(str(old))
    assert not backbone.tie_word_embeddings


def test_bfloat16(files):
    causal_lm = load_gguf(files["f32"], dtype="bfloat16")
    assert causal_lm.backbone.token_embedding.embeddings.dtype == "bfloat16"
    logits = keras_logits(causal_lm, IDS).astype("float32")
    expected = torch_logits(files["f32"], IDS)
    assert np.abs(logits - expected).max() < 0.05 * np.abs(expected).max()
    with pytest.raises(ValueError):
        load_gguf(files["f32"], dtype="float31")


# --- Bad inputs: clear errors, and nothing left in `out_dir`. ---


def assert_fails(path, out_dir, match):
    with pytest.raises(ValueError, match=match):
        import_gguf(path, out_dir)
    assert not out_dir.exists() or not os.listdir(out_dir)
    assert not [p for p in os.listdir(out_dir.parent) if p.startswith(".")]


def test_missing_file(tmp_path):
    assert_fails(tmp_path / "nope.gguf", tmp_path / "out", "not found.*nope")


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text("{'this': 'is json'}")
    assert_fails(path, tmp_path / "out", "is not a GGUF file")


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.5, 0.9999])
def test_truncated_file(files, tmp_path, fraction):
    data = files["f32"].read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: max(5, int(len(data) * fraction))])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert_fails(path, out_dir, "corrupt or truncated|truncated or corrupt")


def test_other_architecture(tmp_path):
    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(os.fspath(path), "gpt2")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), "float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert_fails(
        path, tmp_path / "out", "architecture 'gpt2'.*supported: llama"
    )


def test_unsupported_quantization(tmp_path, vocabulary):
    path = tmp_path / "iq4.gguf"
    write_gguf(path, qtype=Q.IQ4_NL, vocabulary=vocabulary)
    assert_fails(path, tmp_path / "out", "as IQ4_NL.*Supported: F32, F16")


def test_unsupported_tokenizer(tmp_path, vocabulary):
    path = tmp_path / "pre.gguf"
    write_gguf(path, pre="qwen2", vocabulary=vocabulary)
    assert_fails(path, tmp_path / "out", "pre-tokenizer 'qwen2'.*Supported")


def test_out_dir_is_a_file(files, tmp_path):
    out_dir = tmp_path / "file"
    out_dir.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        import_gguf(files["f32"], out_dir)
