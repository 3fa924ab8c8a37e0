"""Training step time on 1 device vs 8, data and model parallel (keras.distribution).

By default the 8 devices are *simulated* on this machine's CPU by XLA
(`--xla_force_host_platform_device_count=8`): they share the same cores, so
no speedup is expected. The table shows what the sharded program costs
(partitioning, collectives) on the same hardware, and that the same
training code runs unchanged; it is not a scaling result. On a TPU VM or a
multi-GPU host, `--real-devices` measures the devices that are there.

One worker process per device count (XLA reads the device count when it
starts); each times `train_on_batch` of a `DiffusionDecoder` on GPT-2
shapes (`keras_textdiff.quickstart.MODEL_SIZES`) with packed random tokens.
Writes `benchmarks/results/distribution-cpu.md` (or `-<platform>.md`).

    python benchmarks/distribution.py [--sizes tiny small] [--steps 10]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# Distributions timed on the many-device worker: (label, spec).
MANY = [("DataParallel", "data"), ("ModelParallel 2x4", "2x4")]


def worker(args):
    """Time every configuration on the devices of this process; print JSON."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import keras_hub
    import numpy as np

    import keras_textdiff as ktd
    from keras_textdiff.distribution import distributed
    from keras_textdiff.quickstart import gpt2_backbone

    devices = keras.distribution.list_devices()
    configs = [("one device", None)] if len(devices) == 1 else MANY
    rng = np.random.default_rng(0)
    length = args.sequence_length
    token_ids = rng.integers(0, args.vocabulary_size, (args.batch_size, length))
    x = {
        "token_ids": token_ids.astype("int32"),
        "padding_mask": np.ones((args.batch_size, length), "bool"),
        "target_mask": np.broadcast_to(np.arange(length) >= length // 2, token_ids.shape),
    }
    rows = []
    for size in args.sizes:
        for label, spec in configs:
            with distributed(spec, keras_hub.models.GPT2Backbone, args.batch_size):
                keras.utils.set_random_seed(0)
                backbone = gpt2_backbone(size, args.vocabulary_size, length)
                model = ktd.DiffusionDecoder(backbone, preprocessor=None)
                model.compile(optimizer=keras.optimizers.AdamW(1e-3))
                start = time.perf_counter()
                keras.Model.train_on_batch(model, x, token_ids)
                compile_seconds = time.perf_counter() - start
                keras.Model.train_on_batch(model, x, token_ids)
                times = []
                for _ in range(args.steps):
                    start = time.perf_counter()
                    loss = keras.Model.train_on_batch(model, x, token_ids)
                    times.append(time.perf_counter() - start)
            rows.append({
                "size": size,
                "parameters": int(backbone.count_params()),
                "devices": len(devices) if spec else 1,
                "distribution": label,
                "step_ms": 1000 * statistics.median(times),
                "compile_s": compile_seconds,
                "loss": float(np.asarray(loss).reshape(-1)[0]),
            })
    print(json.dumps({"platform": devices[0].split(":")[0], "rows": rows}))


def run_worker(args, device_count):
    env = dict(os.environ, KERAS_BACKEND="jax")
    if not args.real_devices:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={device_count}"
        )
        env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, os.path.abspath(__file__), "--worker", *_shared_flags(args)]
    if args.real_devices and device_count == 1:
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"Worker with {device_count} device(s) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _shared_flags(args):
    return [
        "--sizes", *args.sizes, "--steps", str(args.steps),
        "--batch-size", str(args.batch_size),
        "--sequence-length", str(args.sequence_length),
        "--vocabulary-size", str(args.vocabulary_size),
    ]


def table(rows):
    lines = [
        "| model | parameters | devices | distribution | step (ms, median) "
        "| vs one device | first step incl. compile (s) | loss |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    single = {r["size"]: r["step_ms"] for r in rows if r["devices"] == 1}
    for r in rows:
        ratio = r["step_ms"] / single[r["size"]] if r["size"] in single else float("nan")
        lines.append(
            f"| GPT-2 {r['size']} | {r['parameters']:,} | {r['devices']} | "
            f"{r['distribution']} | {r['step_ms']:.1f} | {ratio:.2f}x | "
            f"{r['compile_s']:.1f} | {r['loss']:.4f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--vocabulary-size", type=int, default=4096)
    parser.add_argument("--real-devices", action="store_true",
                        help="time the accelerators that are there, not simulated CPU devices")
    parser.add_argument(
        "--out", default=None,
        help="markdown file (default: benchmarks/results/distribution-<platform>.md)",
    )
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    single, many = run_worker(args, 1), run_worker(args, 8)
    rows = sorted(
        single["rows"] + many["rows"],
        key=lambda r: (args.sizes.index(r["size"]), r["devices"]),
    )
    kind = many["platform"]
    simulated = not args.real_devices
    title = (
        f"# Training step time, 1 vs {many['rows'][0]['devices']} devices"
        + (" (SIMULATED on one CPU)" if simulated else f" ({kind})")
    )
    notes = [
        title,
        "",
        f"`python benchmarks/distribution.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        f"on {platform.platform()}, {os.cpu_count()} CPU cores, "
        f"{time.strftime('%Y-%m-%d')}. DiffusionDecoder (SUNDAE loss, AdamW), "
        f"batch {args.batch_size} x {args.sequence_length} tokens, vocabulary "
        f"{args.vocabulary_size}; median of {args.steps} steps after two warm-up steps.",
        "",
    ]
    if simulated:
        notes += [
            "**A simulation:** the 8 devices are XLA host-platform devices "
            "(`--xla_force_host_platform_device_count=8`) sharing the same CPU "
            "cores as the one-device run, so no speedup is expected; the "
            "ratio is the overhead of the partitioned program (collectives, "
            "smaller per-device kernels). It shows that the same `fit()` code "
            "runs data- and model-parallel; the numbers say nothing about a "
            "TPU slice or a multi-GPU host (run with `--real-devices` there).",
            "",
        ]
    text = "\n".join(notes) + "\n" + table(rows) + "\n"
    print(text)
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results",
        f"distribution-{kind}.md",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
