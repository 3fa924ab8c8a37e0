"""Datasets for keras_textdiff."""

from keras_textdiff.data.python_stdlib import extract_functions
from keras_textdiff.data.python_stdlib import load_python_stdlib
from keras_textdiff.data.python_stdlib import split_modules
from keras_textdiff.data.python_stdlib import stdlib_directory
from keras_textdiff.data.python_stdlib import stdlib_modules
