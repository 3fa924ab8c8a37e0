import os, sys, time, json
os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np
import keras_textdiff as ktd
print("library:", ktd.__file__, flush=True)
from keras_textdiff.evaluation import metrics
from keras_textdiff.data import load_task
model = ktd.DiffusionDecoder.from_preset("/work/main/guide_runs/finetune_qa_and_code/squad_model")
A, L = model.preprocessor.target_length, model.preprocessor.sequence_length
ex = load_task("squad", "/work/shared/data/squad/dev-v1.1.json.gz" if os.path.exists("/work/shared/data") else "../shared/data/squad/dev-v1.1.json.gz", "test")[:400]
lens = [len(i) for i in model.preprocessor.tokenizer([e["prefix"] for e in ex])]
ex = [e for e, n in zip(ex, lens) if n + 2 + A <= L][:20]
refs = [e["answers"] for e in ex]
packed = [model.preprocessor.generate_preprocess([e["prefix"]], sequence_length=L) for e in ex]
out = {}
for name, kw in [("threshold 0.9", dict(strategy="threshold", threshold=0.9)),
                 ("entropy bound 1 nat", dict(strategy="entropy_bound", entropy_bound=1.0))]:
    model.compile(sampler=ktd.DiffusionSampler(num_steps=A, early_stop=True, temperature=0.0,
                  num_samples=1, block_size=A, cache=True, **kw))
    model.generate(dict(packed[0]))
    answers, calls = [], []
    t = time.time()
    for b in packed:
        o = model.generate(dict(b))
        answers.append(model.preprocessor.generate_postprocess(o, strip_prompt=True)[0].strip().split("\n")[0].strip())
        calls.append(int(o["num_forward_passes"][0]))
    out[name] = dict(f1=metrics.f1(answers, refs), em=metrics.exact_match(answers, refs), calls=float(np.mean(calls)), s=(time.time()-t)/len(packed), answers=answers[:4])
    print(name, out[name], flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
