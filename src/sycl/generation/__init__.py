"""Stage one of SyCL: an LLM writes passages at relevance levels 3/2/1/0 for each query (generate.py).

Backends (``chat``: OpenAI-compatible HTTP over one or several servers, local transformers), prompts and
answer parsing, the crash-safe journal and the scheduler that fills it, the BEIR writer, report and
consistency filter, and ``merge``, which joins the outputs of array jobs (``shard=i/n``, ``sycl.shards``).
The transformers backend and the consistency filter import torch only when used.
"""

from sycl.generation.errors import GenerationError
from sycl.generation.run import generate

__all__ = ["GenerationError", "generate"]
