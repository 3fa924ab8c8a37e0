"""Which task can a small model trained from scratch do in minutes? Infilling.

Hides one line of held-out standard-library functions (`infill_examples`) and
trains a tiny GPT-2-shaped model from scratch for `STEPS` steps to fill it:
`diff` (a bidirectional DiffusionDecoder, uniform noise: it reads the lines
after the hole), `mask` (the same with mask noise and the masked-diffusion
ELBO), or `ar` (an AR GPT2CausalLM on the lines before the hole, greedy).
Prints exact match on 300 held-out holes beside trivial baselines and
appends a line to `benchmarks/results/quickstart-tasks-<cpu>.md`.

    python benchmarks/quickstart_tasks.py diff 1000
"""
import os, sys, time, random
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, keras_hub, tensorflow as tf
from keras_textdiff.data.python_stdlib import load_python_stdlib, infill_examples
from keras_textdiff import DiffusionDecoder, DiffusionPreprocessor, DiffusionSampler
from keras_textdiff.quickstart import code_tokenizer, gpt2_backbone

if len(sys.argv) < 3 or sys.argv[1] not in ('diff', 'mask', 'ar'):
    sys.exit('usage: quickstart_tasks.py diff|mask|ar STEPS [tiny|small|base]')
kind = sys.argv[1]; steps = int(sys.argv[2]); size = sys.argv[3] if len(sys.argv) > 3 else "tiny"
SEQ, T, B = 128, 24, 32
keras.utils.set_random_seed(0)
t0 = time.time()
train = load_python_stdlib("train", max_chars=1500); val = load_python_stdlib("validation", max_chars=1500)
texts = train["texts"]; random.Random(0).shuffle(texts)
tok = code_tokenizer(texts, 2048, special_tokens=("<|endoftext|>", "<|mask|>"))
pre = DiffusionPreprocessor(tok, SEQ, target_length=T, seed=0)
tr = pre.fitting_pairs(infill_examples(train["functions"], per_function=4, seed=0))
te = pre.fitting_pairs(infill_examples(val["functions"], per_function=1, seed=1))[:300]
print("data", len(tr), len(te), f"{time.time()-t0:.0f}s", flush=True)
random.Random(0).shuffle(tr)
def strip(s): return s.strip()
refs = [e["target"] for e in te]
# trivial baselines
from collections import Counter
common = Counter(strip(e["target"]) for e in tr).most_common(1)[0][0]
base_common = np.mean([strip(r) == common for r in refs])
base_copy = np.mean([strip(r) == strip(e["prefix"].rstrip("\n").split("\n")[-1]) for r, e in zip(refs, te)])
print("baseline most-common", repr(common), base_common, "copy-line-above", base_copy)
def record(row, em, steps, seconds):
    import platform, subprocess
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), platform.processor())
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "quickstart-tasks-cpu.md")
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Infilling one line of held-out stdlib functions, tiny model from scratch\n\n"
                    f"300 held-out holes; baselines: the most common training line {common!r} "
                    f"{base_common:.1%}, the line above copied {base_copy:.1%}.\n\n"
                    "| model | steps (batch 32) | exact match | train seconds | CPU |\n|---|---|---|---|---|\n")
        f.write(f"| {row} | {steps} | {em:.1%} | {seconds:.0f} | {cpu}, {os.cpu_count()} cores |\n")


start = time.time()
if kind in ("diff", "mask"):
    noise = None
    if kind == "mask":
        from keras_textdiff import MaskNoise
        noise = MaskNoise(mask_token_id=tok.token_to_id("<|mask|>"))
    model = DiffusionDecoder(gpt2_backbone(size, tok.vocabulary_size(), SEQ), pre, noise=noise)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, global_clipnorm=1.0))
    cols = {k: [e[k] for e in tr] for k in ("prefix", "target", "suffix")}
    ds = tf.data.Dataset.from_tensor_slices(cols).shuffle(10000, seed=0).repeat().batch(B)
    hist = model.fit(ds, steps_per_epoch=100, epochs=steps // 100, verbose=2)
    train_s = time.time() - start
    results = {}
    for name, sampler in [("default10", DiffusionSampler(seed=0)),
                          ("argmax10", DiffusionSampler(num_steps=10, temperature=0.0, num_samples=1, seed=0)),
                          ] + ([("confidence", DiffusionSampler(num_steps=T, temperature=0.0, num_samples=1, strategy="confidence", seed=0))] if kind == "mask" else []):
        model.compile(sampler=sampler)
        outs = []
        s0 = time.time()
        for i in range(0, len(te), 50):
            b = te[i:i+50]
            outs += model.generate({"prefix": [e["prefix"] for e in b], "suffix": [e["suffix"] for e in b]}, strip_prompt=True)
        em = np.mean([strip(o.split("\n")[0]) == strip(r) for o, r in zip(outs, refs)])
        results[name] = em
        record(f"{kind} ({name} decoding)", em, steps, train_s)
        print(kind, name, "EM", em, f"decode {time.time()-s0:.0f}s", flush=True)
        for o, e in list(zip(outs, te))[:5]: print("   ", repr(e["target"]), "->", repr(o))
else:
    ar_pre = keras_hub.models.GPT2CausalLMPreprocessor(tok, sequence_length=SEQ)
    model = keras_hub.models.GPT2CausalLM(gpt2_backbone(size, tok.vocabulary_size(), SEQ), ar_pre)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=["accuracy"])
    texts = [e["prefix"] + e["target"] for e in tr]
    ds = tf.data.Dataset.from_tensor_slices(texts).shuffle(10000, seed=0).repeat().batch(B).map(ar_pre)
    model.fit(ds, steps_per_epoch=100, epochs=steps // 100, verbose=2)
    train_s = time.time() - start
    from keras_textdiff.evaluation.evaluate import complete
    model.compile(sampler="greedy")
    outs = []
    s0 = time.time()
    for i in range(0, len(te), 50):
        outs += complete(model, [e["prefix"] for e in te[i:i+50]], max_length=SEQ)
    em = np.mean([strip(o.split("\n")[0]) == strip(r) for o, r in zip(outs, refs)])
    print("ar EM", em, f"decode {time.time()-s0:.0f}s", flush=True)
    record("ar (greedy)", em, steps, train_s)
    for o, e in list(zip(outs, te))[:5]: print("   ", repr(e["target"]), "->", repr(o))
print(kind, "train", f"{train_s:.0f}s", "steps", steps)
