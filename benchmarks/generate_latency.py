"""Latency of `DiffusionDecoder.generate` for a fixed number of target tokens.

Usage: python benchmarks/generate_latency.py [--target-tokens 128] [--steps 10]
Prints a table and writes benchmarks/results/generate-latency-<backend>.md.
"""

import argparse
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.quickstart import MODEL_SIZES  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "Ġ": 4}
    tokenizer = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=vocab, merges=["a b"])
    prompt = "ab" * 8  # 8 tokens
    length = 1 + 8 + 1 + args.target_tokens
    rows = []
    for size in args.sizes.split(","):
        layers, heads, hidden, intermediate = MODEL_SIZES[size]
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=2048, num_layers=layers, num_heads=heads,
            hidden_dim=hidden, intermediate_dim=intermediate,
            max_sequence_length=length,
        )
        model = ktd.DiffusionDecoder(backbone, ktd.DiffusionPreprocessor(tokenizer, length))
        for samples in (1, 8):
            model.compile(sampler=ktd.DiffusionSampler(num_steps=args.steps, num_samples=samples, seed=0))
            start = time.time()
            model.generate([prompt])
            compile_s = time.time() - start
            times = []
            for _ in range(args.repeats):
                start = time.time()
                model.generate([prompt])
                times.append(time.time() - start)
            rows.append((size, model.count_params(), samples, compile_s, float(np.median(times))))
    header = (
        f"generate() latency, batch 1, {args.target_tokens} target tokens, "
        f"{args.steps} steps, backend {keras.config.backend()}, "
        f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}\n\n"
        "| model | params | samples | first call (s, compile) | median (s) |\n|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {s} | {p:,} | {n} | {c:.2f} | {m:.3f} |\n" for s, p, n, c, m in rows
    )
    print(table)
    os.makedirs("benchmarks/results", exist_ok=True)
    with open(f"benchmarks/results/generate-latency-{keras.config.backend()}.md", "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
