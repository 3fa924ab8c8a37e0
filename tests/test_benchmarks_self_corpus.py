"""`benchmarks/self_corpus.py`: the AR model's own continuations, as
adaptation examples that a diffusion preprocessor at the same lengths packs
whole, cached and resumed."""

import json

import keras_textdiff as ktd
from benchmark_modules import load_benchmark
from tiny_models import TEXT
from tiny_models import tiny_causal_lm

SEQUENCE, TARGET = 48, 8


def test_continuations_fit_the_adaptation_and_resume_from_the_cache(tmp_path, monkeypatch):
    self_corpus = load_benchmark("self_corpus")
    ar = tiny_causal_lm("llama", sequence_length=64)
    preset = str(tmp_path / "ar")
    ar.save_to_preset(preset)
    texts = [" ".join(TEXT) * 3]  # Long enough for any prefix.
    tokenizer = ar.preprocessor.tokenizer
    assert len(tokenizer(texts[0])) > SEQUENCE

    monkeypatch.setattr(self_corpus, "BATCH", 3)
    examples = self_corpus.self_corpus(texts, preset, 5, SEQUENCE, TARGET, str(tmp_path), seed=1)
    assert len(examples) == 5
    for e in examples:
        assert e["prefix"] in texts[0]  # A window of the text...
        assert 16 <= len(tokenizer(e["prefix"])) <= SEQUENCE - TARGET - 2
        assert len(tokenizer(e["target"])) <= TARGET - 1  # ...and the end token's room left.
    # Every example is packed whole by the diffusion model the adaptation trains.
    model = ktd.AR2DiffConverter(target_length=TARGET, sequence_length=SEQUENCE).convert(
        tiny_causal_lm("llama", sequence_length=64))
    assert model.preprocessor.fitting_pairs(examples) == examples

    # Cut off after its first batch: the cache keeps it, the rest is written on.
    path = tmp_path / "self_corpus-5-seed1.json"
    path.write_text(json.dumps(examples[:3]))
    calls = []
    complete = self_corpus.complete
    monkeypatch.setattr(self_corpus, "complete", lambda *a, **k: calls.append(a[1]) or complete(*a, **k))
    again = self_corpus.self_corpus(texts, preset, 5, SEQUENCE, TARGET, str(tmp_path), seed=1)
    assert again[:3] == examples[:3] and len(again) == 5
    assert calls == [[e["prefix"] for e in examples[3:]]]  # Only the missing prompts.
    assert self_corpus.self_corpus(texts, preset, 5, SEQUENCE, TARGET, str(tmp_path), seed=1) == again
    assert len(calls) == 1  # All cached: nothing generated.
