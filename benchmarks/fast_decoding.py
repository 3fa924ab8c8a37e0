"""The quality cost of each fast decoding option, on small trained models.

Decodes the same translation test prompts with each `DiffusionSampler`
option and reports chrF/BLEU against the references, the model calls made
(what early stop and threshold decoding save), and the wall time:

- a uniform-noise model: the fine-tuned `translation-diffusion` preset of
  `benchmarks/quality.py` (run that first);
- a mask-noise model: the same pretrained backbone with a mask token added,
  fine-tuned here with `MaskNoise` for `--mask-steps` steps (resumable).

    python benchmarks/fast_decoding.py --data ../shared/data

Writes `benchmarks/results/fast-decoding-cpu.md` and a JSON next to it.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff import recipes  # noqa: E402
from results_files import cpu_description  # noqa: E402
from results_files import write_results  # noqa: E402
from keras_textdiff.ar2diff import with_mask_token  # noqa: E402
from keras_textdiff.data import load_task  # noqa: E402
from keras_textdiff.evaluation import metrics  # noqa: E402

# name -> DiffusionSampler options (num_samples=1 unless said).
UNIFORM_OPTIONS = {
    "paper: 10 steps, T 0.2, best of 8": dict(temperature=0.2, num_samples=8),
    "10 steps, T 0.2": dict(temperature=0.2),
    "10 steps, argmax": dict(temperature=0.0),
    "+ early stop": dict(temperature=0.0, early_stop=True),
    "+ prompt cache": dict(temperature=0.0, early_stop=True, cache=True),
    "argmax-unrolled, keep 0.5": dict(temperature=0.0, strategy="argmax_unrolled"),
    "blocks of 32, 4 steps each, cache": dict(
        temperature=0.0, num_steps=4, block_size=32, cache=True, early_stop=True
    ),
    # The fixed schedule that `benchmarks/speed.py` times on random weights.
    "blocks of 32, 4 steps each, cache, no early stop": dict(
        temperature=0.0, num_steps=4, block_size=32, cache=True
    ),
}
# The uniform model again, its weights cast to bfloat16 (what the PyTorch
# backend's CPU speed table runs): the cost of the dtype alone.
BFLOAT16_OPTIONS = {
    "10 steps, argmax": dict(temperature=0.0),
    "blocks of 32, 4 steps each, cache, no early stop": dict(
        temperature=0.0, num_steps=4, block_size=32, cache=True
    ),
}
MASK_OPTIONS = {
    "resample all, 10 steps": dict(temperature=0.0),
    "confidence, 10 steps": dict(temperature=0.0, strategy="confidence"),
    "entropy, 10 steps": dict(temperature=0.0, strategy="entropy"),
    "margin, 10 steps": dict(temperature=0.0, strategy="margin"),
    "confidence, 32 steps": dict(temperature=0.0, strategy="confidence", num_steps=32),
    "threshold 0.9 (<= 64 steps)": dict(
        temperature=0.0, strategy="threshold", threshold=0.9, num_steps=64
    ),
    "threshold 0.9, blocks of 32, cache": dict(
        temperature=0.0, strategy="threshold", threshold=0.9, num_steps=32,
        block_size=32, cache=True,
    ),
}


def mask_model(pretrained, data, run_dir, steps, batch_size, length):
    """The pretrained diffusion backbone + a mask token, fine-tuned with
    `MaskNoise` on the translation training split (a resumable run)."""
    base = recipes.load_model(pretrained)
    backbone, mask_id = with_mask_token(base.backbone)
    preprocessor = base.preprocessor
    preprocessor.sequence_length = length
    model = ktd.DiffusionDecoder(
        backbone, preprocessor, noise=ktd.MaskNoise(mask_id, seed=0)
    )
    config = {"command": "fast_decoding mask fine-tune", "preset": pretrained,
              "steps": steps, "batch_size": batch_size, "sequence_length": length}
    run = recipes.RunDirectory(run_dir, config)
    recipes._compile(model, 1e-3)
    examples = load_task("translation", data, "train")
    dataset = recipes.pair_dataset(model, examples, batch_size, seed=0)
    recipes.train(model, dataset, steps, run, checkpoint_every=100, verbose=2)
    return model


def decode_all(model, examples, options, length, batch_size=8):
    """Translations, mean model calls per batch, and seconds."""
    options = {"num_steps": 10, "num_samples": 1, "seed": 0, **options}
    model.compile(sampler=ktd.DiffusionSampler(**options))
    prompts = [e["prefix"] for e in examples]
    # Compile on the first batch, outside the timing.
    model.generate(model.preprocessor.generate_preprocess(prompts[:batch_size], length))
    texts, passes, seconds = [], [], 0.0
    for i in range(0, len(prompts), batch_size):
        batch = model.preprocessor.generate_preprocess(prompts[i : i + batch_size], length)
        start = time.perf_counter()
        out = model.generate(batch)
        seconds += time.perf_counter() - start
        passes.append(int(out["num_forward_passes"][0]))
        texts += model.preprocessor.generate_postprocess(out, strip_prompt=True)
    return texts, float(np.mean(passes)), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--quality-dir", default="benchmarks/runs/quality")
    parser.add_argument("--work-dir", default="benchmarks/runs/fast-decoding")
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--mask-steps", type=int, default=300)
    parser.add_argument("--sequence-length", type=int, default=192)
    args = parser.parse_args()
    data = os.path.join(args.data, "bible_en_fr")
    uniform_preset = os.path.join(args.quality_dir, "translation-diffusion", "preset")
    uniform = recipes.load_model(uniform_preset)
    uniform_bf16 = ktd.DiffusionDecoder.from_preset(uniform_preset, dtype="bfloat16")
    length = args.sequence_length
    examples = uniform.preprocessor.fitting_pairs(load_task("translation", data, "test"))
    examples = examples[: args.examples]
    references = [e["target"] for e in examples]
    masked = mask_model(
        os.path.join(args.quality_dir, "pretrain-diffusion", "preset"), data,
        os.path.join(args.work_dir, "mask-finetune"), args.mask_steps, 8, length,
    )

    rows = []
    for noise, model, table in (("uniform", uniform, UNIFORM_OPTIONS),
                                ("uniform, bfloat16", uniform_bf16, BFLOAT16_OPTIONS),
                                ("mask", masked, MASK_OPTIONS)):
        for name, options in table.items():
            texts, passes, seconds = decode_all(model, examples, options, length)
            row = {
                "noise": noise, "decoding": name, "options": options,
                "chrf": round(metrics.chrf(texts, references), 2),
                "bleu": round(metrics.bleu(texts, references), 2),
                "model_calls": round(passes, 1), "seconds": round(seconds, 2),
                "example": texts[0][:60],
            }
            print(row)
            rows.append(row)

    lines = [
        "# Fast decoding options: quality cost on small trained models",
        "",
        f"Device: {cpu_description()}, JAX. Task: English -> French, the first "
        f"{len(examples)} test verses that fit {length} tokens, batch 8.",
        "Models: tiny GPT-2 shape (2 layers, 128 wide) of `benchmarks/quality.py`;"
        " uniform noise = its fine-tuned translation diffusion model; mask "
        f"noise = its pretrained backbone + a mask token, fine-tuned "
        f"{args.mask_steps} steps with `MaskNoise`.",
        "Model calls: forward passes per batch (full or window), the work that "
        "early stop and threshold decoding save. Seconds: all batches, compile "
        "excluded.",
        "",
        "| noise | decoding | chrF | BLEU | model calls | seconds |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['noise']} | {r['decoding']} | {r['chrf']} | {r['bleu']} | "
        f"{r['model_calls']} | {r['seconds']} |"
        for r in rows
    ]
    write_results("fast-decoding-cpu", args, rows, lines)


if __name__ == "__main__":
    main()
