import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")

# One JAX compilation cache for the whole test run, shared by both xdist
# workers and every subprocess a test starts (they inherit the environment):
# the tiny models compile the same programs again and again (a train step, a
# decoding loop) in new processes and for new model objects, which JAX's
# in-memory cache does not share. The key is the compiled program itself, so
# a hit returns what XLA would compile again: results are bit-identical.
# Made by the first process that loads this file (the xdist controller),
# removed when it ends.
_JAX_CACHE_MADE_HERE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _JAX_CACHE_MADE_HERE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="keras_textdiff_jax_cache_")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import keras  # noqa: E402
import keras_hub  # noqa: E402
import pytest  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"

# The offline data sets (SQuAD, MBPP, translation), for the tests that read
# them; absolute, since some run benchmarks in temporary directories.
OFFLINE_DATA = pathlib.Path(
    os.environ.get("KERAS_TEXTDIFF_DATA")
    or pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
).resolve()


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


# With `--dist loadfile --no-loadscope-reorder` (pyproject.toml) the two
# workers take whole files in this order. These took 35-100 s each on 2 cores
# (`--durations=0`, summed per file, a 2-core AMD EPYC), so they start first,
# longest first, and the many quick files fill in at the end: otherwise one
# worker can be left running a long file alone while the other idles.
SLOW_FILES_FIRST = [
    "tests/test_diffusion_decoder.py",
    "tests/test_fast_decoding.py",
    "tests/test_guides.py",
    "tests/test_cli_tasks.py",
    "tests/test_block_diffusion.py",
    "tests/test_distribution.py",
    "tests/test_recipes.py",
    "tests/test_ar2diff.py",
    "tests/test_cli_ar2diff.py",
    "tests/checkpoints/test_gguf.py",
    "tests/test_cli_chain.py",
    "tests/test_readme.py",
    "tests/test_learning.py",
    "tests/test_backends.py",
    "tests/test_backend_parity.py",
    "tests/test_lora.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOW_FILES_FIRST)}
    # A stable sort: each file's tests stay together and in their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_unconfigure(config):
    if _JAX_CACHE_MADE_HERE:  # (xdist workers inherit the directory.)
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
