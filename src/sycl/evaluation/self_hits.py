"""The self-hit rule: a query that is itself a corpus passage is not its own answer.

In ArguAna and Quora every query is also a corpus passage under the same id, and it retrieves itself
first; BEIR drops a hit whose id equals the query id on those sets. The rule here is decided by the
data, not by the dataset's name, and evaluation and mining apply the same one:

- ``auto``: drop the hit for the queries that are corpus passages, i.e. whose id is a corpus id and
  whose passage is the query's text: the passage holds it and is at most twice as long (whitespace and
  case aside; room for a title), or the two share at least 80% of their distinct words (Jaccard; small
  edits between the two copies). Matching ids alone would not do: MS MARCO numbers queries and passages
  independently, so nearly every query id is also the id of an unrelated passage, which must stay
  rankable, even when it happens to contain a short query's words.
- ``true``: drop every hit whose id equals its query's id (BEIR's ``ignore_identical_ids``).
- ``false``: drop nothing.
"""

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

RULES = ("auto", True, False)
SAME_TEXT_WORD_SHARE = 0.8


def normalized(text: str) -> str:
    return " ".join(text.lower().split())


def is_same_text(query: str, passage: str) -> bool:
    """Whether ``passage`` is the query's own text, allowing for a title and small edits between copies."""
    query, passage = normalized(query), normalized(passage)
    if query and query in passage and len(passage) <= 2 * len(query):
        return True
    query_words, passage_words = set(query.split()), set(passage.split())
    union = query_words | passage_words
    return bool(union) and len(query_words & passage_words) >= SAME_TEXT_WORD_SHARE * len(union)


def self_hit_queries(rule: str | bool, queries: Mapping[str, str], corpus: Mapping[str, str]) -> tuple[set[str], str]:
    """The ids of the queries whose own id is dropped from their ranking, and a sentence saying why.

    ``corpus`` needs to hold only the passages whose id is a query id (mining reads just those).
    """
    if rule not in RULES:
        raise ValueError(f"remove_self_hits={rule!r} is not one of auto, true, false")
    shared = {query_id for query_id in queries if query_id in corpus}
    if rule is False or not shared:
        return set(), f"remove_self_hits={str(rule).lower()}: {len(shared)} query ids are corpus ids, none dropped"
    if rule is True:
        return (
            shared,
            f"remove_self_hits=true: {len(shared)} query ids are corpus ids, each dropped from its own ranking",
        )
    same_text = {q for q in shared if is_same_text(queries[q], corpus[q])}
    reason = (
        f"remove_self_hits=auto: {len(same_text)} of {len(queries)} queries are corpus passages (same id, "
        "passage holds the query text), so their own passage is dropped from their ranking"
    )
    if len(shared) > len(same_text):
        reason += (
            f"; {len(shared) - len(same_text)} more query ids are ids of passages with other text, kept "
            "(remove_self_hits=true drops them too, as BEIR does)"
        )
    return same_text, reason


def without_self_hit(query_id: str, hits: list[tuple], self_queries: set[str]) -> list[tuple]:
    """``hits`` ([(corpus id, ...), ...]) without the query's own id when ``self_queries`` holds the query."""
    if query_id not in self_queries:
        return hits
    return [hit for hit in hits if hit[0] != query_id]
