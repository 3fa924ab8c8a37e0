"""Silent wrong results, made right: special tokens never reach the text a
user reads or a metric scores, `evaluate --out` replaces a file only when
told to, a length the backbone can hold is honoured, and the AR preset of
the workspace generates text (its padding is not its end token).

The models are scripted (`reliability_setup.scripted_backbone`): they write
`<|padding|>` between their letters whatever the prompt, as an
under-trained model does.
"""

import json

import numpy as np

import keras_textdiff as ktd
from keras_textdiff.cli import main
from keras_textdiff.evaluation.evaluate import complete
from keras_textdiff.evaluation.evaluate import evaluate
from keras_textdiff.recipes import load_model
from reliability_setup import padding_tokenizer
from reliability_setup import scripted_backbone
from reliability_setup import workspace  # noqa: F401 (a fixture)
from tiny_models import tiny_causal_lm

PAD, END = "<|padding|>", "<|endoftext|>"
SCRIPT = ["a", PAD, "t"]


def assert_plain(texts):
    for text in texts:
        assert "<|" not in text, text


def ar_reference(model, prompts, max_length):
    """keras-hub's own greedy output, prompt and special tokens cut by hand."""
    model.compile(sampler="greedy")
    outputs = model.generate(prompts, max_length=max_length)
    return [o[len(p):].split(END)[0].replace(PAD, "") for p, o in zip(prompts, outputs)]


def test_postprocess_drops_padding_in_the_middle_of_the_target():
    tokenizer = padding_tokenizer()
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, sequence_length=12)
    batch = {k: np.array(v) for k, v in preprocessor.generate_preprocess(["cat"]).items()}
    pad, end = tokenizer.token_to_id(PAD), tokenizer.token_to_id(END)
    c, h, a, t = (tokenizer.token_to_id(x) for x in "chat")
    assert pad == tokenizer.pad_token_id == 0 and end == tokenizer.end_token_id == 1
    # [start] c a t [end] | c h pad a t [end] pad pad
    batch["token_ids"][0, 5:] = [c, h, pad, a, t, end, pad]
    postprocess = preprocessor.generate_postprocess
    assert postprocess(batch, stop_token_ids=None) == ["catchat"]
    assert postprocess(batch, stop_token_ids=[end]) == ["catchat"]
    assert postprocess(batch, stop_token_ids=[end], strip_prompt=True) == ["chat"]
    assert postprocess(batch) == ["catch"]  # "auto": the padding ends the output.


def test_diffusion_generate_shows_no_special_tokens():
    tokenizer = padding_tokenizer()
    model = ktd.DiffusionDecoder(
        scripted_backbone(tokenizer, SCRIPT), ktd.DiffusionPreprocessor(tokenizer, 16)
    )
    # [start] c a t [end] | t a pad t a pad t: position p holds SCRIPT[p % 3].
    assert model.generate(["cat"], max_length=12, stop_token_ids=None) == ["cattatat"]
    assert model.generate(["cat"], max_length=12, stop_token_ids=None, strip_prompt=True) == ["tatat"]
    assert model.generate(["cat"], max_length=12) == ["catta"]  # Cut at the padding.


def test_ar_completions_show_no_special_tokens(workspace):
    model = load_model(workspace["ar_padding"])
    prompts = ["c", "cat"]
    predictions = complete(model, prompts, max_length=12)
    assert_plain(predictions)
    assert predictions == ar_reference(model, prompts, 12)
    assert all(len(p) > 3 for p in predictions)  # Letters, not emptiness.
    result = evaluate(model, [{"prefix": "cat", "target": "tata"}], "translation",
                      max_length=12, verbose=0)
    assert_plain(result["predictions"])
    assert result["predictions"] == ar_reference(model, ["cat"], 12)


def test_commands_show_no_special_tokens(workspace, tmp_path, capsys):
    assert main(["generate", "--preset", workspace["ar_padding"], "c", "cat",
                 "--max-length", "12"]) == 0
    printed = capsys.readouterr().out
    assert_plain([printed])
    expected = ar_reference(load_model(workspace["ar_padding"]), ["c", "cat"], 12)
    assert printed.split("-" * 40 + "\n")[:2] == ["c" + expected[0] + "\n", "cat" + expected[1] + "\n"]
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--preset", workspace["ar_padding"], "--task", "translation",
                 "--data", workspace["translation"], "--limit", "2", "--max-length", "12",
                 "--out", str(scores)]) == 0
    predictions = json.loads(scores.read_text())["predictions"]
    assert len(predictions) == 2 and all(predictions)
    assert_plain(predictions)


def test_evaluate_replaces_its_out_file_only_with_overwrite(workspace, tmp_path, capsys):
    scores = tmp_path / "scores.json"
    scores.write_text("earlier scores")
    argv = ["evaluate", "--preset", workspace["diffusion"], "--task", "translation",
            "--data", workspace["translation"], "--limit", "1", "--out", str(scores)]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert scores.read_text() == "earlier scores"
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads(scores.read_text())["num_examples"] == 1


def test_the_ar_preset_generates_text(workspace, capsys):
    """Its end token is not id 0, GPT-2's padding: completions are not empty."""
    assert main(["generate", "--preset", workspace["ar"], "cat", "--max-length", "12"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("cat") and len(first) > len("cat")


def test_a_length_past_a_rotary_backbone_is_honoured():
    """Rotary backbones have no position table: any `sequence_length` holds."""
    model = ktd.AR2DiffConverter(sequence_length=64).convert(tiny_causal_lm("llama3", 16))
    assert model.preprocessor.sequence_length == 64
