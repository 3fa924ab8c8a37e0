"""The paper's protocol (`ar2diff_protocol.py`) on a lent GPU, in three steps.

The GPU machine has neither TensorFlow (which tokenizes text here) nor the
data, and a device command carries at most 64 MiB: so this machine packs
everything as token ids first, the GPU only trains and decodes ids, and
this machine scores what comes back.

1. `export` (here): the training batches of every stage, exactly as the CPU
   protocol makes them (`to_dataset`, `recipes.pair_dataset`, `text_dataset`
   over the adaptation corpus) but with the GPU's budget; the test prompts,
   packed; the stop ids; and SmolLM2's GGUF file cut into parts that fit a
   device command. Into `--export-dir` (`.gpu_quality/`).
2. `run` (GPU, `scripts/gpu_quality.sh`): builds the model from the GGUF
   file alone (`load_gguf_backbone`), fine-tunes and decodes the rows in
   order of importance (AR, AR2Diff_0, the adaptation, AR2Diff_N for the
   largest N, then the smaller ones), skips what would not finish inside
   `--max-minutes`, and writes the decoded ids after every row.
3. `score` (here): detokenizes with the same preprocessors, scores as the
   CPU protocol does and writes
   `benchmarks/results/quality-smollm2-<gpu>.{md,json,png}`.

    python benchmarks/ar2diff_gpu.py export --data ../shared/data
    # device tool: see scripts/gpu_quality.sh
    python benchmarks/ar2diff_gpu.py score --outputs FOLDER_WITH_outputs.npz

Budget flags are the CPU protocol's (`ar2diff_protocol.py --help`), with
GPU defaults: the CPU's best recipe (every weight trained at 1e-4, blocks of
8: rows `AR-full-lr0.0001`, `AR2Diff_N-block8-full-lr0.0001`) with 400
fine-tuning steps of batch 32, N = 250 and 1000, and the decoders
`threshold-ordered-block8` and `paper-block8` (best of 8; each decoder after
the first only while time is left), 40 questions a batch.
"""

import argparse
import glob
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ar2diff_protocol as protocol  # noqa: E402  (sets KERAS_BACKEND=jax)
from keras_textdiff.checkpoints.smollm2 import smollm2_gguf_path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from keras_textdiff.lora import merge_lora  # noqa: E402

# The CPU protocol's best recipe (full weights at 1e-4, blocks of 8) with a
# larger budget; --lora-rank 16 --learning-rate 5e-4 gives its LoRA rows.
GPU_DEFAULTS = ["--finetune-steps", "400", "--batch-size", "32", "--adapt-steps", "250,1000",
                "--block-size", "8", "--lora-rank", "0", "--learning-rate", "1e-4",
                "--decoders", "threshold-ordered-block8,paper-block8", "--eval-batch-size", "40"]
PART_BYTES = 40 * 2**20  # GGUF parts: each fits a device command beside the rest.


# --- compact arrays --------------------------------------------------------------


def _compact(arrays):
    """`(stored, layout)`: 0/1 arrays as bits, small ints as uint16, an array
    equal to an earlier one by reference. The token ids of a few thousand
    batches then fit a device command."""
    stored, layout = {}, {}
    for name, a in arrays.items():
        a = np.asarray(a)
        same = next((k for k, v in arrays.items() if k in layout and "same_as" not in layout[k]
                     and v.shape == a.shape and np.array_equal(v, a)), None)
        if same:
            layout[name] = {"same_as": same}
        elif a.size and ((a == 0) | (a == 1)).all():
            stored[name] = np.packbits(a.astype(bool).ravel())
            layout[name] = {"bits": list(a.shape), "dtype": str(a.dtype)}
        elif np.issubdtype(a.dtype, np.integer) and a.min() >= 0 and a.max() < 2**16:
            stored[name] = a.astype(np.uint16)
            layout[name] = {"dtype": str(a.dtype)}
        else:
            stored[name] = a
            layout[name] = {"dtype": str(a.dtype)}
    return stored, layout


def _expand(stored, layout):
    arrays = {}
    for name, how in layout.items():
        if "bits" in how:
            shape = tuple(how["bits"])
            bits = np.unpackbits(stored[name], count=int(np.prod(shape)))
            arrays[name] = bits.reshape(shape).astype(how["dtype"])
        elif "dtype" in how:
            arrays[name] = np.asarray(stored[name]).astype(how["dtype"])
    for name, how in layout.items():
        if "same_as" in how:
            arrays[name] = arrays[how["same_as"]]
    return arrays


def _batches(dataset, steps):
    """`steps` batches of a `(x, y[, sample_weight])` dataset as arrays
    `{"x/<key>", "y", "sample_weight"}`, one row per example."""
    parts = {}
    for element in dataset.take(steps).as_numpy_iterator():
        x, y, *rest = element
        named = {**{f"x/{k}": v for k, v in x.items()}, "y": y}
        if rest:
            named["sample_weight"] = rest[0]
        for k, v in named.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- export (here) ---------------------------------------------------------------


def export(args, export_dir):
    """Pack every stage's data, the test prompts and the weights."""
    from keras_textdiff.data import text_dataset
    from keras_textdiff.data import to_dataset
    from keras_textdiff.evaluation.evaluate import end_token_ids

    keras.utils.set_random_seed(args.seed)
    preset = protocol.smollm2_preset(args.work_dir)
    train_examples, _, fits = protocol.task_data(args, preset)
    test = fits[: args.eval_examples]
    ar = protocol.load_ar_model(preset, args)
    diffusion = protocol.diffusion_model(ar, args)
    B = args.batch_size
    print(f"Packing {args.finetune_steps} fine-tuning batches of {B} (AR and diffusion)...")
    arrays = {
        **{f"ar/{k}": v for k, v in _batches(
            protocol.recipes.pair_dataset(ar, train_examples, B, args.seed), args.finetune_steps).items()},
        **{f"finetune/{k}": v for k, v in _batches(
            to_dataset(train_examples, diffusion.preprocessor, B, seed=args.seed, repeat=True),
            args.finetune_steps).items()},
    }
    adapt_steps = sorted(int(n) for n in args.adapt_steps.split(",") if int(n) > 0)
    if adapt_steps:
        print(f"Packing {adapt_steps[-1]} adaptation batches...")
        corpus = protocol.adaptation_corpus(args.data, protocol.squad_training(args), 20000)
        dataset = text_dataset(corpus, diffusion.preprocessor, B, seed=args.seed, repeat=True)
        arrays.update({f"adapt/{k}": v for k, v in _batches(dataset, adapt_steps[-1]).items()})
    # Test prompts in the CPU protocol's order (by length), padded to one
    # length: one compiled decoding function per row.
    order = sorted(range(len(test)), key=lambda i: len(test[i]["prefix"]))
    prompts = [test[i]["prefix"] for i in order]
    packed = diffusion.preprocessor.generate_preprocess(prompts, sequence_length=args.test_length)
    arrays.update({f"test/diffusion/{k}": keras.ops.convert_to_numpy(v) for k, v in packed.items()})
    packed = ar.preprocessor.generate_preprocess([p + "\n" for p in prompts], sequence_length=args.test_length)
    arrays.update({f"test/ar/{k}": keras.ops.convert_to_numpy(v) for k, v in packed.items()})

    os.makedirs(export_dir, exist_ok=True)
    stored, layout = _compact(arrays)
    np.savez_compressed(os.path.join(export_dir, "data.npz"), **{k.replace("/", "|"): v for k, v in stored.items()})
    gguf = smollm2_gguf_path(required=True)
    for old in glob.glob(os.path.join(export_dir, "gguf.part*")):
        os.remove(old)
    with open(gguf, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(PART_BYTES), b"")):
            with open(os.path.join(export_dir, f"gguf.part{i}"), "wb") as part:
                part.write(block)
    meta = {
        "args": vars(args), "layout": layout, "order": order,
        "command": " ".join(["python", *sys.argv]),
        "adapt_steps": adapt_steps,
        "diffusion_stop_ids": [int(i) for i in diffusion.preprocessor.stop_token_ids],
        "ar_stop_ids": [int(i) for i in end_token_ids(ar.preprocessor.tokenizer)],
        "gguf": {"name": os.path.basename(gguf), "sha256": _sha256(gguf), "parts": i + 1},
    }
    with open(os.path.join(export_dir, "meta.json"), "w") as f:
        json.dump(meta, f)
    sizes = {os.path.basename(p): os.path.getsize(p) for p in glob.glob(os.path.join(export_dir, "*"))}
    print(json.dumps(sizes, indent=1))
    return meta


# --- run (GPU) ---------------------------------------------------------------------


class _Run:
    """The GPU's rows, in order of importance, inside a time budget."""

    def __init__(self, export_dir, out_dir, max_minutes):
        with open(os.path.join(export_dir, "meta.json")) as f:
            self.meta = json.load(f)
        self.args = argparse.Namespace(**self.meta["args"])
        with np.load(os.path.join(export_dir, "data.npz")) as stored:
            stored = {k.replace("|", "/"): stored[k] for k in stored.files}
        self.data = _expand(stored, self.meta["layout"])
        self.out_dir = out_dir
        self.deadline = time.time() + 60 * max_minutes
        self.report = {"device": protocol.device_name(), "backend": keras.backend.backend(),
                       "stages": {}, "skipped": []}
        self.outputs = {}
        gguf = os.path.join(export_dir, self.meta["gguf"]["name"])
        _join_parts(export_dir, gguf, self.meta["gguf"])
        start = time.time()
        self.backbone = ktd.checkpoints.load_gguf_backbone(gguf)
        self.report["load_seconds"] = time.time() - start

    def arrays(self, prefix):
        """`(x, y, sample_weight)` of a stage, one row per example."""
        x = {k[len(prefix) + 3:]: v for k, v in self.data.items() if k.startswith(prefix + "/x/")}
        return x, self.data[prefix + "/y"], self.data.get(prefix + "/sample_weight")

    def fit(self, model, prefix, name, first=0, steps=None):
        """Train on batches `first`..`first + steps` of a stage's data."""
        B = self.args.batch_size
        x, y, sw = self.arrays(prefix)
        steps = steps or len(y) // B - first
        rows = slice(first * B, (first + steps) * B)
        start = time.time()
        history = keras.Model.fit(
            model, {k: v[rows] for k, v in x.items()}, y[rows],
            sample_weight=None if sw is None else sw[rows],
            batch_size=B, epochs=1, shuffle=False, verbose=2,
        )
        self.report["stages"][name] = {
            "steps": steps, "seconds": time.time() - start,
            "loss": float(history.history["loss"][-1]),
        }

    def row_name(self, n, diffusion=True):
        """The row's name (as the CPU protocol names it), its N recorded for `score`."""
        name = protocol.row_name(self.args, n, diffusion)
        self.report.setdefault("adapt_steps", {})[name] = n
        return name

    def time_left(self, need):
        return time.time() + need < self.deadline

    def ar_model(self):
        from keras_textdiff.ar2diff import copy_backbone
        from keras_textdiff.checkpoints.gguf import GGUFLlamaCausalLM

        return GGUFLlamaCausalLM(backbone=copy_backbone(self.backbone), preprocessor=None)

    def diffusion(self, weights=None, compile=True):
        """A freshly converted model (weights: a merged adaptation's), LoRA on."""
        from keras_textdiff.checkpoints.gguf import GGUFLlamaCausalLM

        model = protocol.diffusion_model(GGUFLlamaCausalLM(backbone=self.backbone, preprocessor=None), self.args)
        if weights is not None:
            for variable, value in zip(model.weights, weights, strict=True):
                variable.assign(value)
        protocol.enable_lora(model, self.args)
        if compile:
            protocol.recipes._compile(model, self.args.learning_rate)
        return model

    def decode_ar(self, model, name):
        model.compile(sampler="greedy")
        start = time.time()
        packed = {k: self.data[f"test/ar/{k}"] for k in ("token_ids", "padding_mask")}
        out = model.generate(packed, stop_token_ids=self.meta["ar_stop_ids"], strip_prompt=True)
        self.save(name, "greedy", out, time.time() - start)

    def decode_diffusion(self, model, name):
        first = None
        for decoding in self.args.decoders.split(","):
            if first is not None and not self.time_left(2 * first):
                self.skip(f"{name} decoded with {decoding}")
                continue
            config = protocol.decoder_config(decoding, self.args.target_length)
            model.compile(sampler=ktd.DiffusionSampler(seed=self.args.seed, **config))
            batch = self.args.eval_batch_size  # (The CPU decodes best-of-8 one prompt at a time.)
            packed = {k: self.data[f"test/diffusion/{k}"] for k in ("token_ids", "padding_mask", "target_mask")}
            start, parts = time.time(), []
            for i in range(0, len(packed["token_ids"]), batch):
                parts.append(model.generate({k: v[i : i + batch] for k, v in packed.items()},
                                            stop_token_ids=self.meta["diffusion_stop_ids"]))
            out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self.save(name, decoding, out, time.time() - start)
            first = first or time.time() - start

    def save(self, name, decoding, out, seconds):
        for k, v in out.items():
            self.outputs[f"{name}|{decoding}|{k}"] = np.asarray(v)
        self.report["stages"][f"{name} decode {decoding}"] = {"seconds": seconds}
        np.savez_compressed(os.path.join(self.out_dir, "outputs.npz"), **self.outputs)
        self.write_report()

    def write_report(self):
        with open(os.path.join(self.out_dir, "gpu_run.json"), "w") as f:
            json.dump(self.report, f, indent=1)

    def skip(self, what):
        print(f"Skipped (time): {what}")
        self.report["skipped"].append(what)
        self.write_report()

    def run(self):
        budget = {}  # Seconds a stage took: what the next one like it needs.
        start = time.time()
        model, name = self.ar_model(), self.row_name(0, diffusion=False)
        protocol.enable_lora(model, self.args)
        protocol.recipes._compile(model, self.args.learning_rate)
        self.fit(model, "ar", f"{name} finetune")
        self.decode_ar(model, name)
        budget["row"] = time.time() - start
        del model

        start = time.time()
        model, name = self.diffusion(), self.row_name(0)
        self.fit(model, "finetune", f"{name} finetune")
        self.decode_diffusion(model, name)
        budget["row"] = max(budget["row"], time.time() - start)
        del model

        adapt_steps = self.meta["adapt_steps"]
        if not adapt_steps:
            return
        per_step = self.report["stages"][f"{name} finetune"]["seconds"] / self.args.finetune_steps
        if not self.time_left(per_step * adapt_steps[-1] + budget["row"]):
            return self.skip(f"adaptation to {adapt_steps[-1]} steps and its rows")
        model = self.diffusion()
        snapshots, done = {}, 0
        for n in adapt_steps:  # One run, snapshots at each N (constant rate).
            self.fit(model, "adapt", f"adapt {done}-{n}", first=done, steps=n - done)
            snapshots[n], done = self.merged(model), n
        del model
        for n in reversed(adapt_steps):  # The largest N first: the paper's best row.
            name = self.row_name(n)
            if not self.time_left(budget["row"]):
                self.skip(name)
                continue
            model = self.diffusion(snapshots.pop(n))
            self.fit(model, "finetune", f"{name} finetune")
            self.decode_diffusion(model, name)
            del model

    def merged(self, model):
        """The model's weights with LoRA folded in, as a model without LoRA
        holds them (what the CPU protocol's adapted preset holds), from a
        twin built the same way (variable order, not names, matches)."""
        twin = self.diffusion(compile=False)
        for variable, value in zip(twin.weights, model.weights, strict=True):
            variable.assign(keras.ops.convert_to_numpy(value))
        merge_lora(twin.backbone)
        return [keras.ops.convert_to_numpy(v) for v in twin.weights if "lora" not in v.path]


def _join_parts(folder, path, info):
    """Reassemble the GGUF file from its parts, checking its digest."""
    path = os.fspath(path)
    if not (os.path.exists(path) and _sha256(path) == info["sha256"]):
        with open(path + ".tmp", "wb") as f:
            for i in range(info["parts"]):
                with open(os.path.join(folder, f"gguf.part{i}"), "rb") as part:
                    f.write(part.read())
        if _sha256(path + ".tmp") != info["sha256"]:
            os.remove(path + ".tmp")
            sys.exit(f"{path}: the joined parts do not match the exported file's sha256; "
                     "export again and carry every part.")
        os.replace(path + ".tmp", path)


# --- score (here) ------------------------------------------------------------------


def score(export_dir, outputs_dir, runs_dir):
    """Detokenize and score the GPU's outputs; write the results files."""
    from keras_textdiff.evaluation.evaluate import _cut_at

    with open(os.path.join(export_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(outputs_dir, "gpu_run.json")) as f:
        report = json.load(f)
    args = argparse.Namespace(**meta["args"])
    preset = protocol.smollm2_preset(args.work_dir)
    _, _, fits = protocol.task_data(args, preset)
    test = fits[: args.eval_examples]
    ar = protocol.load_ar_model(preset, args)
    preprocessor = protocol.diffusion_model(ar, args).preprocessor
    ends = [ar.preprocessor.tokenizer.id_to_token(i) for i in meta["ar_stop_ids"]]
    with np.load(os.path.join(outputs_dir, "outputs.npz")) as saved:
        outputs = {k: saved[k] for k in saved.files}
    stages = report["stages"]
    rows = []
    for name, decoding in sorted({tuple(k.split("|")[:2]) for k in outputs}):
        out = {k.split("|")[2]: v for k, v in outputs.items() if k.startswith(f"{name}|{decoding}|")}
        ar_row = protocol.is_ar({"model": name})
        if ar_row:  # At most target_length tokens, as the CPU rows.
            out["padding_mask"] = out["padding_mask"] & (np.cumsum(out["padding_mask"], axis=1)
                                                         <= args.target_length)
            texts = [_cut_at(t, ends) for t in ar.preprocessor.generate_postprocess(out)]
            calls = own = None
        else:
            texts = preprocessor.generate_postprocess(out, strip_prompt=True)
            calls = float(np.mean(out["num_forward_passes"]))
            own = float(np.mean(out["row_forward_passes"])) if "row_forward_passes" in out else None
        raw = [None] * len(test)
        for i, text in zip(meta["order"], texts):
            raw[i] = text
        predictions = [protocol.clean(o, args.task) for o in raw]
        scores = protocol.score(args.task, predictions, test)
        row = {
            "task": args.task, "base": "smollm2-135m", "model": name, "decoding": decoding,
            **{m: scores[m] for m in protocol.TASKS[args.task]["metrics"]},
            "examples": len(test), "finetune_steps": args.finetune_steps,
            "adapt_steps": report["adapt_steps"][name],
            "seconds": round(stages[f"{name} decode {decoding}"]["seconds"], 1), "model_calls": calls,
            "calls_per_question": own, "train_seconds": stages[f"{name} finetune"]["seconds"],
            "final_loss": stages[f"{name} finetune"]["loss"],
            "command": f"{meta.get('command', 'ar2diff_gpu.py export')}; bash scripts/gpu_quality.sh; "
                       "python benchmarks/ar2diff_gpu.py score",
        }
        rows.append(row)
        folder = os.path.join(runs_dir, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"eval-{decoding}.json"), "w") as f:
            json.dump({**row, "predictions": [
                {"id": e.get("id", e.get("task_id")), "prediction": p, "raw": o}
                for e, p, o in zip(test, predictions, raw)]}, f, indent=1)
        print(f"{name} {decoding}: {protocol.format_scores(args.task, scores)}")
        for p, e in list(zip(predictions, test))[:5]:
            print(f"  {p!r}  <- {e.get('answers', e['target'])!r:.200}")
    adapt = [f"{k} {v['seconds']:.0f} s (loss {v['loss']:.2f})" for k, v in stages.items()
             if k.startswith("adapt ")]
    notes = [
        f"Run on {report['device']} ({report['backend']}, float32) by "
        "`scripts/gpu_quality.sh`: the training batches and test prompts were packed on the CPU "
        "(`ar2diff_gpu.py export`, the CPU protocol's own datasets), the GPU trained and decoded "
        "token ids, and the CPU scored the outputs (`ar2diff_gpu.py score`). Seconds include "
        "compiling. Loading the GGUF file took " f"{report['load_seconds']:.0f} s"
        + (f"; the adaptation took {'; '.join(adapt)}" if adapt else "") + "."
        + (f" Skipped for time: {', '.join(report['skipped'])}." if report["skipped"] else ""),
    ]
    # A run on a CPU is a check of this path: its files stay beside the rows.
    folder = runs_dir if report["device"].startswith("CPU") else None
    stem = protocol.write_results(rows, args, device=report["device"], notes=notes, folder=folder)
    print(f"Wrote {stem}.md, .json and .png")
    return stem


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["export", "run", "score"])
    parser.add_argument("--export-dir", default=".gpu_quality",
                        help="what export writes and run reads")
    parser.add_argument("--out", default=None,
                        help="run: where outputs go ($OUT, else --export-dir); "
                             "score: the folder holding outputs.npz and gpu_run.json")
    parser.add_argument("--max-minutes", type=float, default=7.5,
                        help="run: start no stage that would end later")
    parser.add_argument("--runs-dir", default="benchmarks/runs/ar2diff_gpu",
                        help="score: where each row's predictions are kept")
    args, rest = parser.parse_known_args(argv)
    if args.step == "export":
        protocol_args = protocol.parse_args(GPU_DEFAULTS + rest)
        # The CPU protocol's adaptation variants: this path packs neither.
        if protocol_args.adapt_corpus != "mixed" or protocol_args.adapt_learning_rate is not None:
            parser.error("export adapts on the corpus as it is, at --learning-rate: "
                         "--adapt-corpus and --adapt-learning-rate are the CPU protocol's only")
        export(protocol_args, args.export_dir)
    elif args.step == "run":
        if rest:
            parser.error(f"run takes its budget from the export; unexpected: {' '.join(rest)}")
        out = args.out or os.environ.get("OUT") or args.export_dir
        os.makedirs(out, exist_ok=True)
        _Run(args.export_dir, out, args.max_minutes).run()
    else:
        score(args.export_dir, args.out or args.export_dir, args.runs_dir)


if __name__ == "__main__":
    main()
