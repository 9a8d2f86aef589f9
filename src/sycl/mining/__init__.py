"""Hard-negative mining: rank a corpus for each training query (BM25 or a trained dense encoder), drop the
labelled positives, write the rest as grouped .jsonl qrels that ``sycl.data`` reads as a training source.
``merge`` joins the files of array jobs (``shard=i/n``, ``sycl.shards``)."""

from sycl.mining.bm25 import BM25Miner
from sycl.mining.corpus import iter_corpus, iter_corpus_chunks
from sycl.mining.dense import DenseMiner
from sycl.mining.negatives import Hit, Negative, select_negatives
from sycl.mining.run import mine
from sycl.mining.writer import NegativesWriter

__all__ = [
    "BM25Miner",
    "DenseMiner",
    "Hit",
    "Negative",
    "NegativesWriter",
    "iter_corpus",
    "iter_corpus_chunks",
    "mine",
    "select_negatives",
]
