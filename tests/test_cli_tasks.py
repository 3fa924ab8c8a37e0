"""`textdiff finetune`, `evaluate` and `generate` on a tiny translation task."""

import json

import keras_hub
import pytest

import keras_textdiff as ktd
from conftest import ar_letter_tokenizer
from conftest import gpt2_backbone
from conftest import write_translation_task
from conftest import letter_tokenizer
from keras_textdiff.cli import main
from keras_textdiff.recipes import load_model



def diffusion_preset(path):
    tokenizer = letter_tokenizer()
    model = ktd.DiffusionDecoder(
        gpt2_backbone(tokenizer.vocabulary_size()),
        ktd.DiffusionPreprocessor(tokenizer, 16),
    )
    model.compile(sampler=ktd.DiffusionSampler(seed=0))  # `generate` is reproducible.
    model.save_to_preset(str(path))
    return str(path)


def ar_preset(path):
    tokenizer = ar_letter_tokenizer()
    model = keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    )
    model.save_to_preset(str(path))
    return str(path)


def test_finetune_evaluate_generate(tmp_path, capsys):
    data = write_translation_task(tmp_path / "data")
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
        capsys.readouterr()
        prompts = ["cat", "dog", "bird"]
        assert main(["generate", "--preset", str(run / "preset"), *prompts, "--max-length", "12"]) == 0
        printed = capsys.readouterr().out
        # Each prompt and the completion the Python API gives for the same
        # preset: the preset's seeded diffusion sampler on the same batch, or
        # keras-hub's greedy decoding up to the end token.
        model = load_model(str(run / "preset"))
        if kind == "diffusion":
            completions = model.generate(prompts, max_length=12, strip_prompt=True)
        else:
            model.compile(sampler="greedy")
            completions = [model.generate(p, max_length=12, strip_prompt=True) for p in prompts]
        assert any(completions), f"{kind}: only the prompts would be printed"
        assert printed == "".join(f"{p}{c}\n{'-' * 40}\n" for p, c in zip(prompts, completions))


def test_bad_task_input(tmp_path, capsys):
    data = write_translation_task(tmp_path / "data")
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


def newline_tokenizer():
    """The letter tokenizer, plus "\n" (the AR separator)."""
    vocabulary = list(letter_tokenizer().get_vocabulary())
    vocabulary = {token: i for i, token in enumerate(vocabulary + ["Ċ"])}
    return keras_hub.tokenizers.GPT2Tokenizer(vocabulary=vocabulary, merges=["Ġ a"])


def test_ar_training_text_separates_prompt_and_answer():
    from keras_textdiff.recipes import pair_dataset

    tokenizer = newline_tokenizer()
    model = keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    )
    examples = [{"prefix": "cat", "target": "chat"}]
    x, _, _ = next(iter(pair_dataset(model, examples, batch_size=1, seed=0)))
    ids = x["token_ids"][0].numpy()
    text = tokenizer.detokenize(ids[x["padding_mask"][0].numpy()])
    assert text == "<|endoftext|>cat\nchat<|endoftext|>"


def test_finetune_at_another_sequence_length(tmp_path, capsys):
    from keras_textdiff.recipes import load_model

    data = write_translation_task(tmp_path / "data")
    tokenizer = letter_tokenizer()
    # 32 positions, pretrained at 16: fine-tuning may go up to 32, not past.
    model = ktd.DiffusionDecoder(
        gpt2_backbone(tokenizer.vocabulary_size(), sequence_length=32),
        ktd.DiffusionPreprocessor(tokenizer, 16),
    )
    model.save_to_preset(str(tmp_path / "preset"))
    base = ["finetune", "--preset", str(tmp_path / "preset"), "--task", "translation",
            "--data", data, "--steps", "2", "--batch-size", "2"]
    assert main(base + ["--out", str(tmp_path / "long"), "--sequence-length", "24"]) == 0
    tuned = load_model(str(tmp_path / "long" / "preset"))
    assert tuned.preprocessor.sequence_length == 24
    config = json.loads((tmp_path / "long" / "run_config.json").read_text())
    assert config["sequence_length"] == 24
    assert main(base + ["--out", str(tmp_path / "too_long"), "--sequence-length", "40"]) == 2
    error = capsys.readouterr().err
    assert "max_sequence_length` = 32" in error and "40" in error


def test_ar_fine_tuning_leaves_out_examples_that_do_not_fit(capsys):
    from keras_textdiff.recipes import pair_dataset

    tokenizer = newline_tokenizer()
    model = keras_hub.models.GPT2CausalLM(
        gpt2_backbone(tokenizer.vocabulary_size()),
        keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16),
    )
    # 16 = start + 14 tokens + end: "ab" + "\n" + 11 letters fits, 12 do not.
    assert len(tokenizer("ab\n" + "c" * 11)) == 14
    examples = [{"prefix": "ab", "target": "c" * 11}, {"prefix": "ab", "target": "d" * 12}]
    batches = pair_dataset(model, examples, batch_size=2, seed=0)
    x, _, _ = next(iter(batches))
    texts = tokenizer.detokenize(x["token_ids"].numpy())
    assert all("c" * 11 in t and "dd" not in t for t in texts)
    assert "dropped 1 of 2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="None of the 1 examples fits"):
        pair_dataset(model, examples[1:], batch_size=1, seed=0)


def squad_file(path, context, question, answer):
    article = {"title": "Mills", "paragraphs": [{"context": context, "qas": [{
        "id": "q0", "question": question,
        "answers": [{"text": answer, "answer_start": context.index(answer)}]}]}]}
    path.write_text(json.dumps({"version": "1.1", "data": [article]}))
    return str(path)


def test_squad_training_contexts_are_cut_around_the_answer(tmp_path, capsys):
    from keras_textdiff.bpe import train_byte_pair_tokenizer

    filler = " ".join(f"Sentence {i} is about the weather." for i in range(20))
    context = f"{filler} The mill grinds wheat. {filler}"
    data = squad_file(tmp_path / "squad.json", context, "What does the mill grind?", "wheat")
    tokenizer = train_byte_pair_tokenizer([context, "question: What does the mill grind?"] * 4,
                                          vocabulary_size=300)
    model = ktd.DiffusionDecoder(gpt2_backbone(tokenizer.vocabulary_size(), sequence_length=128),
                                 ktd.DiffusionPreprocessor(tokenizer, 128))
    model.save_to_preset(str(tmp_path / "preset"))
    whole = len(tokenizer(f"question: What does the mill grind? context: {context}"))
    assert whole > 128  # The whole context does not fit; cut to 200 characters it does.
    base = ["finetune", "--preset", str(tmp_path / "preset"), "--task", "squad", "--data", data,
            "--split", "all", "--steps", "1", "--batch-size", "1"]
    assert main(base + ["--out", str(tmp_path / "whole"), "--context-chars", "0"]) == 2
    assert "None of the 1 examples fits" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "cut"), "--context-chars", "200"]) == 0
    config = json.loads((tmp_path / "cut" / "run_config.json").read_text())
    assert config["context_chars"] == 200
    # Only SQuAD has contexts; a bad number is refused before any work.
    translation = write_translation_task(tmp_path / "data")
    for flags, message in ((["--task", "translation", "--data", translation,
                             "--context-chars", "100"], "cuts SQuAD contexts"),
                           (["--task", "squad", "--data", data, "--context-chars", "-1"],
                            "must be an int >= 0")):
        out = tmp_path / "refused"
        argv = ["finetune", "--preset", str(tmp_path / "preset"), "--out", str(out),
                "--steps", "1", *flags]
        assert main(argv) == 2
        assert message in capsys.readouterr().err and not out.exists()
