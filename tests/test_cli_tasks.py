"""`textdiff finetune`, `evaluate` and `generate` on a tiny translation task."""

import json

import keras_hub

import keras_textdiff as ktd
from conftest import gpt2_backbone
from conftest import letter_tokenizer
from keras_textdiff.cli import main

PAIRS = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("fish", "poisson")]


def write_task(directory):
    directory.mkdir()
    rows = "".join(f"Gen\t1\t{i}\t{en}\t{fr}\n" for i, (en, fr) in enumerate(PAIRS))
    for split in ("train", "test"):
        (directory / f"{split}.tsv").write_text("book\tchapter\tverse\ten\tfr\n" + rows)
    return str(directory)


def diffusion_preset(path):
    tokenizer = letter_tokenizer()
    model = ktd.DiffusionDecoder(
        gpt2_backbone(tokenizer.vocabulary_size()),
        ktd.DiffusionPreprocessor(tokenizer, 16),
    )
    model.save_to_preset(str(path))
    return str(path)


def ar_preset(path):
    tokenizer = letter_tokenizer()
    model = keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    )
    model.save_to_preset(str(path))
    return str(path)


def test_finetune_evaluate_generate(tmp_path, capsys):
    data = write_task(tmp_path / "data")
    for kind, make in (("diffusion", diffusion_preset), ("ar", ar_preset)):
        preset = make(tmp_path / f"{kind}_preset")
        run = tmp_path / f"{kind}_run"
        argv = ["finetune", "--preset", preset, "--task", "translation", "--data", data,
                "--out", str(run), "--steps", "4", "--checkpoint-every", "2",
                "--batch-size", "2"]
        assert main(argv) == 0
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["steps"] == 4 and metrics["num_examples"] == 4
        config = json.loads((run / "run_config.json").read_text())
        assert config["task"] == "translation" and config["learning_rate"] == 1e-3
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
            "step-00000002.npz", "step-00000004.npz"]
        assert (run / "logs").is_dir()
        # Running it again finds the run finished: nothing is retrained.
        assert main(argv) == 0
        assert "resumed from step 4" in capsys.readouterr().out

        scores = tmp_path / f"{kind}_scores.json"
        assert main(["evaluate", "--preset", str(run / "preset"), "--task", "translation",
                     "--data", data, "--out", str(scores), "--max-length", "16"]) == 0
        result = json.loads(scores.read_text())
        assert {"bleu", "chrf", "num_examples", "predictions"} <= set(result)
        assert result["num_examples"] == 4 and len(result["predictions"]) == 4
        assert main(["generate", "--preset", str(run / "preset"), "cat", "--max-length", "12"]) == 0
        assert "cat" in capsys.readouterr().out


def test_bad_task_input(tmp_path, capsys):
    data = write_task(tmp_path / "data")
    preset = diffusion_preset(tmp_path / "preset")
    out = tmp_path / "run"
    assert main(["finetune", "--preset", preset, "--task", "wmt", "--data", data,
                 "--out", str(out), "--steps", "2"]) == 2
    assert "Known tasks" in capsys.readouterr().err
    assert not out.exists()
    assert main(["finetune", "--preset", preset, "--task", "translation", "--data", data,
                 "--out", str(out), "--steps", "2", "--batch-size", "2"]) == 0
    # The same directory with other settings holds another run's checkpoints.
    assert main(["finetune", "--preset", preset, "--task", "translation", "--data", data,
                 "--out", str(out), "--steps", "3", "--batch-size", "2"]) == 2
    assert "another run" in capsys.readouterr().err


def test_ar_training_text_separates_prompt_and_answer():
    from keras_textdiff.recipes import pair_dataset

    vocabulary = list(letter_tokenizer().get_vocabulary())
    vocabulary = {token: i for i, token in enumerate(vocabulary + ["Ċ"])}  # "\n"
    tokenizer = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=vocabulary, merges=["Ġ a"])
    model = keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    )
    examples = [{"prefix": "cat", "target": "chat"}]
    x, _, _ = next(iter(pair_dataset(model, examples, batch_size=1, seed=0)))
    ids = x["token_ids"][0].numpy()
    text = tokenizer.detokenize(ids[x["padding_mask"][0].numpy()])
    assert text == "<|endoftext|>cat\nchat<|endoftext|>"
