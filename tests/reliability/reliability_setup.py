"""Shared set-up of the reliability suite: a workspace of good and damaged
inputs, built once, and the checks every case makes.

The workspace holds tiny presets (a diffusion model and an AR model, made in
the test; an AR model scripted to write padding between its letters; models
whose tokenizer is larger than their backbone's vocabulary), task data,
corpora, and copies of the diffusion preset damaged as a killed copy or
download leaves them. Cases read it and write only under
their own `tmp_path`; `snapshot` proves that a failing case changed nothing.
"""

import hashlib
import json
import os
import shutil

import keras_hub
import numpy as np
import pytest

import keras_textdiff as ktd
from conftest import LETTERS
from conftest import PAIRS
from conftest import ar_letter_tokenizer
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from conftest import write_translation_task



def _squad(path):
    articles = []
    for en, fr in PAIRS:
        context = f"The French for {en} is {fr}."
        question = {"id": en, "question": f"French for {en}?",
                    "answers": [{"text": fr, "answer_start": context.index(fr)}]}
        articles.append({"title": en, "paragraphs": [{"context": context, "qas": [question]}]})
    path.write_text(json.dumps({"version": "1.1", "data": articles}))


def _diffusion_preset(path):
    tokenizer = letter_tokenizer()
    ktd.DiffusionDecoder(
        gpt2_backbone(tokenizer.vocabulary_size()), ktd.DiffusionPreprocessor(tokenizer, 16)
    ).save_to_preset(str(path))


def padding_tokenizer():
    """The letter tokenizer with a padding token apart from its end token.

    As `train_byte_pair_tokenizer` makes them for `pretrain`: `<|padding|>`
    is id 0 (GPT-2's padding id), `<|endoftext|>` id 1, both unsplittable.
    """
    tokens = ["<|padding|>", "<|endoftext|>"] + list(LETTERS) + ["Ġ", "Ġa"]
    return keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary={token: i for i, token in enumerate(tokens)},
        merges=["Ġ a"],
        unsplittable_tokens=["<|padding|>", "<|endoftext|>"],
    )


def scripted_backbone(tokenizer, script, sequence_length=16):
    """A GPT-2 backbone whose logits at position `p` peak at `script[p % len(script)]`.

    Attention and feed-forward outputs are zeroed, so each position's hidden
    state is its token embedding plus a large position embedding, which
    points at the scripted token's embedding: what an AR model generates (or
    a diffusion model denoises to) at a position does not depend on the
    prompt. `script` is a list of tokens (strings).
    """
    backbone = gpt2_backbone(tokenizer.vocabulary_size(), sequence_length=sequence_length)
    ids = [tokenizer.token_to_id(token) for token in script]
    axis = {token_id: i for i, token_id in enumerate(sorted(set(ids)))}
    embeddings = backbone.token_embedding.embeddings.numpy()
    for token_id, i in axis.items():
        embeddings[token_id] = 5 * np.eye(embeddings.shape[1])[i]
    positions = np.stack([100 * np.eye(embeddings.shape[1])[axis[ids[p % len(ids)]]]
                          for p in range(sequence_length)])
    backbone.token_embedding.embeddings.assign(embeddings)
    backbone.position_embedding.position_embeddings.assign(positions)
    for weight in backbone.weights:
        if "attention_output" in weight.path or "feedforward_output" in weight.path:
            weight.assign(np.zeros(weight.shape))
    return backbone


def _ar_preset(path, backbone=None, tokenizer=None):
    # The end token is not id 0, GPT-2's padding: its generations are not empty.
    tokenizer = tokenizer or ar_letter_tokenizer()
    backbone = backbone or gpt2_backbone(tokenizer.vocabulary_size())
    keras_hub.models.GPT2CausalLM(
        backbone, keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16)
    ).save_to_preset(str(path))


def _larger_tokenizer(preset):
    """Give a preset's tokenizer more tokens than its backbone embeds."""
    path = preset / "assets" / "tokenizer" / "vocabulary.json"
    vocabulary = json.loads(path.read_text())
    for token in ("Ġb", "Ġc", "Ġd"):
        vocabulary[token] = len(vocabulary)
    path.write_text(json.dumps(vocabulary))


def _truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


# name -> how a copy of the diffusion preset is damaged.
DAMAGES = {
    "truncated_weights": lambda p: _truncate(p / "model.weights.h5", 1000),
    "empty_weights": lambda p: _truncate(p / "model.weights.h5", 0),
    "garbage_weights": lambda p: (p / "model.weights.h5").write_bytes(b"\x00garbage" * 4096),
    "weights_dir": lambda p: ((p / "model.weights.h5").unlink(), (p / "model.weights.h5").mkdir()),
    "bad_config": lambda p: (p / "config.json").write_text("{oops"),
    "empty_config": lambda p: (p / "config.json").write_text(""),
    "binary_config": lambda p: (p / "config.json").write_bytes(b"\xff\xfe\x00garbage"),
    "no_config": lambda p: (p / "config.json").unlink(),
    "bad_task": lambda p: (p / "task.json").write_text("[1, 2"),
    "bad_tokenizer": lambda p: (p / "tokenizer.json").write_text("{\"config\": "),
    "bad_preprocessor": lambda p: (p / "preprocessor.json").write_text("nul"),
    "empty_dir": lambda p: (shutil.rmtree(p), p.mkdir()),
}


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """`{name: path}` of the shared inputs (strings, for argv)."""
    root = tmp_path_factory.mktemp("reliability")
    write_translation_task(root / "translation")
    _squad(root / "squad.json")
    (root / "squad_bad.json").write_text("{not json")
    (root / "corpus.txt").write_text("the cat sat on the mat. " * 40)
    (root / "blank.txt").write_text("   \n\n")
    (root / "no_text").mkdir()
    (root / "no_text" / "image.png").write_bytes(b"\x89PNG")
    (root / "file.txt").write_text("a plain file")
    (root / "fake.gguf").write_bytes(b"not a gguf file at all")
    (root / "occupied").mkdir()
    (root / "occupied" / "keep.txt").write_text("someone's work")
    (root / "other_run").mkdir()
    (root / "other_run" / "run_config.json").write_text(json.dumps({"command": "pretrain"}))
    (root / "damaged_run").mkdir()
    (root / "damaged_run" / "run_config.json").write_text("{")
    _diffusion_preset(root / "diffusion")
    _ar_preset(root / "ar")
    _ar_preset(root / "ar_padding", scripted_backbone(padding_tokenizer(), ["a", "<|padding|>", "t"]),
               padding_tokenizer())
    # AR: a backbone of 10 tokens for the tokenizer's 29.
    _ar_preset(root / "ar_large_vocabulary", gpt2_backbone(10))
    shutil.copytree(root / "diffusion", root / "diffusion_large_vocabulary")
    _larger_tokenizer(root / "diffusion_large_vocabulary")
    for name, damage in DAMAGES.items():
        shutil.copytree(root / "diffusion", root / name)
        damage(root / name)
    paths = {p.name.replace(".", "_"): str(p) for p in root.iterdir()}
    paths["root"] = str(root)
    return paths


def snapshot(*roots):
    """Every directory and file under `roots`, files with their content hash."""
    state = {}
    for root in roots:
        for directory, names, files in os.walk(root):
            for name in names:
                state[os.path.join(directory, name)] = "directory"
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    state[path] = hashlib.sha1(f.read()).hexdigest()
    return state
