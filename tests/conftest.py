import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import pytest  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_tokenizer():
    """A tiny byte-pair tokenizer: one token per lowercase letter."""
    vocabulary = {"<|endoftext|>": 0}
    for token in list(LETTERS) + ["Ġ", "Ġa"]:
        vocabulary[token] = len(vocabulary)
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=vocabulary, merges=["Ġ a"]
    )


def ar_letter_tokenizer():
    """The letter tokenizer with its end token last, for keras-hub CausalLMs.

    `GPT2Tokenizer` pads with id 0, and keras-hub's samplers stop once every
    row holds a stop id after its prompt: with the end token at id 0, the
    padding counts, and an AR model generates nothing at all.
    """
    tokens = list(LETTERS) + ["Ġ", "Ġa", "<|endoftext|>"]
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary={token: i for i, token in enumerate(tokens)}, merges=["Ġ a"]
    )


def gpt2_backbone(vocabulary_size, hidden_dim=16, sequence_length=16):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=sequence_length,
        dropout=0.0,
    )


def gemma_backbone(vocabulary_size):
    return keras_hub.models.GemmaBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
    )


# English -> French pairs, the tiny translation task the command tests use.
PAIRS = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("fish", "poisson")]


def write_translation_task(directory):
    """`PAIRS` as a translation data folder (train and test TSV files)."""
    directory.mkdir()
    rows = "".join(f"Gen\t1\t{i}\t{en}\t{fr}\n" for i, (en, fr) in enumerate(PAIRS))
    for split in ("train", "test"):
        (directory / f"{split}.tsv").write_text("book\tchapter\tverse\ten\tfr\n" + rows)
    return str(directory)


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    if keras.config.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    yield
