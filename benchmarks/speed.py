"""Decoding speed: diffusion decoding against two autoregressive (AR) peers.

For GPT-2 and Llama shapes of several sizes this times, on the same
`[batch, 16 + n]` token shapes:

- `keras-hub`: keras-hub `CausalLM.generate` (KV-cached, greedy sampler,
  `preprocessor=None`, packed `{"token_ids", "padding_mask"}` input,
  `stop_token_ids=None`, so it always writes all `n` tokens);
- `transformers`: Hugging Face `generate` (PyTorch, greedy, dynamic KV cache,
  `min_new_tokens = max_new_tokens = n`); skipped, with the reason printed,
  when torch or transformers is missing;
- `diffusion`: `keras_textdiff.DiffusionDecoder(backbone).generate(packed)`
  with `DiffusionSampler(num_steps=S, num_samples=1, temperature=0.0,
  seed=0, **options)`, the target being the `n` positions after the prompt;
- `forward`: one jit-compiled forward pass of the same backbone over the same
  `[batch, 16 + n]` tokens, with the LM head (the logits a plain step computes,
  in the compute dtype) and without, so the table can state the loop
  overhead: diffusion time per step / forward.

Weights are random (speed does not depend on them); the prompt is 16 random
token ids; no tokenizer is involved (no TensorFlow needed). Each cell is
called once first (the "first call", compilation included; `compile` is
first call minus median), then timed `--repeats` times, fewer when the
runs would overrun `--cell-budget` seconds (the tables show the run count).
Peak memory: on CPU the growth of this process's resident memory (RSS,
sampled every 5 ms in a thread) over the timed runs, on GPU the device
memory in use (JAX `memory_stats()`, `torch.cuda.max_memory_allocated`)
above what was in use before them.

The diffusion side and the keras-hub peer run on the Keras backend of the
process: JAX (the default) or PyTorch (`KERAS_BACKEND=torch`; eager, no
compilation, `torch.nn.functional.scaled_dot_product_attention`). On a CPU
with bfloat16 matrix units (Intel AMX), PyTorch's bfloat16 matmuls are
several times faster than XLA's, which has no AMX kernels: a compute-bound
denoising step gains from them, an AR token (memory- and overhead-bound at
batch 1) does not. Results files carry the backend and dtype in their name
when they are not the device's defaults (`speed-cpu-torch-bfloat16.md`).

Usage (run from the repository root):

    python benchmarks/speed.py                       # the defaults below
    python benchmarks/speed.py --quick               # tiny model, a smoke run
    python benchmarks/speed.py --sizes 45m,125m --lengths 128,256,512,1024 \\
        --batch-sizes 1,8 --steps 10,20,50 --shapes gpt2,llama
    python benchmarks/speed.py --options cache='{"cache": true}'
    KERAS_BACKEND=torch python benchmarks/speed.py --dtype bfloat16 \\
        --peer-dtype float32 --lengths 128,256,512,1024 --peers transformers
    python benchmarks/speed.py --render benchmarks/results/speed-cpu.json

Defaults on CPU: GPT-2 shape, ~125M parameters, batch 1, lengths 512 and
1024, 10 steps, both AR peers, 5 repeats, 150 s per cell: the issue's
headline comparison, about 20 minutes on 2 idle cores (keras-hub's AR
generate alone takes about 2 minutes per 1,024-token call there). On a GPU:
GPT-2 and Llama shapes, ~125M, batch 1, lengths 128 to 4096, 10/20/50 steps,
bfloat16, 20 s per cell (`scripts/gpu_speed.sh`).

Writes `benchmarks/results/speed-<device>.md` (the tables), `.json` (every
measurement) and `.png` (speed-up over the faster AR peer against output
length, one line per step count, like the paper's Figure 3), rewritten
after every cell so an interrupted run keeps what it measured. `--render`
rewrites the `.md` and `.png` of a results JSON without measuring again.
"""

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
import types

os.environ.setdefault("KERAS_BACKEND", "jax")
# JAX and PyTorch share the GPU: let JAX take memory as it needs it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from results_files import current_commit  # noqa: E402
from keras_textdiff import attention as attention_lib  # noqa: E402
from keras_textdiff.kv_cache import WindowedLogits  # noqa: E402

BACKEND = keras.config.backend()
if BACKEND == "jax":
    import jax
else:
    jax = None
PROMPT_LENGTH = 16
AR_PEERS = ("keras-hub", "transformers")


@dataclasses.dataclass(frozen=True)
class Size:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocabulary: int


# GPT-2 sizes use GPT-2's vocabulary; "125m" is GPT-2 small. Llama sizes use
# SmolLM2's vocabulary and tied embeddings; "125m" is SmolLM2-135M's shape.
SIZES = {
    "gpt2": {
        "tiny": Size(2, 128, 2, 2, 512, 50257),
        "45m": Size(6, 512, 8, 8, 2048, 50257),
        "125m": Size(12, 768, 12, 12, 3072, 50257),
    },
    "llama": {
        "tiny": Size(2, 128, 4, 2, 384, 49152),
        "45m": Size(6, 512, 8, 4, 1408, 49152),
        "125m": Size(30, 576, 9, 3, 1536, 49152),
    },
}

CPU_DEFAULTS = dict(
    shapes="gpt2", sizes="125m", lengths="512,1024", batch_sizes="1",
    steps="10", repeats=5, cell_budget=150.0, dtype="float32",
)
GPU_DEFAULTS = dict(
    shapes="gpt2,llama", sizes="125m", lengths="128,256,512,1024,2048,4096",
    batch_sizes="1", steps="10,20,50", repeats=5, cell_budget=20.0,
    dtype="bfloat16",
)
QUICK = dict(sizes="tiny", lengths="64", batch_sizes="1", steps="10",
             repeats=2, cell_budget=20.0)


# --- the device --------------------------------------------------------------


def on_gpu():
    if jax is not None:
        return jax.default_backend() in ("gpu", "cuda", "rocm")
    import torch

    return torch.cuda.is_available()


def describe_device():
    """(name for the report, short name for the file names)."""
    if on_gpu():
        if jax is not None:
            name = jax.devices()[0].device_kind
        else:
            import torch

            name = torch.cuda.get_device_name()
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return name, slug
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                line.split(":", 1)[1].strip()
                for line in f
                if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{model} CPU, {os.cpu_count()} cores", "cpu"


def versions():
    found = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
    }
    if jax is not None:
        found["jax"] = jax.__version__
    try:
        import torch
        import transformers

        found["torch"] = torch.__version__
        found["transformers"] = transformers.__version__
        found["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return found


# --- peak memory ---------------------------------------------------------------


def host_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def jax_device_bytes(key="bytes_in_use"):
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get(key, 0)


class PeakMemory:
    """Peak memory growth over a `with` block, in MiB (`self.mib`).

    `kind` is `"host"` (RSS sampled in a thread), `"jax"` (GPU memory in use,
    sampled, and JAX's own peak when it rose) or `"torch"` (CUDA allocator
    peak).
    """

    def __init__(self, kind):
        self.kind = kind
        self.mib = None

    def __enter__(self):
        if self.kind == "torch":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        read = host_rss_bytes if self.kind == "host" else jax_device_bytes
        self.start = read()
        self.peak = self.start
        self.peak_before = jax_device_bytes("peak_bytes_in_use") if self.kind == "jax" else 0
        self.done = threading.Event()

        def sample():
            while not self.done.wait(0.005):
                self.peak = max(self.peak, read())

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.kind == "torch":
            import torch

            peak = torch.cuda.max_memory_allocated()
        else:
            self.done.set()
            self.thread.join()
            peak = self.peak
            if self.kind == "jax":
                peak_after = jax_device_bytes("peak_bytes_in_use")
                if peak_after > self.peak_before:
                    peak = max(peak, peak_after)
        self.mib = max(peak - self.start, 0) / 2**20
        return False


# --- timing --------------------------------------------------------------------


@dataclasses.dataclass
class Timing:
    first_s: float
    times: list
    peak_mib: float | None

    @property
    def median_s(self):
        return statistics.median(self.times)


def measure(call, repeats, budget_s, memory_kind):
    """Time `call()`: a first call, then up to `repeats` runs.

    The first call compiles (JAX) or warms up (PyTorch: on a GPU its first
    generate at a new length ran 17 times slower than the next). Stops
    early when one more run would overrun `budget_s` seconds of timed runs
    (always at least one run).
    """
    start = time.perf_counter()
    call()
    first_s = time.perf_counter() - start
    times = []
    with PeakMemory(memory_kind) as memory:
        while len(times) < repeats:
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
            if sum(times) + statistics.median(times) > budget_s:
                break
    return Timing(first_s, times, memory.mib)


# --- the models ----------------------------------------------------------------


def keras_backbone(shape, size, max_length, dtype):
    if shape == "gpt2":
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=size.vocabulary,
            num_layers=size.layers,
            num_heads=size.heads,
            hidden_dim=size.hidden,
            intermediate_dim=size.intermediate,
            max_sequence_length=max_length,
            dropout=0.0,
            dtype=dtype,
        )
    return keras_hub.models.LlamaBackbone(
        vocabulary_size=size.vocabulary,
        num_layers=size.layers,
        num_query_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        hidden_dim=size.hidden,
        intermediate_dim=size.intermediate,
        tie_word_embeddings=True,
        dtype=dtype,
    )


def keras_hub_causal_lm(shape, backbone):
    """The AR model over the same backbone, greedy."""
    task = {"gpt2": keras_hub.models.GPT2CausalLM, "llama": keras_hub.models.LlamaCausalLM}
    model = task[shape](backbone, preprocessor=None)
    model.compile(sampler="greedy")
    return model


def transformers_model(shape, size, max_length, dtype, threads=None):
    """The same shape in transformers (PyTorch), random weights, or a reason."""
    try:
        import torch
        import transformers
    except ImportError as e:
        return None, f"transformers peer skipped: {e}"
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    if shape == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=size.vocabulary,
            n_positions=max_length,
            n_embd=size.hidden,
            n_layer=size.layers,
            n_head=size.heads,
            n_inner=size.intermediate,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=size.vocabulary,
            hidden_size=size.hidden,
            intermediate_size=size.intermediate,
            num_hidden_layers=size.layers,
            num_attention_heads=size.heads,
            num_key_value_heads=size.kv_heads,
            max_position_embeddings=max_length,
            tie_word_embeddings=True,
            rms_norm_eps=1e-6,
        )
        model = transformers.LlamaForCausalLM(config)
    device = "cuda" if on_gpu() and torch.cuda.is_available() else "cpu"
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval()
    model.generation_config.pad_token_id = 0
    return model, None


def count_params(backbone):
    return int(sum(np.prod(v.shape) for v in backbone.weights))


# --- one call of each peer -------------------------------------------------------


def prompt_ids(batch_size, vocabulary_size):
    rng = np.random.default_rng(0)
    return rng.integers(1, vocabulary_size, (batch_size, PROMPT_LENGTH), dtype="int32")


def keras_hub_call(model, prompt, n):
    """keras-hub generate of exactly `n` tokens after `prompt`."""
    batch_size = prompt.shape[0]
    token_ids = np.zeros((batch_size, PROMPT_LENGTH + n), "int32")
    token_ids[:, :PROMPT_LENGTH] = prompt
    packed = {"token_ids": token_ids, "padding_mask": token_ids != 0}
    packed["padding_mask"][:, :PROMPT_LENGTH] = True

    def call():
        out = model.generate(packed, stop_token_ids=None)
        assert np.asarray(out["padding_mask"]).all(), "keras-hub stopped early"

    return call


def transformers_call(model, prompt, n):
    """transformers generate of exactly `n` new tokens after `prompt`."""
    import torch

    ids = torch.as_tensor(prompt, dtype=torch.long, device=model.device)

    def call():
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=n,
                min_new_tokens=n,
            )
        out = out.cpu()  # waits for the GPU
        assert out.shape[1] == PROMPT_LENGTH + n, out.shape

    return call


def diffusion_packed(prompt, n):
    batch_size = prompt.shape[0]
    token_ids = np.zeros((batch_size, PROMPT_LENGTH + n), "int32")
    token_ids[:, :PROMPT_LENGTH] = prompt
    target_mask = np.zeros(token_ids.shape, bool)
    target_mask[:, PROMPT_LENGTH:] = True
    return {
        "token_ids": token_ids,
        "padding_mask": np.ones(token_ids.shape, bool),
        "target_mask": target_mask,
    }


def diffusion_call(model, prompt, n, steps, model_calls):
    """DiffusionDecoder.generate of the `n` target positions; appends the
    model calls the sampler made (`num_forward_passes`) to `model_calls`."""
    packed = diffusion_packed(prompt, n)

    def call():
        out = model.generate(packed, num_steps=steps)
        model_calls.append(int(np.asarray(out["num_forward_passes"])[0]))

    return call


def forward_calls(model, prompt, n):
    """Forward passes over `[batch, 16 + n]` tokens (jit-compiled on JAX,
    eager under `torch.no_grad()` on PyTorch): the logits one plain
    denoising step computes and the backbone's hidden states alone (no LM
    head)."""
    packed = diffusion_packed(prompt, n)
    args = [packed["token_ids"], packed["padding_mask"], packed["target_mask"]]
    if jax is None:
        import torch

        args = [keras.ops.convert_to_tensor(a) for a in args]

        def stateless(function):
            def call():
                with torch.no_grad():
                    function(*args)
                if torch.cuda.is_available():
                    torch.cuda.synchronize()

            return call
    else:
        variables = model.trainable_variables + model.non_trainable_variables
        values = [v.value for v in variables]

        def stateless(function):
            def run(values, *args):
                with keras.StatelessScope(state_mapping=zip(variables, values)):
                    return function(*args)

            compiled = jax.jit(run)
            return lambda: jax.block_until_ready(compiled(values, *args))

    def hidden_states(token_ids, padding_mask, target_mask):
        mask = model.attention_mask(padding_mask, target_mask)
        with attention_lib.attention_mask_override(mask):
            return model.backbone({"token_ids": token_ids, "padding_mask": padding_mask})

    def step_logits(token_ids, padding_mask, target_mask):
        # What one plain denoising step runs: the logits in the compute dtype.
        window = ops.shape(token_ids)[1]
        denoiser = WindowedLogits(model, padding_mask, target_mask, window, False)
        return denoiser(token_ids, 0, None)[0]

    return {"logits": stateless(step_logits), "backbone": stateless(hidden_states)}


# --- the grid ----------------------------------------------------------------------


class Benchmark:
    """Runs the cells and keeps every measurement in `self.rows`."""

    def __init__(self, args, device, device_slug):
        self.args = args
        self.device = device
        self.device_slug = device_slug
        self.backend = BACKEND
        self.gpu = on_gpu()
        self.versions = versions()
        self.command = f"python {' '.join(sys.argv)}"
        self.commit = current_commit()  # The code measured, whatever is committed meanwhile.
        self.rows = []
        self.notes = []
        self.failed_options = {}
        gpu = on_gpu()
        self.memory_kind = {
            "jax": ("jax" if jax is not None else "torch") if gpu else "host",
            "torch": "torch" if gpu else "host",
        }
        self.deadline = (
            time.time() + 60 * args.max_minutes if args.max_minutes else None
        )
        self.stopped = False

    def out_of_time(self):
        if self.deadline is not None and time.time() > self.deadline:
            if not self.stopped:
                self.note(f"Stopped at --max-minutes {self.args.max_minutes}: "
                          "later cells were not run.")
            self.stopped = True
        return self.stopped

    def note(self, text):
        print(text, flush=True)
        if text not in self.notes:
            self.notes.append(text)

    def record(self, cell, peer, timing=None, error=None, **extra):
        row = dict(cell, peer=peer, **extra)
        if timing is not None:
            tokens = cell["batch"] * cell["length"]
            row.update(
                median_s=timing.median_s,
                runs=len(timing.times),
                times_s=timing.times,
                first_s=timing.first_s,
                compile_s=max(timing.first_s - timing.median_s, 0.0),
                tokens_per_s=tokens / timing.median_s,
                peak_mib=timing.peak_mib,
            )
        if error is not None:
            row["error"] = error
            print(f"  {peer}: {error}", flush=True)
        else:
            print(f"  {peer} {extra or ''}: {timing.median_s:.3f} s "
                  f"(n={len(timing.times)}, first {timing.first_s:.1f} s)",
                  flush=True)
        self.rows.append(row)

    def run(self):
        args = self.args
        for shape in args.shapes:
            for size_name in args.sizes:
                if self.out_of_time():
                    return
                self.run_model(shape, size_name)
                write_results(self)

    def run_model(self, shape, size_name):
        args = self.args
        size = SIZES[shape][size_name]
        max_length = PROMPT_LENGTH + max(args.lengths)
        backbone = keras_backbone(shape, size, max_length, args.dtype)
        params = count_params(backbone)
        print(f"\n{shape} {size_name}: {params / 1e6:.1f}M parameters", flush=True)
        ar_model = keras_hub_causal_lm(shape, backbone) if "keras-hub" in args.peers else None
        hf_model = None
        if "transformers" in args.peers:
            hf_model, reason = transformers_model(
                shape, size, max_length, args.peer_dtype, args.torch_threads)
            if reason:
                self.note(reason)
        diffusion = ktd.DiffusionDecoder(backbone, preprocessor=None)
        for batch_size in args.batch_sizes:
            prompt = prompt_ids(batch_size, size.vocabulary)
            for length in args.lengths:
                if self.out_of_time():
                    return
                cell = dict(shape=shape, size=size_name, params=params,
                            batch=batch_size, length=length)
                print(f"{shape} {size_name} batch {batch_size} length {length}", flush=True)
                self.run_cell(cell, prompt, ar_model, hf_model, diffusion)
                write_results(self)
        del ar_model, hf_model, diffusion, backbone
        gc.collect()

    def guarded(self, cell, peer, function, **extra):
        """Run one measurement; a failure (out of memory, an unknown sampler
        option) is recorded in the table instead of ending the run."""
        try:
            self.record(cell, peer, function(), **extra)
        except Exception as e:  # noqa: BLE001 (reported, the grid goes on)
            first_line = (str(e).splitlines() or [""])[0][:200]
            self.record(cell, peer, error=f"{type(e).__name__}: {first_line}", **extra)

    def run_cell(self, cell, prompt, ar_model, hf_model, diffusion):
        args, n = self.args, cell["length"]
        for name, make in forward_calls(diffusion, prompt, n).items():
            self.guarded(cell, "forward", lambda: measure(
                make, args.repeats, args.cell_budget, self.memory_kind["jax"]),
                part=name)
        if ar_model is not None:
            self.guarded(cell, "keras-hub", lambda: measure(
                keras_hub_call(ar_model, prompt, n), args.repeats,
                args.cell_budget, self.memory_kind["jax"]))
        if hf_model is not None:
            self.guarded(cell, "transformers", lambda: measure(
                transformers_call(hf_model, prompt, n), args.repeats,
                args.cell_budget, self.memory_kind["torch"]))
        for options_name, options in args.options.items():
            if options_name in self.failed_options:
                continue
            # An option set may fix its own step count (e.g. blocks of 32,
            # 4 steps each); the others run at every `--steps`.
            options = dict(options)
            steps_list = [options.pop("num_steps")] if "num_steps" in options else args.steps
            try:
                diffusion.compile(sampler=ktd.DiffusionSampler(
                    num_steps=steps_list[0], num_samples=1, temperature=0.0,
                    seed=0, **options))
            except Exception as e:  # noqa: BLE001
                self.failed_options[options_name] = f"{type(e).__name__}: {e}"
                self.note(f"Options {options_name}={json.dumps(options)} "
                          f"skipped: {type(e).__name__}: {e}")
                continue
            # The step count is a loop bound, not a shape: the first step
            # count's first call compiles, the others reuse it.
            for steps in steps_list:
                calls = []
                self.guarded(cell, "diffusion", lambda: measure(
                    diffusion_call(diffusion, prompt, n, steps, calls),
                    args.repeats, args.cell_budget, self.memory_kind["jax"]),
                    steps=steps, options=options_name)
                if calls:
                    self.rows[-1]["model_calls"] = float(np.mean(calls))


# --- the report ---------------------------------------------------------------------


def find(rows, peer, cell, **extra):
    keys = ("shape", "size", "batch", "length")
    for row in rows:
        if row["peer"] == peer and all(row[k] == cell[k] for k in keys) and all(
            row.get(k) == v for k, v in extra.items()
        ) and "error" not in row:
            return row
    return None


def fmt(value, digits=2):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(bench):
    args, rows = bench.args, bench.rows
    lines = [
        f"# Decoding speed on {bench.device}",
        "",
        f"Keras backend {bench.backend}, dtype {args.dtype} (transformers peer: "
        f"{getattr(args, 'peer_dtype', args.dtype)}); "
        + ", ".join(f"{k} {v}" for k, v in bench.versions.items()) + ".",
        f"Command{f' at {bench.commit}' if bench.commit else ''}: `{bench.command}`",
        "",
        f"Random weights; a {PROMPT_LENGTH}-token prompt; `n` tokens written "
        "after it (AR: greedy, never stopping early; diffusion: the `n` target "
        "positions, temperature 0, 1 sample). Time: median of `runs` calls "
        f"(at most {args.repeats}, fewer where a cell would pass "
        f"{args.cell_budget:.0f} s); first call and compile (first call minus "
        "median) apart. Memory: peak growth over the timed runs "
        + ("of device memory (JAX memory stats, torch.cuda)." if bench.gpu
           else "of the process's resident memory (host RSS, sampled every 5 ms); "
           "memory the allocator kept from earlier calls is not counted."),
        "",
    ]
    lines += [f"- {note}" for note in bench.notes]
    lines += [
        "",
        "## Autoregressive peers",
        "",
        "| shape | size | params | batch | n | peer | median s | runs | tokens/s | first call s | compile or warm-up s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["peer"] in AR_PEERS:
            lines.append(
                f"| {r['shape']} | {r['size']} | {r['params'] / 1e6:.0f}M | {r['batch']} | {r['length']} | {r['peer']} | "
                + (f"{r['error']} | | | | | |" if "error" in r else
                   f"{fmt(r['median_s'], 3)} | {r['runs']} | {fmt(r['tokens_per_s'], 1)} | "
                   f"{fmt(r['first_s'], 1)} | {fmt(r['compile_s'], 1)} | {fmt(r['peak_mib'], 0)} |")
            )
    lines += [
        "",
        "## Diffusion decoding",
        "",
        "Speed-up: AR peer's median time / diffusion's, same shape, batch and `n`; "
        "`best` is over the faster AR peer. `step/fwd`: diffusion time per step "
        "(median / steps) over one compiled forward pass with the LM head (the issue "
        "targets <= 1.2; plain decoding only: the other options' model calls "
        "run on smaller windows); `slope/fwd`: the cost of one more step, "
        "(median at the most steps - at the fewest) / (step difference), over "
        "the same forward pass, without what a `generate()` call pays once "
        "(input packing, the initial noise, host transfers). `calls`: the model calls made "
        "(`num_forward_passes`). With random weights, early stop and threshold "
        "decoding stop wherever these weights happen to: their times say "
        "nothing about a trained model's; fixed-schedule options' do.",
        "",
        "| shape | size | batch | n | options | steps | median s | runs | tokens/s | first call s | compile or warm-up s | peak MiB | x keras-hub | x transformers | x best | step/fwd | slope/fwd | calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["peer"] != "diffusion":
            continue
        head = f"| {r['shape']} | {r['size']} | {r['batch']} | {r['length']} | {r['options']} | {r['steps']} | "
        if "error" in r:
            lines.append(head + f"{r['error']} |")
            continue
        s = speedups(rows, r)
        lines.append(
            head + f"{fmt(r['median_s'], 3)} | {r['runs']} | {fmt(r['tokens_per_s'], 1)} | "
            f"{fmt(r['first_s'], 1)} | {fmt(r['compile_s'], 1)} | {fmt(r['peak_mib'], 0)} | "
            f"{fmt(s['keras-hub'])} | {fmt(s['transformers'])} | {fmt(s['best'])} | "
            f"{fmt(s['step_over_forward'])} | {fmt(s['slope_over_forward'])} | "
            f"{fmt(r.get('model_calls'), 1)} |"
        )
    lines += [
        "",
        "## One forward pass (same tokens; jit-compiled on JAX, eager on PyTorch)",
        "",
        "| shape | size | batch | tokens | backbone ms | with LM head ms | LM head share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["peer"] == "forward" and r["part"] == "logits":
            body = find(rows, "forward", r, part="backbone")
            total = r.get("median_s")
            inner = body and body["median_s"]
            share = None if not (total and inner) else 1 - inner / total
            lines.append(
                f"| {r['shape']} | {r['size']} | {r['batch']} | {PROMPT_LENGTH + r['length']} | "
                f"{fmt(inner and inner * 1e3, 1)} | {fmt(total and total * 1e3, 1)} | "
                f"{fmt(share and share * 100, 0)}{'%' if share else ''} |"
            )
    return "\n".join(lines) + "\n"


def speedups(rows, diffusion_row):
    """Speed-ups of one diffusion row over each AR peer and the faster one."""
    result = {}
    times = []
    for peer in AR_PEERS:
        peer_row = find(rows, peer, diffusion_row)
        result[peer] = peer_row and peer_row["median_s"] / diffusion_row["median_s"]
        if peer_row:
            times.append(peer_row["median_s"])
    result["best"] = min(times) / diffusion_row["median_s"] if times else None
    forward = find(rows, "forward", diffusion_row, part="logits")
    plain = diffusion_row.get("options") == "plain"
    result["step_over_forward"] = (
        diffusion_row["median_s"] / diffusion_row["steps"] / forward["median_s"]
        if forward and plain else None
    )
    sweep = sorted((r["steps"], r["median_s"]) for r in rows
                   if find([r], "diffusion", diffusion_row, options="plain"))
    result["slope_over_forward"] = (
        (sweep[-1][1] - sweep[0][1]) / (sweep[-1][0] - sweep[0][0]) / forward["median_s"]
        if forward and plain and len(sweep) > 1 else None
    )
    return result


def plot(bench, path):
    """Speed-up over the faster AR peer against output length (Figure 3)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bench.note("No plot: matplotlib is not installed.")
        return False
    rows = [r for r in bench.rows if r["peer"] == "diffusion" and "error" not in r]
    panels = sorted({(r["shape"], r["size"], r["batch"]) for r in rows},
                    key=lambda p: (p[0], p[1], p[2]))
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (shape, size, batch) in zip(axes[0], panels):
        lines = sorted({(r["options"], r["steps"]) for r in rows
                        if (r["shape"], r["size"], r["batch"]) == (shape, size, batch)},
                       key=lambda k: (k[0] != "plain", k))
        for options, steps in lines:
            points = sorted(
                (r["length"], speedups(bench.rows, r)["best"]) for r in rows
                if (r["shape"], r["size"], r["batch"], r["options"], r["steps"])
                == (shape, size, batch, options, steps)
            )
            points = [(x, y) for x, y in points if y is not None]
            if points:
                label = f"{steps} steps" + ("" if options == "plain" else f", {options}")
                axis.plot(*zip(*points), marker="o", label=label)
        axis.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        axis.set_xscale("log", base=2)
        lengths = sorted({r["length"] for r in rows})
        axis.set_xticks(lengths, [str(n) for n in lengths])
        axis.minorticks_off()
        axis.set_xlabel("output tokens")
        axis.set_ylabel("speed-up over the faster AR peer")
        axis.set_title(f"{shape} {size}, batch {batch}")
        axis.legend()
    figure.suptitle(f"Diffusion vs autoregressive decoding, {bench.device}; "
                    f"Keras {bench.backend}, {bench.args.dtype}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def write_results(bench):
    out = bench.args.out_dir
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"speed-{bench.device_slug}")
    text = markdown(bench)
    if plot(bench, stem + ".png"):
        text += f"\n![speed-up against output length](speed-{bench.device_slug}.png)\n"
    with open(stem + ".md", "w") as f:
        f.write(text)
    with open(stem + ".json", "w") as f:
        json.dump({"device": bench.device, "gpu": bench.gpu, "backend": bench.backend,
                   "versions": bench.versions, "command": bench.command, "commit": bench.commit,
                   "arguments": vars(bench.args), "notes": bench.notes,
                   "rows": bench.rows}, f, indent=1)
    return text


def render(path):
    """Rewrite a results JSON's `.md` and `.png` (a new table column, a
    new plot) without measuring again."""
    with open(path) as f:
        data = json.load(f)
    stem = os.path.splitext(path)[0]
    slug = os.path.basename(stem).removeprefix("speed-")
    command = data.get("command")
    if command is None and os.path.exists(stem + ".md"):  # Older files.
        with open(stem + ".md") as f:
            command = next((line.strip()[len("Command: `"):-1] for line in f
                            if line.startswith("Command: `")), None)
    bench = types.SimpleNamespace(
        device=data["device"], device_slug=slug, rows=data["rows"],
        gpu=data.get("gpu", not slug.startswith("cpu")),
        notes=data["notes"], versions=data["versions"],
        backend=data.get("backend", "torch" if "-torch" in slug else "jax"),
        command=command or "not recorded", commit=data.get("commit"),
        args=argparse.Namespace(**{**data["arguments"], "out_dir": os.path.dirname(path)}),
        note=lambda text: None,
    )
    return write_results(bench)


# --- the command line ------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults differ on CPU and GPU; see the module docstring.",
    )
    parser.add_argument("--shapes", help="comma list of gpt2, llama")
    parser.add_argument("--sizes", help="comma list of tiny, 45m, 125m")
    parser.add_argument("--lengths", help="output tokens n, comma list")
    parser.add_argument("--batch-sizes", help="comma list")
    parser.add_argument("--steps", help="diffusion steps, comma list")
    parser.add_argument("--repeats", type=int, help="timed runs per cell (median)")
    parser.add_argument("--cell-budget", type=float,
                        help="seconds of timed runs per cell before fewer repeats")
    parser.add_argument("--peers", default=",".join(AR_PEERS),
                        help="AR peers, comma list of keras-hub, transformers ('' for none)")
    parser.add_argument("--options", action="append", default=[], metavar="NAME=JSON",
                        help="a named set of DiffusionSampler options (repeatable), "
                        """e.g. cache='{"cache": true}'; "plain" ({}) always runs""")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--peer-dtype", choices=["float32", "bfloat16", "float16"],
                        help="the transformers peer's dtype (default: --dtype). On a "
                        "CPU, batch-1 AR tokens can be faster in float32 than in "
                        "bfloat16: compare against the faster one")
    parser.add_argument("--torch-threads", type=int,
                        help="PyTorch CPU threads (default: torch's own). On a CPU "
                        "that other processes keep busy, torch's threads wait on "
                        "each other at every op: 1 can be many times faster")
    parser.add_argument("--max-minutes", type=float,
                        help="start no new cell after this many minutes")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: tiny model, 64 tokens, 2 repeats")
    parser.add_argument("--out-dir", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--render", metavar="JSON",
                        help="rewrite a results JSON's .md and .png without measuring")
    parser.add_argument("--tag", help="added to the results file names, so that "
                        "a run of other cells keeps the default run's files")
    args = parser.parse_args(argv)

    defaults = dict(GPU_DEFAULTS if on_gpu() else CPU_DEFAULTS)
    if args.quick:
        defaults.update(QUICK)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.peer_dtype = args.peer_dtype or args.dtype
    args.shapes = _names(args.shapes, SIZES, "--shapes")
    args.sizes = _names(args.sizes, SIZES["gpt2"], "--sizes")
    args.peers = _names(args.peers, AR_PEERS, "--peers")
    args.lengths = _ints(args.lengths)
    args.batch_sizes = _ints(args.batch_sizes)
    args.steps = _ints(args.steps)
    options = {"plain": {}}
    for item in args.options:
        name, _, text = item.partition("=")
        if not name or not text:
            parser.error(f"--options wants NAME=JSON, got {item!r}")
        options[name] = json.loads(text)
        if not isinstance(options[name], dict):
            parser.error(f"--options {name}: the JSON must be an object")
    args.options = options
    return args


def _names(text, allowed, flag):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {sorted(allowed)}")
    return names


def _ints(text):
    return [int(t) for t in str(text).split(",") if t.strip()]


def results_slug(device_slug, args):
    """`speed-<device>` names the device's default run; another backend or
    dtype is added to the name so that it does not overwrite it."""
    default_dtype = (GPU_DEFAULTS if on_gpu() else CPU_DEFAULTS)["dtype"]
    parts = [device_slug]
    if BACKEND != "jax":
        parts.append(BACKEND)
    if args.dtype != default_dtype:
        parts.append(args.dtype)
    if args.tag:
        parts.append(re.sub(r"[^A-Za-z0-9_.]+", "-", args.tag))
    return "-".join(parts)


def main(argv=None):
    if BACKEND not in ("jax", "torch"):
        raise SystemExit(
            "benchmarks/speed.py times the JAX or the PyTorch backend: set "
            f"KERAS_BACKEND=jax or torch (it is {BACKEND!r})."
        )
    args = parse_args(argv)
    if args.render:
        print(render(args.render))
        return None
    device, slug = describe_device()
    slug = results_slug(slug, args)
    print(f"Device: {device}", flush=True)
    bench = Benchmark(args, device, slug)
    load_before = os.getloadavg()[0]
    bench.run()
    if not on_gpu():  # Other processes on the cores slow every peer down.
        bench.note(f"Load average (1 min) at the start {load_before:.1f}, at "
                   f"the end {os.getloadavg()[0]:.1f}, on {os.cpu_count()} cores.")
    text = write_results(bench)
    print("\n" + text)
    print(f"Wrote {os.path.join(args.out_dir, 'speed-' + slug)}.md / .json / .png")
    return bench


if __name__ == "__main__":
    main()
