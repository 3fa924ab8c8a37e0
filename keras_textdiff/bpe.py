"""Train a small byte-level BPE vocabulary, served by keras-hub's GPT-2 tokenizer."""

import json


def train_byte_pair_tokenizer(
    texts, vocabulary_size=4096, special_tokens=("<|endoftext|>",), min_frequency=2
):
    """Learn a byte-level BPE on `texts` and return a keras-hub tokenizer.

    Training uses Hugging Face `tokenizers` (seconds for a few MB); the
    result is a `keras_hub.tokenizers.GPT2Tokenizer`, which runs in `tf.data`
    and saves with presets. Byte-level BPE keeps every character, so Python
    indentation and newlines survive a round trip exactly.

    Args:
        texts: a list of strings.
        vocabulary_size: int. Total vocabulary size, special tokens included.
        special_tokens: must contain `"<|endoftext|>"` (the GPT-2 tokenizer's
            start, end and pad token).
        min_frequency: minimum pair count for a merge.

    Returns:
        A `keras_hub.tokenizers.GPT2Tokenizer`.

    Example:
    >>> tokenizer = train_byte_pair_tokenizer(["def f(x):\\n    return x\\n"] * 50, 300)
    >>> tokenizer.detokenize(tokenizer("def f(x):"))
    'def f(x):'
    """
    import keras_hub
    from tokenizers import Tokenizer
    from tokenizers import decoders
    from tokenizers import models
    from tokenizers import pre_tokenizers
    from tokenizers import trainers

    texts = list(texts)
    if not texts:
        raise ValueError("`texts` is empty: pass the corpus to learn from.")
    if "<|endoftext|>" not in special_tokens:
        raise ValueError(
            "`special_tokens` must include '<|endoftext|>', the start/end/pad "
            f"token of GPT2Tokenizer. Received: {special_tokens}"
        )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocabulary_size < len(alphabet) + len(special_tokens):
        raise ValueError(
            f"`vocabulary_size` must be at least {len(alphabet) + len(special_tokens)} "
            f"(256 bytes + special tokens). Received: {vocabulary_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=list(special_tokens),
        initial_alphabet=alphabet,
        min_frequency=min_frequency,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=model["vocab"], merges=merges
    )
