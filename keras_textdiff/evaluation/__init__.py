"""Evaluation: metrics, a sandbox for generated code, and `evaluate()`.

>>> from keras_textdiff import evaluation
>>> evaluation.pass_at_k(num_samples=4, num_correct=2, k=1)
0.5
"""

from keras_textdiff.evaluation import metrics
from keras_textdiff.evaluation import sandbox
from keras_textdiff.evaluation.evaluate import TASKS
from keras_textdiff.evaluation.evaluate import evaluate
from keras_textdiff.evaluation.evaluate import generate_predictions
from keras_textdiff.evaluation.evaluate import strip_prompt
from keras_textdiff.evaluation.metrics import bleu
from keras_textdiff.evaluation.metrics import chrf
from keras_textdiff.evaluation.metrics import exact_match
from keras_textdiff.evaluation.metrics import f1
from keras_textdiff.evaluation.metrics import mean_pass_at_k
from keras_textdiff.evaluation.metrics import normalize_answer
from keras_textdiff.evaluation.metrics import pass_at_k
from keras_textdiff.evaluation.sandbox import ExecutionResult
from keras_textdiff.evaluation.sandbox import check_correctness
from keras_textdiff.evaluation.sandbox import check_humaneval
from keras_textdiff.evaluation.sandbox import run_many
from keras_textdiff.evaluation.sandbox import run_program
