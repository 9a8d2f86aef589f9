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
