"""The `textdiff` command line on real model formats, from file to answers.

A tiny GGUF Llama file (as llama.cpp writes SmolLM2) and a tiny Hugging Face
Llama folder (config.json, model.safetensors, tokenizer files) are made in
the test, then taken through the chain a user runs on a real model:
import-gguf (GGUF only) -> convert -> adapt -> finetune -> evaluate (the AR
and the diffusion model) -> generate, each in-process through
`keras_textdiff.cli.main`.
"""

import json

import keras
import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("transformers")

from checkpoints.test_gguf import write_gguf  # noqa: E402
from keras_textdiff.cli import main  # noqa: E402
from keras_textdiff.lora import lora_layers  # noqa: E402
from keras_textdiff.recipes import load_model  # noqa: E402
import test_safetensors  # noqa: E402
from test_safetensors import save_hf_model  # noqa: E402

# Special tokens of the two tiny models (SmolLM2's and Llama 3's).
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
)
FACTS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo")]
PROMPT = "The capital of France is"


def run(*argv):
    assert main([str(a) for a in argv]) == 0


def write_squad(path):
    """A tiny SQuAD v1.1 file: one article, paragraph and question per fact."""
    articles = []
    for country, capital in FACTS:
        context = f"The capital of {country} is {capital}."
        question = {
            "id": country,
            "question": f"Capital of {country}?",
            "answers": [{"text": capital, "answer_start": context.index(capital)}],
        }
        paragraph = {"context": context, "qas": [question]}
        articles.append({"title": country, "paragraphs": [paragraph]})
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return path


@pytest.fixture
def data(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The capital of France is Paris. The cat sat on the mat.\n" * 20)
    return {"corpus": corpus, "squad": write_squad(tmp_path / "squad.json")}


def assert_clean(texts):
    """Strings, without literal special tokens."""
    for text in texts:
        assert isinstance(text, str)
        assert not [t for t in SPECIAL_TOKENS if t in text], text


def assert_scored(path):
    result = json.loads(path.read_text())
    assert result["num_examples"] == 2 and len(result["predictions"]) == 2
    assert {"exact_match", "f1"} <= set(result)
    assert_clean(result["predictions"])


def chain(ar, tmp_path, data, capsys, convert_flags=(), decoding_flags=()):
    """convert -> adapt -> finetune -> evaluate (AR, diffusion) -> generate."""
    diffusion, adapted, tuned = (tmp_path / n for n in ("diffusion", "adapted", "tuned"))
    run("convert", "--preset", ar, "--out", diffusion, "--sequence-length", 32, *convert_flags)
    assert (diffusion / "task.json").is_file()
    run("adapt", "--preset", diffusion, "--out", adapted, "--steps", 2,
        "--corpus", data["corpus"], "--batch-size", 2)
    assert (adapted / "preset" / "task.json").is_file()
    assert (adapted / "metrics.json").is_file()
    run("finetune", "--preset", adapted / "preset", "--task", "squad",
        "--data", data["squad"], "--split", "all", "--out", tuned, "--steps", 2,
        "--batch-size", 2, "--sequence-length", 96)
    assert json.loads((tuned / "metrics.json").read_text())["steps"] == 2
    # The AR model writes up to 96 tokens, the diffusion model its length.
    for name, preset, length in (
        ("ar", ar, ["--max-length", 96]), ("diffusion", tuned / "preset", [])
    ):
        if name == "diffusion" and decoding_flags:
            scores = tmp_path / "decoded_scores.json"
            run("evaluate", "--preset", preset, "--task", "squad", "--data", data["squad"],
                "--split", "all", "--limit", 2, "--out", scores, *decoding_flags)
            assert_scored(scores)
        scores = tmp_path / f"{name}_scores.json"
        run("evaluate", "--preset", preset, "--task", "squad", "--data", data["squad"],
            "--split", "all", "--limit", 2, "--out", scores, *length)
        assert_scored(scores)
        capsys.readouterr()
        run("generate", "--preset", preset, PROMPT, *length)
        out = capsys.readouterr().out
        assert out.startswith(PROMPT)
        assert_clean([out])


def test_gguf_chain(tmp_path, data, capsys):
    gguf_file = tmp_path / "tiny.gguf"
    write_gguf(gguf_file, hidden=16, intermediate=32)
    ar = tmp_path / "ar"
    run("import-gguf", gguf_file, "--out", ar)
    assert (ar / "config.json").is_file()
    chain(ar, tmp_path, data, capsys)


@pytest.mark.large  # Safetensors loading is checked against transformers by default (test_safetensors).
def test_hugging_face_chain(tmp_path, data, capsys):
    """The Hugging Face folder, converted as the SmolLM2 SQuAD recipe is:
    block attention (the prompt keeps its causal attention), a short target
    region, shifted prediction and mask noise."""
    ar = tmp_path / "hf"
    save_hf_model(ar, "llama")
    assert (ar / "model.safetensors").is_file()
    chain(ar, tmp_path, data, capsys, convert_flags=(
        "--attention", "block", "--block-size", 12, "--target-length", 12,
        "--shifted-prediction", "--add-mask-token",
    ), decoding_flags=(
        "--strategy", "threshold", "--num-steps", 12, "--temperature", 0, "--threshold", 0.9,
    ))
    # A bad decoding option fails in one line, before the model loads.
    assert main(["evaluate", "--preset", str(tmp_path / "no_such_preset"), "--task", "squad",
                 "--data", str(data["squad"]), "--strategy", "greedy"]) == 2
    assert "strategy" in capsys.readouterr().err
    assert main(["evaluate", "--preset", str(tmp_path / "no_such_preset"), "--task", "squad",
                 "--data", str(data["squad"]), "--strategy", "entropy_bound",
                 "--entropy-bound", "0"]) == 2
    assert "entropy_bound" in capsys.readouterr().err
    # Decoding options on an AR model are refused, not ignored.
    assert main(["evaluate", "--preset", str(ar), "--task", "squad", "--data",
                 str(data["squad"]), "--strategy", "threshold"]) == 2
    assert "autoregressive" in capsys.readouterr().err
    from keras_textdiff.recipes import load_model

    model = load_model(str(tmp_path / "tuned" / "preset"))
    assert (model.attention, model.block_size, model.noise.mask_token_id is not None) == (
        "block", 12, True,
    )
    assert model.preprocessor.target_length == 12


def scripted(causal_lm, token, end_token):
    """Make a Llama model generate `token end_token token end_token ...`.

    The decoder layers add nothing (zero output projections), so each
    position's logits depend on its own token only: one-hot embeddings
    (every other token shares one) and an untied output projection that
    maps any token to `token`, and `token` to `end_token`.
    """
    backbone = causal_lm.backbone
    vocabulary_size, hidden = backbone.vocabulary_size, backbone.hidden_dim
    embeddings = np.zeros((vocabulary_size, hidden), "float32")
    embeddings[:, 0] = 1.0
    embeddings[token] = np.eye(hidden)[1]
    embeddings[end_token] = np.eye(hidden)[2]
    projection = np.zeros((hidden, vocabulary_size), "float32")
    projection[[0, 2], token] = 10.0
    projection[1, end_token] = 10.0
    values = {
        "token_embedding/embeddings": embeddings,
        "token_embedding/reverse_embeddings": projection,
        "sequence_output_layernorm/scale": np.ones(hidden, "float32"),
    }
    for weight in backbone.weights:
        if weight.path in values:
            weight.assign(values[weight.path])
        elif weight.path.endswith(("attention_output/kernel", "output_dense/kernel")):
            weight.assign(np.zeros(weight.shape, "float32"))


def imported_gguf(tmp_path):
    """A tiny untied GGUF Llama with SmolLM2's special tokens, imported."""
    gguf_file = tmp_path / "untied.gguf"
    write_gguf(gguf_file, tied=False, hidden=16, intermediate=32)
    run("import-gguf", gguf_file, "--out", tmp_path / "ar")
    return tmp_path / "ar"


def hugging_face_folder(tmp_path):
    """A tiny Llama 3 folder whose vocabulary also holds `<|im_end|>`."""
    specials = test_safetensors.SPECIAL_TOKENS
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(specials, "llama", specials["llama"] + ["<|im_end|>"])
        save_hf_model(tmp_path / "hf", "llama")
    return tmp_path / "hf"


@pytest.mark.parametrize(
    "make, end",
    [
        # The second end token of an imported SmolLM2 (its end token is
        # "<|im_end|>"): keras-hub stops at it by itself.
        (imported_gguf, "<|endoftext|>"),
        # Not one of the Llama 3 tokenizer's end tokens: only
        # `end_token_ids` knows it ends generation.
        (hugging_face_folder, "<|im_end|>"),
    ],
    ids=["gguf", "hugging_face"],
)
def test_ar_evaluation_stops_at_every_end_token(make, end, tmp_path, data, capsys):
    causal_lm = load_model(str(make(tmp_path)))
    tokenizer = causal_lm.preprocessor.tokenizer
    assert tokenizer.token_to_id(end) != tokenizer.end_token_id
    scripted(causal_lm, tokenizer.token_to_id("x"), tokenizer.token_to_id(end))
    causal_lm.save_to_preset(str(tmp_path / "scripted"))

    scores = tmp_path / "scores.json"
    run("evaluate", "--preset", tmp_path / "scripted", "--task", "squad", "--data",
        data["squad"], "--split", "all", "--limit", 2, "--max-length", 96,
        "--out", scores)
    # Without the stop: "x<end>x<end>x..." up to max_length.
    assert json.loads(scores.read_text())["predictions"] == ["x", "x"]
    capsys.readouterr()
    run("generate", "--preset", tmp_path / "scripted", PROMPT, "--max-length", 48)
    assert capsys.readouterr().out.splitlines()[0] == PROMPT + "x"


def test_finetune_with_lora_saves_a_plain_preset(tmp_path, data, capsys):
    gguf_file = tmp_path / "tiny.gguf"
    write_gguf(gguf_file, hidden=16, intermediate=32)
    ar = tmp_path / "ar"
    run("import-gguf", gguf_file, "--out", ar)
    run_dir = tmp_path / "run"
    argv = ["finetune", "--preset", ar, "--task", "squad", "--data", data["squad"],
            "--split", "all", "--out", run_dir, "--steps", 2, "--batch-size", 2,
            "--sequence-length", 64, "--checkpoint-every", 1, "--lora-rank", 2,
            "--dtype", "mixed_bfloat16"]
    run(*argv)
    assert keras.config.dtype_policy().name == "float32"  # Restored.
    config = json.loads((run_dir / "run_config.json").read_text())
    assert config["lora_rank"] == 2 and config["dtype"] == "mixed_bfloat16"
    assert "lora" not in (run_dir / "preset" / "config.json").read_text()
    # Running it again resumes (the checkpoints hold the LoRA factors).
    run(*argv)
    assert "resumed from step 2" in capsys.readouterr().out

    original = {w.path: keras.ops.convert_to_numpy(w) for w in load_model(str(ar)).backbone.weights}
    tuned = load_model(str(run_dir / "preset"))
    assert not lora_layers(tuned.backbone)
    assert sorted(w.path for w in tuned.backbone.weights) == sorted(original)
    changed = sorted(
        w.path for w in tuned.backbone.weights
        if not np.array_equal(keras.ops.convert_to_numpy(w), original[w.path])
    )
    # Only the query and value kernels, where the LoRA updates were merged.
    assert changed == [
        f"transformer_layer_{i}/self_attention/{name}/kernel"
        for i in range(2) for name in ("query", "value")
    ]
