"""`benchmarks/ar2diff_protocol.py`: rows evaluated on another machine come
back from the committed results, so a fresh checkout can add rows without
losing them."""

import json
import os

import numpy as np
import pytest
from benchmark_modules import load_benchmark
from tiny_models import tiny_causal_lm


def json_row(task, model, decoding, metric, value, **extra):
    return {"task": task, "base": "smollm2-135m", "model": model, "metric": metric, "value": value,
            "examples": 200, "finetune_steps": 150, "adapt_steps": 0, "decoding": decoding,
            "seconds": 10.0, "model_calls": None, **extra}


def test_committed_rows_are_regrouped_and_local_rows_replace_them(tmp_path, monkeypatch):
    protocol = load_benchmark("ar2diff_protocol")
    results, work = tmp_path / "results", tmp_path / "work"
    results.mkdir()
    monkeypatch.setattr(protocol, "RESULTS", str(results))
    monkeypatch.setattr(protocol, "device_name", lambda: "CPU (Test, x86_64, 2 cores)")
    committed = {
        "device": "CPU (Other, x86_64, 2 cores)",
        "adaptations": [{"name": "AR2Diff_100", "seconds": 5.0, "resumed_from": 0, "steps": 100, "loss": 5.4}],
        "rows": [json_row("squad", "AR", "greedy", "f1", 36.2, train_seconds=99),
                 json_row("squad", "AR", "greedy", "exact_match", 29.0, train_seconds=99),
                 json_row("translation", "AR", "greedy", "bleu", 0.9),
                 json_row("translation", "AR", "greedy", "chrf", 15.6)],
    }
    (results / "quality-smollm2-cpu.json").write_text(json.dumps(committed))
    local = work / "translation" / "AR"
    local.mkdir(parents=True)
    newer = {"task": "translation", "model": "AR", "decoding": "greedy", "bleu": 2.0, "chrf": 20.0}
    (local / "row-greedy.json").write_text(json.dumps(newer))
    adapt = work / "AR2Diff_300" / "adapt"
    adapt.mkdir(parents=True)
    (adapt / "result.json").write_text(json.dumps(
        {"seconds": 7.0, "resumed_from": 100, "steps": 300, "loss": 4.8, "history": [1.0]}))

    args = protocol.parse_args(["--work-dir", str(work)])
    rows = {(r["task"], r["model"]): r for r in protocol.evaluated_rows(args)}
    assert set(rows) == {("squad", "AR"), ("translation", "AR")}
    squad = rows["squad", "AR"]
    assert (squad["f1"], squad["exact_match"], squad["train_seconds"]) == (36.2, 29.0, 99)
    assert "metric" not in squad and "value" not in squad
    assert rows["translation", "AR"] == newer
    stages = protocol.adaptation_stages(args)
    assert [(a["name"], a["seconds"], a["resumed_from"]) for a in stages] == [
        ("AR2Diff_100", 5.0, 0), ("AR2Diff_300", 7.0, 100)]
    # Quick runs are checks: they never read the committed results.
    quick = protocol.parse_args(["--work-dir", str(work), "--quick"])
    assert protocol.evaluated_rows(quick) == []


def test_rows_from_several_machines_name_their_own():
    protocol = load_benchmark("ar2diff_protocol")
    assert protocol.short_device("CPU (AMD EPYC, x86_64, 2 cores)") == "AMD EPYC"
    assert protocol.short_device("CPU (Intel(R) Xeon(R) Processor, x86_64, 2 cores)") == "Intel Xeon"
    assert protocol.short_device("NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"


def test_each_training_variant_has_its_own_rows_and_run_folders():
    """A run keyed on another LoRA rank or block size would be refused in the
    default row's folder (`RunDirectory` checks its config): each variant is
    named, and AR variants still count as AR rows."""
    protocol = load_benchmark("ar2diff_protocol")

    def names(*argv):
        args = protocol.parse_args(["--task", "mbpp", *argv])
        return (protocol.row_name(args, 0, diffusion=False), protocol.row_name(args, 0),
                os.path.basename(protocol.adapted_dir(args, 100)))

    assert names() == ("AR", "AR2Diff_0", "AR2Diff_100")
    assert names("--block-size", "8") == ("AR", "AR2Diff_0-block8", "AR2Diff_100-block8")
    assert names("--lora-rank", "0") == ("AR-full", "AR2Diff_0-full", "AR2Diff_100-full")
    assert names("--block-size", "8", "--lora-rank", "0")[1] == "AR2Diff_0-block8-full"
    assert names("--lora-rank", "4", "--lora-layers", "all")[:2] == ("AR-lora4-all", "AR2Diff_0-lora4-all")
    assert names("--lora-rank", "0", "--learning-rate", "1e-4")[:2] == ("AR-full-lr0.0001", "AR2Diff_0-full-lr0.0001")
    assert names("--learning-rate", "5e-4") == names()
    # Another fine-tuning budget: rows of its own, fine-tuning the same adaptation.
    assert names("--finetune-steps", "25") == ("AR-ft25", "AR2Diff_0-ft25", "AR2Diff_100")
    assert names("--quick", "--finetune-steps", "3")[:2] == ("AR-ft3", "AR2Diff_0-ft3")
    assert names("--quick")[:2] == ("AR", "AR2Diff_0")  # Its own default budget.
    # Another adaptation rate: AR2Diff_N rows and adaptations of their own.
    assert names("--adapt-learning-rate", "1e-5") == ("AR", "AR2Diff_0", "AR2Diff_100-alr1e-05")
    assert names("--adapt-learning-rate", "5e-4") == names()  # The fine-tuning's own rate.
    args = protocol.parse_args(["--adapt-learning-rate", "1e-5", "--finetune-steps", "25"])
    assert protocol.row_name(args, 100) == "AR2Diff_100-alr1e-05-ft25"
    assert protocol.adaptation_args(args).learning_rate == 1e-5 and args.learning_rate == 5e-4
    # The model's own continuations: rows and adaptations of their own, and an
    # adaptation run that continues no adaptation on the corpus as it is.
    assert names("--adapt-corpus", "self") == ("AR", "AR2Diff_0", "AR2Diff_100-self")
    own, mixed = (protocol.adaptation_args(protocol.parse_args(["--adapt-corpus", c])) for c in ("self", "mixed"))
    assert protocol.stage_config(100, own, "adapt") == {**protocol.stage_config(100, mixed, "adapt"), "corpus": "self"}
    assert protocol.stage_config(100, own, "finetune") == protocol.stage_config(100, mixed, "finetune")
    assert protocol.is_ar({"model": "AR-full"}) and protocol.is_ar({"model": "AR"})
    assert not protocol.is_ar({"model": "AR2Diff_0-full"})


@pytest.mark.parametrize("block_size", [None, 4])
def test_one_adaptation_serves_every_task(tmp_path, block_size):
    """As the paper's AR2Diff_N checkpoint: MBPP fine-tunes the adaptation
    made at SQuAD's lengths (no second adaptation), at MBPP's own lengths."""
    from keras_textdiff.data import to_dataset
    from keras_textdiff.presets import save_preset

    protocol = load_benchmark("ar2diff_protocol")
    flags = ["--work-dir", str(tmp_path), "--separator", "end_token"]
    flags += ["--block-size", str(block_size)] if block_size else []
    squad = protocol.parse_args(flags)
    mbpp = protocol.parse_args(["--task", "mbpp", *flags])
    assert protocol.adapted_dir(mbpp, 100) == protocol.adapted_dir(squad, 100)
    adapt = protocol.adaptation_args(mbpp)
    assert (adapt.sequence_length, adapt.target_length) == (192, 32)

    adapted = protocol.diffusion_model(tiny_causal_lm("llama"), adapt)
    assert adapted.preprocessor.target_length == 32
    save_preset(adapted, protocol.adapted_preset(mbpp, 100))
    model = protocol.finetuning_start(mbpp, None, 100)
    assert (model.preprocessor.sequence_length, model.preprocessor.target_length) == (256, 128)
    assert model.block_size == (block_size or 128)
    np.testing.assert_array_equal(  # The adapted weights, loaded.
        model.backbone.token_embedding.get_weights()[0], adapted.backbone.token_embedding.get_weights()[0])

    # A training batch's loss reads MBPP's whole target region.
    batch = next(iter(to_dataset([{"prefix": "abc", "target": "de"}], model.preprocessor, 1)))
    outputs = model(batch[0] if isinstance(batch, tuple) else batch)
    assert outputs["logits"].shape[1] == 128
    if block_size:  # One block of 4 trained, the end token's or one before it.
        trained = np.asarray(outputs["trained"])[0]
        assert trained.sum() == block_size and trained[4:].sum() == 0


def test_paired_difference_is_the_rows_difference_with_an_interval_around_it(tmp_path):
    from keras_textdiff.evaluation import metrics

    protocol = load_benchmark("ar2diff_protocol")
    rng = np.random.default_rng(0)
    words = ["the", "Edict", "of", "Nantes", "1562", "Louis", "XIV", "France"]
    references = [[" ".join(rng.choice(words, 3))] for _ in range(60)]
    guess = lambda: [" ".join(rng.choice(words, rng.integers(1, 4))) for _ in references]  # noqa: E731
    rows = {"a": guess(), "b": guess()}
    rows["a"][:20] = [r[0] for r in references[:20]]  # "a" is right more often.
    for name, predictions in rows.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({"predictions": [
            {"id": str(i), "prediction": p, "references": r}
            for i, (p, r) in enumerate(zip(predictions, references))]}))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    differences = protocol.paired_difference(a, b, resamples=2000)
    for name, metric in (("f1", metrics.f1), ("exact_match", metrics.exact_match)):
        mean, low, high = differences[name]
        expected = metric(rows["a"], references) - metric(rows["b"], references)
        assert mean == pytest.approx(expected)
        assert low < mean < high and high - low < 40
    assert differences["f1"][1] > 0  # 20 of 60 made right: clearly better.
    same = protocol.paired_difference(a, a, resamples=100)
    assert same == {"f1": (0.0, 0.0, 0.0), "exact_match": (0.0, 0.0, 0.0)}
    other = json.loads(b.read_text())
    other["predictions"] = other["predictions"][::-1]
    (tmp_path / "c.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="different questions"):
        protocol.paired_difference(a, tmp_path / "c.json")


def test_each_row_names_the_commit_that_decoded_it(tmp_path, monkeypatch):
    """A new row records the checkout's commit; a local row file of the same
    run as a committed row keeps the committed row's commit, a rerun does not
    (its code may differ)."""
    import subprocess

    protocol = load_benchmark("ar2diff_protocol")
    results, work = tmp_path / "results", tmp_path / "work"
    results.mkdir()
    monkeypatch.setattr(protocol, "RESULTS", str(results))
    committed = {"device": "CPU", "rows": [
        json_row("squad", "AR", "greedy", "f1", 36.2, recorded_at="bd4c8da"),
        json_row("squad", "AR", "greedy", "exact_match", 29.0, recorded_at="bd4c8da"),
        json_row("squad", "AR2Diff_0", "paper", "f1", 25.2, commit="d2dac6e"),
        json_row("squad", "AR2Diff_0", "paper", "exact_match", 17.5, commit="d2dac6e")]}
    (results / "quality-smollm2-cpu.json").write_text(json.dumps(committed))
    for model, f1, seconds in (("AR", 36.2, 10.0), ("AR2Diff_0", 25.2, 11.0)):  # The second, a rerun.
        (work / model).mkdir(parents=True)
        (work / model / "row-x.json").write_text(json.dumps({
            "task": "squad", "model": model, "decoding": "greedy" if model == "AR" else "paper",
            "f1": f1 + 1e-4, "exact_match": 29.0 if model == "AR" else 17.5, "seconds": seconds}))
    rows = {r["model"]: r for r in protocol.evaluated_rows(protocol.parse_args(["--work-dir", str(work)]))}
    assert protocol.row_commit(rows["AR"]) == "<=bd4c8da"
    assert protocol.row_commit(rows["AR2Diff_0"]) == ""
    assert protocol.row_commit({"commit": "abc1234+", "recorded_at": "bd4c8da"}) == "abc1234+"

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(__file__)).stdout.strip()
    commit = protocol.current_commit()
    assert head and commit.rstrip("+") == head

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)  # A lent GPU machine's copy: no git.
    assert protocol.current_commit() == "unknown"
