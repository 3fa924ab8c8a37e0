"""Tiny random keras-hub CausalLMs of every architecture AR2Diff supports.

Each comes with a real tokenizer of its own class, built in the test: a
letter-level byte-pair vocabulary, or a SentencePiece model trained on a few
sentences, plus whatever special tokens the class insists on.
"""

import io
import re

import keras_hub

HIDDEN = 16
TEXT = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "def add(a, b): return a + b",
    "print the sum of two numbers",
] * 20
LETTERS = "abcdefghijklmnopqrstuvwxyz():+,="

_common = dict(num_layers=2, hidden_dim=HIDDEN, intermediate_dim=2 * HIDDEN)
_gqa = dict(_common, num_query_heads=2, num_key_value_heads=1)

# name -> (CausalLM class name, backbone kwargs besides vocabulary_size).
ARCHITECTURES = {
    "gpt2": ("GPT2CausalLM", dict(_common, num_heads=2, max_sequence_length=32)),
    "opt": ("OPTCausalLM", dict(_common, num_heads=2, max_sequence_length=32)),
    "gpt_neo_x": ("GPTNeoXCausalLM", dict(_common, num_heads=2, max_sequence_length=32)),
    "falcon": ("FalconCausalLM", dict(_common, num_attention_heads=2)),
    "bloom": ("BloomCausalLM", dict(_common, num_heads=2)),
    "gemma": ("GemmaCausalLM", dict(_gqa, head_dim=8)),
    "gemma2": (
        "GemmaCausalLM",
        dict(
            _gqa,
            head_dim=8,
            query_head_dim_normalize=False,
            use_post_ffw_norm=True,
            use_post_attention_norm=True,
            final_logit_soft_cap=30.0,
            attention_logit_soft_cap=50.0,
            use_sliding_window_attention=True,
            sliding_window_size=64,
        ),
    ),
    "gemma3": (
        "Gemma3CausalLM",
        dict(_gqa, head_dim=8, image_size=16, sliding_window_size=64),
    ),
    "llama": ("LlamaCausalLM", dict(_gqa)),
    "llama3": ("Llama3CausalLM", dict(_gqa)),
    "mistral": ("MistralCausalLM", dict(_gqa)),
    "mixtral": ("MixtralCausalLM", dict(_gqa, num_experts=2, top_k=1)),
    "qwen2": ("Qwen2CausalLM", dict(_gqa)),
    "qwen3": ("Qwen3CausalLM", dict(_gqa, head_dim=8)),
    "qwen_moe": (
        "QwenMoeCausalLM",
        dict(_gqa, moe_intermediate_dim=16, shared_expert_intermediate_dim=16,
             num_experts=2, top_k=1),
    ),
    "qwen3_moe": (
        "Qwen3MoeCausalLM",
        dict(_gqa, head_dim=8, moe_intermediate_dim=16, num_experts=2, top_k=1),
    ),
    "phi3": ("Phi3CausalLM", dict(_gqa)),
    "gpt_oss": ("GptOssCausalLM", dict(_gqa, num_experts=2, top_k=1)),
    "smollm3": (
        "SmolLM3CausalLM",
        dict(
            _common,
            num_attention_heads=2,
            num_key_value_heads=1,
            attention_bias=False,
            attention_dropout=0.0,
            rope_layer_enabled_list=[True, False],
            layer_types=["full_attention", "full_attention"],
            mlp_bias=False,
            layer_norm_epsilon=1e-6,
            max_position_embeddings=64,
            rope_theta=10000.0,
            partial_rotary_factor=1.0,
        ),
    ),
}

_MISSING = re.compile(r"[`'\"]([^`'\"]+)[`'\"].*(?:not|cannot).*vocab|vocab\w*.*[`'\"]([^`'\"]+)[`'\"]", re.I)


def _special_tokens_from_error(error):
    return [t for pair in _MISSING.findall(str(error)) for t in pair if t]


def _bpe(tokenizer_cls, specials):
    vocabulary = {}
    for token in specials + list(LETTERS) + ["Ġ", "Ġa"]:
        vocabulary.setdefault(token, len(vocabulary))
    return tokenizer_cls(vocabulary=vocabulary, merges=["Ġ a"])


def _sentencepiece(tokenizer_cls, specials):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT),
        model_writer=model,
        vocab_size=48 + len(specials),
        model_type="bpe",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece="<pad>", unk_piece="<unk>", bos_piece="<bos>", eos_piece="<eos>",
        user_defined_symbols=[s for s in specials if s not in ("<pad>", "<unk>", "<bos>", "<eos>")],
        minloglevel=2,
    )
    return tokenizer_cls(proto=model.getvalue())


def tiny_tokenizer(tokenizer_cls):
    """A tiny tokenizer of `tokenizer_cls`, with the special tokens it needs."""
    make = (
        _sentencepiece
        if issubclass(tokenizer_cls, keras_hub.tokenizers.SentencePieceTokenizer)
        else _bpe
    )
    specials = ["<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>", "<bos>", "<eos>"]
    for _ in range(20):
        try:
            return make(tokenizer_cls, specials)
        except ValueError as error:
            missing = _special_tokens_from_error(error)
            if not missing or all(m in specials for m in missing):
                raise
            specials += [m for m in missing if m not in specials]
    raise RuntimeError(f"Could not build a tiny {tokenizer_cls.__name__}.")


def tiny_causal_lm(name, sequence_length=16):
    """A random tiny `CausalLM` of architecture `name`, with preprocessor."""
    class_name, kwargs = ARCHITECTURES[name]
    causal_lm_cls = getattr(keras_hub.models, class_name)
    preprocessor_cls = causal_lm_cls.preprocessor_cls
    tokenizer = tiny_tokenizer(preprocessor_cls.tokenizer_cls)
    backbone = causal_lm_cls.backbone_cls(
        vocabulary_size=tokenizer.vocabulary_size(), **kwargs
    )
    preprocessor = preprocessor_cls(tokenizer, sequence_length=sequence_length)
    return causal_lm_cls(backbone=backbone, preprocessor=preprocessor)
