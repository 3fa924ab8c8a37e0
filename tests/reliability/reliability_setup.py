"""Shared set-up of the reliability suite: a workspace of good and damaged
inputs, built once, and the checks every case makes.

The workspace holds tiny presets (a diffusion model and an AR model, made in
the test), task data, corpora, and copies of the diffusion preset damaged as
a killed copy or download leaves them. Cases read it and write only under
their own `tmp_path`; `snapshot` proves that a failing case changed nothing.
"""

import hashlib
import json
import os
import shutil

import keras_hub
import pytest

import keras_textdiff as ktd
from conftest import gpt2_backbone
from conftest import letter_tokenizer

PAIRS = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("fish", "poisson")]


def _translation(directory):
    directory.mkdir()
    rows = "".join(f"Gen\t1\t{i}\t{en}\t{fr}\n" for i, (en, fr) in enumerate(PAIRS))
    for split in ("train", "test"):
        (directory / f"{split}.tsv").write_text("book\tchapter\tverse\ten\tfr\n" + rows)


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


def _ar_preset(path):
    tokenizer = letter_tokenizer()
    keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    ).save_to_preset(str(path))


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
    _translation(root / "translation")
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
