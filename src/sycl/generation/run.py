"""One generation run from a composed config: the body of generate.py, importable by tests."""

import json
import logging
from collections import Counter
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sycl import hub
from sycl.data.beir_files import iter_qrels, read_queries
from sycl.data.errors import DataFormatError
from sycl.files import write_lines_atomically
from sycl.generation.errors import GenerationError
from sycl.generation.journal import Journal
from sycl.generation.report import build_report, summary_lines
from sycl.generation.scheduler import RunStats, Scheduler
from sycl.generation.work import filled_slots, is_complete, iter_journal_passages, pending_units
from sycl.generation.writer import WrittenDataset, write_beir
from sycl.shards import Shard, parse_shard

log = logging.getLogger(__name__)


def generate(cfg: DictConfig) -> dict:
    """Generate the missing passages of every query, then write the BEIR folder and the report; returns the report."""
    output_dir = Path(cfg.output_dir)
    if cfg.samples_per_level < 1:
        raise ValueError(f"samples_per_level must be >= 1, got {cfg.samples_per_level}")
    shard = parse_shard(cfg.get("shard"))
    queries = load_queries(cfg, output_dir, shard)
    prompt = instantiate(cfg.prompts)
    consistency = instantiate(cfg.consistency)
    fingerprint = {"model": cfg.generator.model, "prompts": OmegaConf.to_container(cfg.prompts, resolve=True)}
    if shard is not None:  # another shard's journal in this folder is refused; an unsharded one keeps its old header
        fingerprint["shard"] = str(shard)
    with Journal(output_dir / "journal.jsonl", fingerprint) as journal:
        slots = filled_slots(iter_journal_passages(journal.iter_records(), queries))
        complete_before = sum(is_complete(slots.get(q, set()), cfg.samples_per_level) for q in queries)
        units = pending_units(queries, slots, cfg.samples_per_level, per_level=not prompt.answers_json)
        log.info(
            "%d of %d queries complete from earlier runs; %d requests to make",
            complete_before,
            len(queries),
            len(units),
        )
        stats = RunStats()
        if units:  # a finished job re-run loads no model and contacts no server
            backend = instantiate(cfg.generator)
            log.info("generating into %s with %r", output_dir, backend)
            scheduler = Scheduler(
                backend=backend,
                prompt=prompt,
                parser=instantiate(cfg.answers),
                journal=journal,
                queries=queries,
                max_attempts=cfg.max_attempts,
                max_consecutive_server_failures=cfg.max_consecutive_server_failures,
                progress=cfg.progress,
            )
            stats = scheduler.run(units)

        def passages():
            """The journal's passages of the samples asked for (a journal may hold more from an earlier run)."""
            for passage in iter_journal_passages(journal.iter_records(), queries):
                if passage.sample < cfg.samples_per_level:
                    yield passage

        slots = filled_slots(passages())
        complete = {q for q in queries if is_complete(slots.get(q, set()), cfg.samples_per_level)}
        flagged = None
        if consistency.enabled:
            in_complete = (p for p in passages() if p.query_id in complete)
            agreements = consistency.agreements(queries, in_complete)
            flagged = {q: round(a, 3) for q, a in agreements.items() if a < consistency.min_agreement}
        keep = complete - set(flagged or ()) if consistency.drop else complete
        # With no query complete there is no dataset: an empty one would only fail later, in training.
        written = write_beir(output_dir, queries, passages(), keep, cfg.split) if complete else WrittenDataset()
    report = build_report(
        input_queries=len(queries),
        complete_before=complete_before,
        complete=len(complete),
        stats=stats,
        written=written,
        flagged=flagged,
        dropped=bool(consistency.enabled and consistency.drop),
        setup={
            "model": cfg.generator.model,
            "prompt_mode": prompt.mode,
            "samples_per_level": cfg.samples_per_level,
            "split": cfg.split,
            "shard": None if shard is None else str(shard),
        },
    )
    write_lines_atomically(output_dir / "report.json", [json.dumps(report, indent=2, ensure_ascii=False) + "\n"])
    for line in summary_lines(report):
        log.info(line)
    if not complete:
        raise GenerationError(f"{no_query_complete(stats)}; report: {output_dir / 'report.json'}")
    log.info("wrote %s (corpus.jsonl, queries.jsonl, qrels/%s.tsv, report.json)", output_dir, cfg.split)
    return report


def no_query_complete(stats: RunStats) -> str:
    """Why nothing can be written: the first failed query and its reason, and the failures by kind."""
    if not stats.failed:
        return "no query has all its passages, so there is nothing to write"
    query_id, (kind, detail) = next(iter(stats.failed.items()))
    kinds = ", ".join(f"{k} {n}" for k, n in Counter(k for k, _ in stats.failed.values()).most_common())
    return (
        f"no query was completed, so nothing was written: {len(stats.failed)} failed ({kinds}); "
        f"e.g. query {query_id!r}: {kind}: {detail}"
    )


def load_queries(cfg: DictConfig, output_dir: Path, shard: Shard | None = None) -> dict[str, str]:
    """The queries to generate for: the file, optionally only those in a qrels file, optionally the first N,
    optionally only those of ``shard`` (``sycl.shards``: by a hash of the id, so the n shards partition the rest).

    Both files may be in any layout the readers know (``sycl.data.beir_files``: BEIR JSONL, MS MARCO TSV,
    TREC or Trove qrels, gzipped or not); the layout is read from the file itself. Either may be an ``hf://`` URI
    (``sycl.hub``), fetched into the HF cache; ``sycl.hub.HubFileUnavailable`` when it cannot be.
    """
    path = hub.local_path(cfg.queries)  # before any Path(): it would fold the URI's "//"
    # Resolved, a hub file is its blob in the HF cache: an output_dir inside the cache's snapshot is caught too.
    if (output_dir / "queries.jsonl").resolve() == path.resolve():
        raise ValueError(
            f"output_dir={output_dir} would overwrite the input queries={cfg.queries}: choose another output_dir"
        )
    keep_ids = None
    if cfg.queries_in_qrels:
        keep_ids = {query_id for _, query_id, _, _ in iter_qrels(hub.local_path(cfg.queries_in_qrels))}
    queries = read_queries(path, keep_ids=keep_ids)
    if cfg.max_queries is not None:
        queries = dict(list(queries.items())[: cfg.max_queries])
    if not queries:
        raise DataFormatError(path, "no queries to generate for" + (f" in {cfg.queries_in_qrels}" if keep_ids else ""))
    if shard is not None:
        held = {query_id: queries[query_id] for query_id in shard.select(queries)}
        if not held:
            raise DataFormatError(path, f"shard={shard} holds none of its {len(queries)} queries: use fewer shards")
        queries = held
    return queries
