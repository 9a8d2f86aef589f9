"""The body of mine.py: rank a dataset's corpus for its training queries, write the negatives."""

import logging
import random
from pathlib import Path

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from sycl.data.beir_files import read_corpus, read_qrels, read_queries
from sycl.data.errors import DataFormatError
from sycl.evaluation.datasets import DatasetSpec, hub_commits, split_files
from sycl.evaluation.self_hits import self_hit_queries, without_self_hit
from sycl.mining.negatives import select_negatives
from sycl.mining.writer import NegativesWriter
from sycl.shards import parse_shard

log = logging.getLogger(__name__)


def mine(cfg: DictConfig) -> dict:
    """Mine negatives for every query of ``cfg.split``'s qrels; returns a summary of what was written.

    The dataset is a folder (BEIR, MS MARCO or TREC layout: ``sycl.data.layout``), a BEIR name (looked up in,
    or downloaded to, ``paths.beir_dir``) or an ``hf://`` folder URI (its corpus.jsonl, queries.jsonl and
    qrels/<split>.tsv, fetched into the HF cache; the summary's ``hub_files`` says at which commits).
    The negatives go to ``output_path(cfg)``: the run's own folder unless ``output`` names a file.
    With ``shard=i/n`` only that shard's queries are mined (``sycl.shards``); ``sycl.mining.merge`` joins the n files.
    Positives are the qrels pairs with score >= ``positive_min_score``; they never appear in the output.
    Neither does a query's own passage when the query is a corpus passage (evaluation's ``auto`` self-hit
    rule, ``sycl.evaluation.self_hits``): it is the query itself, not a negative.
    """
    if cfg.top_k < 1:
        raise ValueError(f"top_k={cfg.top_k} must be >= 1 (how many passages to rank per query)")
    if cfg.negatives_per_query is not None and cfg.negatives_per_query < 1:
        raise ValueError(f"negatives_per_query={cfg.negatives_per_query} must be >= 1, or null to keep every hit")
    output = output_path(cfg)
    spec = DatasetSpec(path=str(cfg.dataset), split=cfg.split)
    files = split_files(spec, cfg.paths.beir_dir, cfg.get("download", True))
    qrels = read_qrels(files.qrels)
    if not qrels:
        raise DataFormatError(files.qrels, f"split {cfg.split!r} has no judgements")
    query_ids = list(qrels)[: cfg.max_queries] if cfg.get("max_queries") else list(qrels)
    shard = parse_shard(cfg.get("shard"))
    if shard is not None:  # by a hash of the id: the n shards partition the queries, each in its qrels order
        held = shard.select(query_ids)
        if not held:
            message = f"shard={shard} holds none of its {len(query_ids)} queries: use fewer shards"
            raise DataFormatError(files.qrels, message)
        query_ids = held
    queries = read_queries(files.queries, keep_ids=set(query_ids))
    missing = [q for q in query_ids if q not in queries]
    if missing:
        raise DataFormatError(
            files.qrels,
            f"{len(missing)} query ids are not in {files.queries.name}, e.g. {missing[0]!r}",
            field="query-id",
        )
    positives = {q: {d for d, score in qrels[q].items() if score >= cfg.positive_min_score} for q in query_ids}
    # One streaming pass that keeps only the passages whose id is a query id: the rule compares their texts.
    self_queries, rule = self_hit_queries("auto", queries, read_corpus(files.corpus, set(query_ids)))
    log.info("%s", rule)
    miner = instantiate(cfg.miner, progress=cfg.progress)
    wanted = cfg.negatives_per_query
    # queries_short: fewer negatives than negatives_per_query (a small corpus, or few term matches).
    summary = dict(
        queries=len(query_ids), positives_retrieved=0, queries_without_negatives=0, queries_short=0, self_hits_dropped=0
    )
    if shard is not None:
        summary["shard"] = str(shard)
    with NegativesWriter(output) as writer:
        for query_id, all_hits in miner.rank(files.corpus, {q: queries[q] for q in query_ids}, cfg.top_k):
            ranked = without_self_hit(query_id, all_hits, self_queries)
            summary["self_hits_dropped"] += len(all_hits) - len(ranked)
            # Seeded per query, not per run position: the same query gets the same sample whatever the order.
            rng = random.Random(f"{cfg.seed}/{query_id}")
            negatives = select_negatives(ranked, positives[query_id], wanted, rng)
            summary["positives_retrieved"] += sum(1 for corpus_id, _ in ranked if corpus_id in positives[query_id])
            if not negatives:
                summary["queries_without_negatives"] += 1
                continue
            summary["queries_short"] += wanted is not None and len(negatives) < wanted
            writer.write(query_id, negatives)
    summary.update(output=str(output), queries_written=writer.queries, negatives=writer.negatives)
    if hub_commits(spec):
        summary["hub_files"] = hub_commits(spec)
    log.info("mined %s", summary)
    if summary["queries_without_negatives"]:
        log.warning(
            "%d queries got no negative (no passage shares a term with them, or all hits were positives)",
            summary["queries_without_negatives"],
        )
    return summary


def output_path(cfg: DictConfig) -> Path:
    """Where the negatives go: ``cfg.output``, else ``<run folder>/<miner name>_negatives.jsonl`` (under logs/).

    Never into the dataset's folder unless ``output`` says so: the shipped demo data and a downloaded dataset
    are inputs, and a rerun with other settings must not silently replace the file training reads. An existing
    file is replaced only with ``overwrite=true``; checked before any work, so a refusal costs nothing.
    """
    if cfg.get("output"):
        output = Path(cfg.output)
    else:
        output = Path(cfg.paths.output_dir) / f"{get_class(cfg.miner._target_).name}_negatives.jsonl"
    if output.exists() and not cfg.get("overwrite", False):
        raise FileExistsError(f"{output} exists: add overwrite=true to replace it, or choose another output=<file>")
    return output
