"""Requests and tokens a generation job needs, estimated before spending them.

    python -m sycl.generation.estimate [--prompts per_level] [--samples-per-level 2] [--tokenizer <folder>]

Prompt tokens are counted on the prompts rendered for a queries file (the demo's by default). Answer
tokens are counted on the demo's synthetic passages, which were written to the same level definitions
(78 words on average), laid out as the prompt asks (a JSON object, or the passage alone). The default
tokenizer is the bundled MiniLM's: a rough proxy for an LLM's; chat-template tokens (about 5 per
message) are not included.
"""

import argparse
import json
import statistics
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from transformers import AutoTokenizer

from sycl.config import bundled_minilm_path, repo_root
from sycl.data.beir_files import read_corpus, read_qrels, read_queries
from sycl.generation.prompts import LEVELS


def estimate(queries_file: str, prompts: str, samples_per_level: int, tokenizer: str, per: int) -> dict:
    """Mean prompt and answer tokens per request, and the totals for ``per`` queries."""
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(repo_root()) / "conf")):
        cfg = compose("generate", overrides=["queries=unused", "output_dir=unused", f"prompts={prompts}"])
    prompt = instantiate(cfg.prompts)
    counter = AutoTokenizer.from_pretrained(tokenizer)
    counter.model_max_length = 1 << 30  # only counting: no model sees these, so no length limit applies

    def tokens(text: str) -> int:
        return len(counter(text, add_special_tokens=False)["input_ids"])

    requests_per_query = samples_per_level * (1 if prompt.answers_json else len(LEVELS))
    unit_levels = [LEVELS] if prompt.answers_json else [(level,) for level in LEVELS]
    prompt_tokens = [
        statistics.fmean(sum(tokens(m["content"]) for m in prompt.messages(text, levels)) for levels in unit_levels)
        for text in read_queries(queries_file).values()
    ]
    demo = Path(repo_root()) / "data" / "demo" / "synthetic"
    corpus, qrels = read_corpus(demo / "corpus.jsonl"), read_qrels(demo / "qrels" / "train.tsv")
    if prompt.answers_json:
        answers = [json.dumps({str(int(lv)): corpus[doc] for doc, lv in docs.items()}) for docs in qrels.values()]
    else:
        answers = [corpus[doc] for docs in qrels.values() for doc in docs]
    prompt_mean, answer_mean = statistics.fmean(prompt_tokens), statistics.fmean(tokens(a) for a in answers)
    return {
        "requests_per_query": requests_per_query,
        "prompt_tokens_per_request": round(prompt_mean),
        "answer_tokens_per_request": round(answer_mean),
        "queries": per,
        "requests": per * requests_per_query,
        "prompt_tokens": round(per * requests_per_query * prompt_mean),
        "answer_tokens": round(per * requests_per_query * answer_mean),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    demo_queries = str(Path(repo_root()) / "data" / "demo" / "synthetic" / "queries.jsonl")
    parser.add_argument("--queries", default=demo_queries, help="queries.jsonl whose prompts are counted")
    parser.add_argument("--prompts", default="all_levels", help="a file of conf/prompts/ (without .yaml)")
    parser.add_argument("--samples-per-level", type=int, default=1)
    parser.add_argument("--tokenizer", default=bundled_minilm_path(), help="tokenizer folder or hub id")
    parser.add_argument("--per", type=int, default=1_000_000, help="number of queries the totals are for")
    args = parser.parse_args()
    result = estimate(args.queries, args.prompts, args.samples_per_level, args.tokenizer, args.per)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
