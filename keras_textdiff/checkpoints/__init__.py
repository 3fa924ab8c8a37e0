"""Import checkpoints of other formats into keras-hub.

`load_gguf` builds a keras-hub `CausalLM` from a GGUF Llama file (llama.cpp's
format); `import_gguf` saves it as a local keras-hub preset. Importing this
package registers the classes those presets use, so that
`keras_hub.models.CausalLM.from_preset(out_dir)` can reload them.
"""

from keras_textdiff.checkpoints.gguf import SUPPORTED_ARCHITECTURES
from keras_textdiff.checkpoints.gguf import SUPPORTED_QUANTIZATIONS
from keras_textdiff.checkpoints.gguf import GGUFLlamaBackbone
from keras_textdiff.checkpoints.gguf import GGUFLlamaCausalLM
from keras_textdiff.checkpoints.gguf import GGUFLlamaCausalLMPreprocessor
from keras_textdiff.checkpoints.gguf import import_gguf
from keras_textdiff.checkpoints.gguf_tokenizer import END_OF_GENERATION_TOKENS
from keras_textdiff.checkpoints.gguf_tokenizer import SUPPORTED_PRE_TOKENIZERS
from keras_textdiff.checkpoints.gguf_tokenizer import GGUFBytePairTokenizer
from keras_textdiff.checkpoints.gguf import load_gguf
from keras_textdiff.checkpoints.gguf import load_gguf_backbone
