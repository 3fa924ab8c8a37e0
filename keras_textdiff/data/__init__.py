"""Datasets for keras_textdiff."""

from keras_textdiff.data.number_words import closest_training_targets
from keras_textdiff.data.number_words import number_word_pairs
from keras_textdiff.data.number_words import number_words
from keras_textdiff.data.pipeline import text_dataset
from keras_textdiff.data.tasks import crop_squad_context
from keras_textdiff.data.pipeline import to_dataset
from keras_textdiff.data.python_stdlib import extract_functions
from keras_textdiff.data.python_stdlib import load_python_stdlib
from keras_textdiff.data.python_stdlib import split_modules
from keras_textdiff.data.python_stdlib import stdlib_directory
from keras_textdiff.data.python_stdlib import stdlib_modules
from keras_textdiff.data.tasks import load_humaneval
from keras_textdiff.data.tasks import load_mbpp
from keras_textdiff.data.tasks import load_squad
from keras_textdiff.data.tasks import load_task
from keras_textdiff.data.tasks import load_translation
from keras_textdiff.data.tasks import mbpp_program
from keras_textdiff.data.tasks import squad_article_splits
from keras_textdiff.data.tfds import load_tfds
