"""The end-of-run report: report.json in the output folder, and its summary in the log."""

import statistics
from collections import Counter

from sycl.generation.prompts import LEVELS
from sycl.generation.scheduler import RunStats
from sycl.generation.writer import WrittenDataset


def build_report(
    input_queries: int,
    complete_before: int,
    complete: int,
    stats: RunStats,
    written: WrittenDataset,
    flagged: dict[str, float] | None,
    dropped: bool,
    setup: dict,
) -> dict:
    """Everything a user needs to judge the run; ``flagged`` is None when the consistency filter is off."""
    return {
        "setup": setup,
        "queries": {
            "input": input_queries,
            "complete": complete,
            "complete_before_this_run": complete_before,
            "completed_this_run": stats.completed,
            "failed": len(stats.failed),
            "written": written.queries,
        },
        "failure_reasons": dict(Counter(kind for kind, _ in stats.failed.values()).most_common()),
        "failed": {query_id: {"reason": kind, "detail": detail} for query_id, (kind, detail) in stats.failed.items()},
        "requests": {
            "sent": stats.requests,
            "backend_calls": stats.backend_calls,
            "server_retries": stats.server_retries,
            "answer_retries": stats.answer_retries,
            "rejected_answers": dict(stats.rejected_answers.most_common()),
            "seconds": round(stats.seconds, 3),
        },
        "tokens": {
            "prompt": stats.prompt_tokens,
            "completion": stats.completion_tokens,
            "requests_without_usage": stats.requests_without_usage,
        },
        "passages": {
            "written": written.passages,
            "qrels_per_level": {str(level): written.qrels_per_level.get(level, 0) for level in LEVELS},
            "duplicates_within_query_dropped": written.duplicates_within_query,
            "duplicates_across_queries_shared": written.duplicates_across_queries,
            "words": {str(level): length_stats(written.words.get(level, [])) for level in LEVELS},
        },
        "consistency": None
        if flagged is None
        else {"flagged": len(flagged), "dropped": dropped, "flagged_queries": dict(sorted(flagged.items()))},
    }


def length_stats(values: list[int]) -> dict | None:
    if not values:
        return None
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 1),
        "median": statistics.median(values),
        "max": max(values),
    }


def summary_lines(report: dict) -> list[str]:
    """A few human lines; report.json holds the details (which queries failed and why)."""
    queries, requests, tokens, passages = report["queries"], report["requests"], report["tokens"], report["passages"]
    lines = [
        f"queries: {queries['input']} in input, {queries['complete']} complete "
        f"({queries['completed_this_run']} this run), {queries['failed']} failed, "
        f"{queries['written']} written",
        f"requests: {requests['sent']} sent in {requests['seconds']:.1f} s, {requests['server_retries']} server "
        f"retries, {requests['answer_retries']} answers asked again",
        f"tokens: {tokens['prompt']} prompt + {tokens['completion']} completion"
        + (f" ({tokens['requests_without_usage']} requests without usage)" if tokens["requests_without_usage"] else ""),
        f"passages: {passages['written']} written; qrels per level "
        + ", ".join(f"{level}: {n}" for level, n in passages["qrels_per_level"].items())
        + f"; duplicates dropped {passages['duplicates_within_query_dropped']}, shared across queries "
        f"{passages['duplicates_across_queries_shared']}",
    ]
    words = [f"{level}: {s['mean']} ({s['min']}-{s['max']})" for level, s in passages["words"].items() if s]
    if words:
        lines.append("words per passage, mean (min-max) by level: " + ", ".join(words))
    if report["failure_reasons"]:
        lines.append(
            "failed queries by reason: " + ", ".join(f"{kind} {n}" for kind, n in report["failure_reasons"].items())
        )
    if report["consistency"] is not None:
        consistency = report["consistency"]
        lines.append(
            f"consistency: {consistency['flagged']} queries with passages out of level order "
            + ("dropped" if consistency["dropped"] else "flagged (kept)")
        )
    return lines


def merged_report(reports: list[dict], folders: list[str], written: WrittenDataset) -> dict:
    """The report of shard folders joined by ``sycl.generation.merge``: each shard's counts summed (seconds too:
    job-seconds, not wall time), the passages as the merge wrote them, and ``shards`` listing each folder."""
    stats = RunStats()
    for report in reports:
        requests, tokens = report["requests"], report["tokens"]
        stats.requests += requests["sent"]
        stats.backend_calls += requests["backend_calls"]
        stats.server_retries += requests["server_retries"]
        stats.answer_retries += requests["answer_retries"]
        stats.rejected_answers.update(requests["rejected_answers"])
        stats.seconds += requests["seconds"]
        stats.prompt_tokens += tokens["prompt"]
        stats.completion_tokens += tokens["completion"]
        stats.requests_without_usage += tokens["requests_without_usage"]
        stats.completed += report["queries"]["completed_this_run"]
        stats.failed.update({q: (failure["reason"], failure["detail"]) for q, failure in report["failed"].items()})
    checked = [report["consistency"] for report in reports if report["consistency"] is not None]
    flagged = {q: a for consistency in checked for q, a in consistency["flagged_queries"].items()} if checked else None
    merged = build_report(
        input_queries=sum(report["queries"]["input"] for report in reports),
        complete_before=sum(report["queries"]["complete_before_this_run"] for report in reports),
        complete=sum(report["queries"]["complete"] for report in reports),
        stats=stats,
        written=written,
        flagged=flagged,
        dropped=any(consistency["dropped"] for consistency in checked),
        setup={**reports[0]["setup"], "shard": None},
    )
    merged["shards"] = [
        {
            "folder": folder,
            "shard": report["setup"]["shard"],
            "queries_written": report["queries"]["written"],
            "seconds": report["requests"]["seconds"],
        }
        for folder, report in zip(folders, reports, strict=True)
    ]
    return merged
