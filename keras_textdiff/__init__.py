"""keras_textdiff: text diffusion for Keras 3.

Train with `fit()`, decode in parallel with `generate()`, and (AR2Diff) turn
keras-hub autoregressive models into diffusion models.
"""

from keras_textdiff import bpe  # Registers CodeGPT2Tokenizer for presets.
from keras_textdiff import checkpoints  # Registers the GGUF preset classes.
from keras_textdiff import distribution  # Data and model parallel (JAX).
from keras_textdiff import lora  # enable_lora, merge_lora.
from keras_textdiff.ar2diff import AR2DiffConverter
from keras_textdiff.attention import supported_backbone_names
from keras_textdiff.diffusion_decoder import DiffusionDecoder
from keras_textdiff.diffusion_preprocessor import DiffusionPreprocessor
from keras_textdiff.noise import MaskNoise
from keras_textdiff.noise import Noise
from keras_textdiff.noise import UniformNoise
from keras_textdiff.noise import masked_diffusion_loss
from keras_textdiff.noise import sundae_loss
from keras_textdiff.samplers import DiffusionSampler

__version__ = "0.1.0"
