"""Hugging Face safetensors folders, read by keras-hub's own loader, then AR2Diff.

A tiny random `transformers` model is saved in the test (config.json,
model.safetensors, tokenizer files); the reference logits are PyTorch's.
"""

import json

import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

WORDS = ["the", "cat", "sat", "on", "mat", "def", "add", "return"]


# Special tokens each keras-hub tokenizer class insists on.
SPECIAL_TOKENS = {
    "llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
              "<|start_header_id|>", "<|end_header_id|>"],
    "qwen2": ["<|endoftext|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"],
}


def byte_level_tokenizer(path, specials):
    """A tiny byte-level BPE `tokenizer.json` (+ config) in `path`."""
    bos, eos = specials[:2]
    specials = list(dict.fromkeys(specials))
    model = tokenizers.models.BPE(
        vocab={"<unk>": 0}, merges=[], unk_token="<unk>"
    )
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([" ".join(WORDS)] * 50, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos
    )
    fast.save_pretrained(str(path))
    return fast


def save_hf_model(path, architecture):
    torch.manual_seed(0)
    fast = byte_level_tokenizer(path, SPECIAL_TOKENS[architecture])
    common = dict(
        vocab_size=len(fast),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    if architecture == "llama":
        config = transformers.LlamaConfig(num_key_value_heads=1, **common)
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.Qwen2Config(num_key_value_heads=1, **common)
        model = transformers.Qwen2ForCausalLM(config)
    model.eval()
    model.save_pretrained(str(path))
    return model


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_safetensors_folder_converts(architecture, tmp_path):
    torch.set_num_threads(1)
    folder = tmp_path / architecture
    hf_model = save_hf_model(folder, architecture)
    assert (folder / "model.safetensors").exists()

    model = ktd.AR2DiffConverter().convert(str(folder))
    vocabulary_size = model.backbone.vocabulary_size
    ids = np.random.default_rng(0).integers(0, vocabulary_size, (2, 10)).astype("int32")
    padding_mask = np.ones_like(ids, dtype=bool)
    with torch.no_grad():
        reference = hf_model(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    causal = ops.convert_to_numpy(model.logits(ids, padding_mask, attention_mask=None))
    np.testing.assert_allclose(causal, reference, atol=1e-4)
    bidirectional = ops.convert_to_numpy(model.logits(ids, padding_mask))
    assert np.abs(bidirectional[:, 0] - reference[:, 0]).max() > 1e-4
    # The tokenizer came along and decoding runs.
    assert model.preprocessor.tokenizer.vocabulary_size() == vocabulary_size
    text = model.generate(["the cat"], max_length=12)
    assert text[0].startswith("the cat")


def test_hf_encoder_folder_is_refused(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertModel"]})
    )
    with pytest.raises(ValueError, match="BertModel.*Supported"):
        ktd.AR2DiffConverter().convert(str(folder))
