"""Import GGUF Llama checkpoints (llama.cpp's file format) into keras-hub.

A GGUF file holds a model's hyperparameters and tokenizer as metadata and
its weights as (often quantized) tensors. `load_gguf` turns a GGUF file of
the `llama` architecture with a byte-level BPE tokenizer (Llama 3, SmolLM,
SmolLM2, Falcon 3, ...) into a keras-hub `CausalLM`; `import_gguf` saves
that as a local keras-hub preset, which reloads with
`keras_hub.models.CausalLM.from_preset(out_dir)` once this module has been
imported (it registers the classes below with Keras).

>>> import keras_hub
>>> from keras_textdiff.checkpoints import import_gguf
>>> preset = import_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2")
>>> causal_lm = keras_hub.models.CausalLM.from_preset(preset)
>>> causal_lm.compile(sampler="greedy")  # keras-hub samples top-k otherwise.
>>> causal_lm.generate("The capital of France is", max_length=16)
'The capital of France is Paris.\\n\\nThe answer is: 20'

What the conversion does:

* Weights are dequantized to float with `gguf.quants.dequantize` (see
  `SUPPORTED_QUANTIZATIONS`) and cast to `dtype`; the model is not kept
  quantized.
* llama.cpp's converter permutes the rows of the query and key projections
  of every head to the rotary-embedding layout of GGML; they are permuted
  back to the Hugging Face layout that keras-hub's `LlamaBackbone` uses.
* Without an `output.weight` tensor the output projection is the token
  embedding (tied embeddings), as in llama.cpp.
* The tokenizer is rebuilt from the vocabulary and merges stored in the
  file, with the pre-tokenizer (the regex that splits text into words
  before BPE) that the file's `tokenizer.ggml.pre` names, as llama.cpp
  does (see `SUPPORTED_PRE_TOKENIZERS`). Its eager calls and its
  `tf.data` calls give the same ids (see `GGUFBytePairTokenizer`).
* Generation stops at the end token and at a second one, the first other
  end-of-generation control token of the file (`END_OF_GENERATION_TOKENS`,
  as llama.cpp has them: SmolLM2-Instruct ends with `<|im_end|>` or
  `<|endoftext|>`). The padding token is one that ends nothing, since
  keras-hub's `generate()` cannot pad with a token it stops at.

The keras-hub classes used are subclasses of the Llama 3 ones
(`Llama3Backbone`, `Llama3CausalLMPreprocessor`, `Llama3CausalLM`), so
anything that accepts a Llama 3 model accepts these. They exist because,
in keras-hub 0.32, `LlamaBackbone.get_config()` leaves out
`tie_word_embeddings` (a tied model does not reload from its preset), and
`Llama3Tokenizer` neither saves its special tokens nor splits words like
the models' own tokenizers.
"""

import os

import keras
import keras_hub
import numpy as np

from keras_textdiff.checkpoints.gguf_tokenizer import _ALPHABET
from keras_textdiff.checkpoints.gguf_tokenizer import _BYTE_TO_CHAR
from keras_textdiff.checkpoints.gguf_tokenizer import END_OF_GENERATION_TOKENS
from keras_textdiff.checkpoints.gguf_tokenizer import SUPPORTED_PRE_TOKENIZERS
from keras_textdiff.checkpoints.gguf_tokenizer import GGUFBytePairTokenizer
from keras_textdiff.presets import check_output_dir
from keras_textdiff.presets import save_preset

# ---------------------------------------------------------------------------
# What the importer supports.
# ---------------------------------------------------------------------------

SUPPORTED_ARCHITECTURES = ("llama",)

# ggml tensor types that are dequantized (with `gguf.quants.dequantize`).
SUPPORTED_QUANTIZATIONS = (
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
)

# ---------------------------------------------------------------------------
# keras-hub classes.
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_textdiff")
class GGUFLlamaBackbone(keras_hub.models.Llama3Backbone):
    """A `Llama3Backbone` that saves `tie_word_embeddings` in its config.

    keras-hub 0.32's `LlamaBackbone` accepts `tie_word_embeddings` but leaves
    it out of `get_config()`, so a tied model reloads untied, with a missing
    output projection. This subclass also records the context length the
    model was trained for, `max_sequence_length` (informational: rotary
    embeddings have no hard limit).

    Args:
        max_sequence_length: int or `None`. The trained context length.
        **kwargs: passed to `keras_hub.models.Llama3Backbone`.

    Example:

    >>> backbone = GGUFLlamaBackbone(
    ...     vocabulary_size=10, num_layers=1, num_query_heads=2,
    ...     num_key_value_heads=1, hidden_dim=8, intermediate_dim=16,
    ...     tie_word_embeddings=True)
    >>> backbone.get_config()["tie_word_embeddings"]
    True
    """

    def __init__(self, *args, max_sequence_length=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_sequence_length = max_sequence_length

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tie_word_embeddings": self.tie_word_embeddings,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config


GGUFBytePairTokenizer.backbone_cls = GGUFLlamaBackbone


@keras.saving.register_keras_serializable(package="keras_textdiff")
class GGUFLlamaCausalLMPreprocessor(
    keras_hub.models.Llama3CausalLMPreprocessor
):
    """`Llama3CausalLMPreprocessor` for a `GGUFBytePairTokenizer`.

    Unlike keras-hub 0.32's, `generate_preprocess()` (the prompts of
    `generate()`) honours `add_start_token=False`: SmolLM2, for one, is not
    prompted with a start token.
    """

    backbone_cls = GGUFLlamaBackbone
    tokenizer_cls = GGUFBytePairTokenizer

    def _generate_preprocess_python(self, x, sequence_length=None):
        if not self.built:
            self.build(None)
        token_ids, padding_mask = self.packer(
            self.tokenizer(x),
            sequence_length=sequence_length,
            add_start_value=self.add_start_token,
            add_end_value=False,
        )
        return {"token_ids": token_ids, "padding_mask": padding_mask}


@keras.saving.register_keras_serializable(package="keras_textdiff")
class GGUFLlamaCausalLM(keras_hub.models.Llama3CausalLM):
    """`Llama3CausalLM` for a `GGUFLlamaBackbone`; made by `load_gguf`."""

    backbone_cls = GGUFLlamaBackbone
    preprocessor_cls = GGUFLlamaCausalLMPreprocessor


# ---------------------------------------------------------------------------
# Reading the file.
# ---------------------------------------------------------------------------

_REQUIRED = object()


def _open(path):
    """Return a `gguf.GGUFReader` for `path`, or raise a clear error."""
    import gguf

    if not os.path.exists(path):
        raise ValueError(
            f"GGUF file not found: '{path}'. Check the path (the current "
            f"directory is '{os.getcwd()}')."
        )
    if not os.path.isfile(path):
        raise ValueError(
            f"'{path}' is not a file. Pass the path of a .gguf file."
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(
            f"'{path}' is not a GGUF file: it does not start with the bytes "
            f"b'GGUF' (it starts with {magic!r}). Pass a file written by "
            "llama.cpp's convert_hf_to_gguf.py (or `gguf.GGUFWriter`)."
        )
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as e:
        raise ValueError(
            f"'{path}' is a corrupt or truncated GGUF file and cannot be read "
            f"({type(e).__name__}: {e}). Download or convert it again."
        ) from e
    # The reader maps the file lazily; a file cut inside the tensor data can
    # leave some tensors short instead of failing.
    for tensor in reader.tensors:
        block_size, type_size = gguf.GGML_QUANT_SIZES.get(
            tensor.tensor_type, (1, tensor.data.itemsize)
        )
        expected = int(tensor.n_elements) // block_size * type_size
        if tensor.data.nbytes != expected:
            raise ValueError(
                f"'{path}' is truncated or corrupt: tensor '{tensor.name}' "
                f"has {tensor.data.nbytes} bytes of data instead of "
                f"{expected}. Download or convert it again."
            )
    return reader


def _metadata(reader, path, key, default=_REQUIRED):
    field = reader.fields.get(key)
    if field is None:
        if default is _REQUIRED:
            raise ValueError(
                f"'{path}' has no metadata key '{key}', which a GGUF Llama "
                "model needs. The file is incomplete or not a llama.cpp "
                "model file; convert it again with llama.cpp."
            )
        return default
    return field.contents()


def _single(value, key, path):
    """A per-model value; some files store one per layer."""
    if isinstance(value, (list, tuple, np.ndarray)):
        values = set(np.asarray(value).tolist())
        if len(values) != 1:
            raise ValueError(
                f"'{path}' has a different '{key}' for each layer "
                f"({sorted(values)}); keras-hub's LlamaBackbone needs one "
                "value for all layers."
            )
        value = values.pop()
    return value


def _backbone_config(reader, path):
    def get(key, default=_REQUIRED):
        return _metadata(reader, path, f"llama.{key}", default)

    num_layers = int(get("block_count"))
    hidden_dim = int(get("embedding_length"))
    num_heads = int(_single(get("attention.head_count"), "head_count", path))
    num_kv_heads = int(
        _single(
            get("attention.head_count_kv", num_heads), "head_count_kv", path
        )
    )
    intermediate_dim = int(
        _single(get("feed_forward_length"), "feed_forward_length", path)
    )
    if hidden_dim % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"'{path}' has embedding_length={hidden_dim}, "
            f"head_count={num_heads} and head_count_kv={num_kv_heads}; "
            "LlamaBackbone needs head_count to divide embedding_length and "
            "head_count_kv to divide head_count."
        )
    head_dim = hidden_dim // num_heads
    for key in ("attention.key_length", "attention.value_length"):
        if int(get(key, head_dim)) != head_dim:
            raise ValueError(
                f"'{path}' has llama.{key}={get(key)}, not "
                f"embedding_length / head_count = {head_dim}; keras-hub's "
                "LlamaBackbone does not support a separate head size."
            )
    rotary_dim = int(get("rope.dimension_count", head_dim))
    if rotary_dim != head_dim:
        raise ValueError(
            f"'{path}' applies rotary embeddings to {rotary_dim} of "
            f"{head_dim} dimensions per head (llama.rope.dimension_count); "
            "keras-hub's LlamaBackbone rotates them all."
        )
    if int(get("expert_count", 0)) > 0:
        raise ValueError(
            f"'{path}' is a mixture-of-experts model (llama.expert_count="
            f"{get('expert_count')}, e.g. Mixtral), which this importer "
            "does not support: it imports dense Llama models."
        )
    scaling_factor = 1.0
    scaling = get("rope.scaling.type", "none")
    if scaling == "linear":
        scaling_factor = float(get("rope.scaling.factor"))
    elif scaling != "none":
        raise ValueError(
            f"'{path}' uses '{scaling}' RoPE scaling "
            "(llama.rope.scaling.type); only 'none' and 'linear' are "
            "supported."
        )
    context_length = get("context_length", None)
    return {
        "num_layers": num_layers,
        "num_query_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
        "rope_max_wavelength": float(get("rope.freq_base", 10000.0)),
        "rope_position_scaling_factor": scaling_factor,
        "layer_norm_epsilon": float(
            get("attention.layer_norm_rms_epsilon", 1e-5)
        ),
        "max_sequence_length": (
            None if context_length is None else int(context_length)
        ),
    }


def _tokenizer(reader, path):
    """Build a `GGUFBytePairTokenizer` from the file's tokenizer metadata."""

    def get(key, default=_REQUIRED):
        return _metadata(reader, path, f"tokenizer.ggml.{key}", default)

    model = get("model")
    if model != "gpt2":
        kind = {"llama": "SentencePiece"}.get(model, "")
        raise ValueError(
            f"'{path}' has a {kind + ' ' if kind else ''}tokenizer of type "
            f"'{model}' (tokenizer.ggml.model); only byte-level BPE "
            "tokenizers ('gpt2': Llama 3, SmolLM, SmolLM2, ...) are "
            "supported, not Llama 1/2's SentencePiece ('llama')."
        )
    pre = get("pre", None)
    if pre not in SUPPORTED_PRE_TOKENIZERS:
        raise ValueError(
            f"'{path}' has the pre-tokenizer {pre!r} (tokenizer.ggml.pre), "
            "which this importer does not support. Supported: "
            f"{', '.join(sorted(SUPPORTED_PRE_TOKENIZERS))}. A file without "
            "one was written by an old llama.cpp: convert it again."
        )
    family = SUPPORTED_PRE_TOKENIZERS[pre]
    tokens = list(get("tokens"))
    token_types = get("token_type", None)
    if token_types is None:
        token_types = [1] * len(tokens)
    # Tokens are stored in GPT-2's byte alphabet ("Ġthe"), except some added
    # ones with other characters (e.g. a token of real spaces): respell
    # those, as Hugging Face transformers' GGUF loader does.
    spelled = [set(t) <= _ALPHABET for t in tokens]
    tokens = [
        t if ok else "".join(_BYTE_TO_CHAR[b] for b in t.encode("utf-8"))
        for t, ok in zip(tokens, spelled)
    ]
    vocabulary = {token: i for i, token in enumerate(tokens)}
    merges = list(get("merges"))
    unsplittable = []
    for token, token_type, ok in zip(tokens, token_types, spelled):
        # 3 is a control token (e.g. "<|im_end|>"), 4 a user-defined one;
        # both are kept whole in the text, unless respelled (as in
        # transformers).
        if token_type in (3, 4) and ok and token not in unsplittable:
            unsplittable.append(token)

    def token(key):
        index = get(f"{key}_token_id", None)
        return None if index is None else tokens[int(index)]

    eos = token("eos") or (
        "<|endoftext|>" if "<|endoftext|>" in vocabulary else None
    )
    if eos is None:
        raise ValueError(
            f"'{path}' names no end-of-text token "
            "(tokenizer.ggml.eos_token_id); a keras-hub CausalLM needs one."
        )
    # Generation ends at the end token and, as in llama.cpp, at the other
    # end-of-generation control tokens (SmolLM2's end token is "<|im_end|>",
    # and "<|endoftext|>" ends it too): the first of those other ones is the
    # tokenizer's second end token, where keras-hub's `generate()` stops too.
    ends = [token("eot")] + [t for t in END_OF_GENERATION_TOKENS if t in unsplittable]
    eot = next((t for t in ends if t not in (None, eos)), None)
    # keras-hub's `generate()` takes a padding token that is also a stop
    # token for a generated one and stops at once, and GGUF files often pad
    # with the end token (SmolLM2 does). Padding is masked out anyway, so
    # pad with the unknown token, or the first token, that ends nothing.
    ends = {eos, *ends}
    pad = token("padding")
    if pad is None or pad in ends:
        candidates = [token("unknown")] + tokens
        pad = next(t for t in candidates if t is not None and t not in ends)
    tokenizer = GGUFBytePairTokenizer(
        vocabulary=vocabulary,
        merges=merges,
        pre_tokenizer=family,
        bos_token=token("bos") or eos,
        eos_token=eos,
        pad_token=pad,
        eot_token=eot,
        unsplittable_tokens=unsplittable,
    )
    # llama.cpp's default where the file does not say: BOS for Llama 3.
    add_bos = bool(get("add_bos_token", family == "llama3"))
    return tokenizer, add_bos


def _check_quantizations(reader, path):
    for tensor in reader.tensors:
        name = tensor.tensor_type.name
        if name not in SUPPORTED_QUANTIZATIONS:
            raise ValueError(
                f"'{path}' stores tensor '{tensor.name}' as {name}, a "
                "quantization this importer does not support. Supported: "
                f"{', '.join(SUPPORTED_QUANTIZATIONS)}. Convert the model "
                "with one of those (e.g. llama.cpp's llama-quantize with "
                "Q8_0 or Q4_K_M, or an F16 file)."
            )


def _unpermute(weight, num_heads):
    """Undo llama.cpp's permutation of a query or key projection.

    For each head, Hugging Face's rotary embedding pairs dimension `i` with
    `i + head_dim / 2` (`rotate_half`), GGML's pairs `2 i` with `2 i + 1`.
    llama.cpp's converter reorders the rows of each head from
    `(2, head_dim / 2)` to `(head_dim / 2, 2)`; this reorders them back.
    """
    rows, columns = weight.shape
    weight = weight.reshape(num_heads, rows // num_heads // 2, 2, columns)
    return weight.swapaxes(1, 2).reshape(rows, columns)


def _load_weights(backbone, reader, path):
    from gguf.quants import dequantize

    tensors = {tensor.name: tensor for tensor in reader.tensors}
    tied = "output.weight" not in tensors
    expected = {"token_embd.weight", "output_norm.weight"}
    if not tied:
        expected.add("output.weight")
    suffixes = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output"]
    suffixes += ["ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
    for i in range(backbone.num_layers):
        expected.update(f"blk.{i}.{s}.weight" for s in suffixes)
    unexpected = sorted(set(tensors) - expected)
    if "rope_freqs.weight" in unexpected:
        raise ValueError(
            f"'{path}' has per-frequency RoPE factors (tensor "
            "'rope_freqs.weight', Llama 3.1+ RoPE scaling), which this "
            "importer does not support."
        )
    if unexpected:
        raise ValueError(
            f"'{path}' has tensors that the Llama models of this importer "
            f"do not have: {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''} (biases, extra norms "
            "or another architecture under the name 'llama'); they cannot "
            "be imported."
        )
    missing = sorted(expected - set(tensors))
    if missing:
        raise ValueError(
            f"'{path}' lacks tensors of a Llama model with "
            f"{backbone.num_layers} layers: {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}. The file is incomplete."
        )

    hidden = backbone.hidden_dim
    heads = backbone.num_query_heads
    kv_heads = backbone.num_key_value_heads
    head_dim = hidden // heads

    def read(name, shape):
        """The tensor as float32, in Hugging Face's (out, in) layout."""
        tensor = tensors[name]
        weight = dequantize(tensor.data, tensor.tensor_type)
        weight = np.asarray(weight, dtype="float32").reshape(
            [int(n) for n in reversed(tensor.shape)]
        )
        if weight.shape != tuple(shape):
            raise ValueError(
                f"'{path}': tensor '{name}' has shape {weight.shape}, "
                f"expected {tuple(shape)} from the model's metadata. The "
                "file is inconsistent."
            )
        return weight

    embedding = backbone.token_embedding
    vocabulary_size = backbone.vocabulary_size
    embedding.embeddings.assign(
        read("token_embd.weight", (vocabulary_size, hidden))
    )
    if not tied:
        weight = read("output.weight", (vocabulary_size, hidden))
        embedding.reverse_embeddings.assign(weight.T)
    for i in range(backbone.num_layers):
        layer = backbone.transformer_layers[i]
        attention = layer._self_attention_layer

        def get(suffix, shape):
            return read(f"blk.{i}.{suffix}.weight", shape)

        layer._self_attention_layernorm.scale.assign(
            get("attn_norm", (hidden,))
        )
        layer._feedforward_layernorm.scale.assign(get("ffn_norm", (hidden,)))
        q = _unpermute(get("attn_q", (heads * head_dim, hidden)), heads)
        k = _unpermute(get("attn_k", (kv_heads * head_dim, hidden)), kv_heads)
        v = get("attn_v", (kv_heads * head_dim, hidden))
        o = get("attn_output", (hidden, heads * head_dim))
        # keras-hub's kernels are (in, heads, head_dim) and
        # (heads, head_dim, out); Hugging Face's weights are (out, in).
        attention._query_dense.kernel.assign(
            q.T.reshape(hidden, heads, head_dim)
        )
        attention._key_dense.kernel.assign(
            k.T.reshape(hidden, kv_heads, head_dim)
        )
        attention._value_dense.kernel.assign(
            v.T.reshape(hidden, kv_heads, head_dim)
        )
        attention._output_dense.kernel.assign(
            o.T.reshape(heads, head_dim, hidden)
        )
        intermediate = backbone.intermediate_dim
        layer._feedforward_gate_dense.kernel.assign(
            get("ffn_gate", (intermediate, hidden)).T
        )
        layer._feedforward_intermediate_dense.kernel.assign(
            get("ffn_up", (intermediate, hidden)).T
        )
        layer._feedforward_output_dense.kernel.assign(
            get("ffn_down", (hidden, intermediate)).T
        )
    backbone.get_layer("sequence_output_layernorm").scale.assign(
        read("output_norm.weight", (hidden,))
    )


# ---------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------


def load_gguf_backbone(path, dtype="float32"):
    """Load the backbone alone of a GGUF Llama checkpoint (see `load_gguf`).

    Hyperparameters and weights, without the tokenizer: this needs neither
    TensorFlow nor the vocabulary, so a machine that only trains and decodes
    token ids (a GPU machine without TensorFlow, say) can build the model.

    Args:
        path: path of the `.gguf` file.
        dtype: the dtype of the weights and computations.

    Returns:
        A `GGUFLlamaBackbone` with the file's weights.

    Raises:
        ValueError: as `load_gguf`.

    Example:

    >>> backbone = load_gguf_backbone("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> backbone.vocabulary_size
    49152
    """
    path = os.fspath(path)
    return _read_backbone(_open(path), path, dtype)


def _check_architecture(reader, path):
    architecture = _metadata(reader, path, "general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"'{path}' holds a model of architecture '{architecture}' "
            "(general.architecture); supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}."
        )


def _read_backbone(reader, path, dtype):
    dtype_policy = keras.dtype_policies.get(dtype)  # Raises on a bad dtype.
    _check_architecture(reader, path)
    config = _backbone_config(reader, path)
    _check_quantizations(reader, path)
    embedding = next(
        (t for t in reader.tensors if t.name == "token_embd.weight"), None
    )
    if embedding is None:
        raise ValueError(
            f"'{path}' has no tensor 'token_embd.weight'. The file is "
            "incomplete."
        )
    backbone = GGUFLlamaBackbone(
        vocabulary_size=int(embedding.shape[-1]),
        tie_word_embeddings=not any(
            t.name == "output.weight" for t in reader.tensors
        ),
        dtype=dtype_policy,
        **config,
    )
    _load_weights(backbone, reader, path)
    return backbone


def load_gguf(path, dtype="float32"):
    """Load a GGUF Llama checkpoint as a keras-hub `CausalLM`.

    Reads the hyperparameters, the tokenizer and the weights of a GGUF file
    of the `llama` architecture with a byte-level BPE tokenizer (Llama 3,
    SmolLM, SmolLM2, ...) and builds a `GGUFLlamaCausalLM` (a
    `keras_hub.models.Llama3CausalLM`) with a `GGUFLlamaBackbone` and a
    `GGUFLlamaCausalLMPreprocessor`, whose `sequence_length` (the default
    `max_length` of `generate()`) is the trained context length, at most
    1024. Quantized weights are dequantized (see
    `SUPPORTED_QUANTIZATIONS`).

    Args:
        path: path of the `.gguf` file.
        dtype: the dtype of the model's weights and computations, e.g.
            `"float32"` (default) or `"bfloat16"`.

    Returns:
        A `GGUFLlamaCausalLM`.

    Raises:
        ValueError: the file is missing, is not a GGUF file, is corrupt or
            truncated, or holds a model or quantization this importer does
            not support; the message says which.

    Example:

    >>> causal_lm = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> causal_lm.compile(sampler="greedy")
    >>> causal_lm.generate("The capital of France is", max_length=16)
    'The capital of France is Paris.\\n\\nThe answer is: 20'

    `max_length` counts the prompt's tokens (5 here). keras-hub's default
    sampler is top-k sampling, hence `compile(sampler="greedy")`.
    """
    path = os.fspath(path)
    keras.dtype_policies.get(dtype)  # A bad dtype raises before the file is read.
    reader = _open(path)
    _check_architecture(reader, path)
    tokenizer, add_bos = _tokenizer(reader, path)  # Before the slow part.
    backbone = _read_backbone(reader, path, dtype)
    context_length = backbone.max_sequence_length or 1024
    preprocessor = GGUFLlamaCausalLMPreprocessor(
        tokenizer=tokenizer,
        sequence_length=min(context_length, 1024),
        add_start_token=add_bos,
    )
    return GGUFLlamaCausalLM(backbone=backbone, preprocessor=preprocessor)


def import_gguf(path, out_dir, dtype="float32", overwrite=False):
    """Convert a GGUF Llama checkpoint into a local keras-hub preset.

    Loads the file with `load_gguf` and saves the `CausalLM` (backbone,
    tokenizer, preprocessor and weights) with `save_to_preset`. The preset
    is written to a temporary directory next to `out_dir` and renamed to
    `out_dir` when complete, so `out_dir` never holds a partial preset: on
    any error it is left as it was (absent, empty, or, with `overwrite`, with
    its previous contents).

    The preset reloads with `keras_hub.models.CausalLM.from_preset(out_dir)`
    (or `Backbone`, `Tokenizer`, ... `.from_preset`) in a program that has
    imported `keras_textdiff.checkpoints`, which registers its classes.

    Args:
        path: path of the `.gguf` file.
        out_dir: the preset directory to create. It must not exist or be
            empty, unless `overwrite=True`.
        dtype: the dtype of the saved weights, e.g. `"float32"` (default)
            or `"bfloat16"`.
        overwrite: bool. Whether to replace a non-empty `out_dir`.

    Returns:
        `out_dir`, as an absolute path.

    Raises:
        ValueError: as `load_gguf`, or `out_dir` is not empty (without
            `overwrite`) or is a file.

    Example:

    >>> import_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "presets/smollm2")
    '/home/me/presets/smollm2'
    >>> causal_lm = keras_hub.models.CausalLM.from_preset("presets/smollm2")
    """
    check_output_dir(out_dir, overwrite)  # Before the slow part.
    causal_lm = load_gguf(path, dtype=dtype)
    return save_preset(causal_lm, out_dir, overwrite=overwrite)
