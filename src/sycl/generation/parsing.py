"""Reading passages out of an LLM answer, and rejecting answers that would make bad training data."""

import json
import re
import unicodedata
from dataclasses import dataclass

FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
LABEL = re.compile(r"^(passage|level\s*\d[^:\n]{0,30}):\s*", re.IGNORECASE)
# The tags reasoning models (DeepSeek-R1 distills, QwQ, Qwen3 thinking) wrap their thinking in when the
# server runs no reasoning parser; a server that does returns it as reasoning_content, which is never read.
REASONING_TAGS = "think|thinking|reasoning"
REASONING_BLOCK = re.compile(rf"<({REASONING_TAGS})>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
REASONING_OPEN = re.compile(rf"<(?:{REASONING_TAGS})>", re.IGNORECASE)
REASONING_CLOSE = re.compile(rf"</(?:{REASONING_TAGS})\s*>", re.IGNORECASE)


class BadAnswer(ValueError):
    """An answer that cannot be used; ``kind`` is a short category for the report, the message says why."""

    def __init__(self, kind: str, detail: str):
        self.kind = kind
        super().__init__(detail)


def normalize_text(text: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form of a text, for dedup and copy checks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def word_count(text: str) -> int:
    return len(text.split())


@dataclass
class AnswerParser:
    """Turns an answer into {level: passage}, tolerating reasoning blocks, code fences and text around the JSON.

    Reasoning (``<think>...</think>`` and the like) is dropped first, so a draft the model wrote while
    thinking is never taken for its answer. Rejects (``BadAnswer``) an answer cut off at the token limit,
    one that is all unfinished reasoning, one without a JSON object, with a level
    missing or not a string, and any passage that is empty, shorter than ``min_words``, longer than
    ``max_words``, a copy of the query, or the same text as another level of the same answer.
    """

    min_words: int = 10
    max_words: int = 250

    def parse(
        self, answer: str, levels: tuple[int, ...], query: str, answers_json: bool, finish_reason: str | None = None
    ) -> dict[int, str]:
        if finish_reason == "length":
            raise BadAnswer("truncated", "the answer was cut off at the token limit (raise max_tokens)")
        answer = answer_after_reasoning(answer)
        passages = self._levels_from_json(answer, levels) if answers_json else {levels[0]: plain_passage(answer)}
        for level, passage in passages.items():
            self._check(level, passage, query)
        seen: dict[str, int] = {}
        for level, passage in passages.items():
            other = seen.setdefault(normalize_text(passage), level)
            if other != level:
                raise BadAnswer("duplicate_levels", f"levels {other} and {level} are the same passage")
        return passages

    def _levels_from_json(self, answer: str, levels: tuple[int, ...]) -> dict[int, str]:
        found = find_json_object(answer)
        if found is None:
            raise BadAnswer("no_json", "no JSON object in the answer")
        by_level = level_keys(found)
        if not by_level and len(found) == 1 and isinstance(next(iter(found.values())), dict):
            by_level = level_keys(next(iter(found.values())))  # {"passages": {"3": ...}}
        missing = [level for level in levels if level not in by_level]
        if missing:
            raise BadAnswer("missing_levels", f"levels {', '.join(map(str, missing))} missing from the JSON object")
        for level in levels:
            if not isinstance(by_level[level], str):
                raise BadAnswer("not_text", f"level {level} is a {type(by_level[level]).__name__}, not a string")
        return {level: by_level[level].strip() for level in levels}

    def _check(self, level: int, passage: str, query: str) -> None:
        if not passage.strip():
            raise BadAnswer("empty", f"level {level} is empty")
        if copies_query(passage, query):
            raise BadAnswer("copies_query", f"level {level} copies the query")
        words = word_count(passage)
        if words < self.min_words:
            raise BadAnswer("too_short", f"level {level} has {words} words (answers.min_words={self.min_words})")
        if words > self.max_words:
            raise BadAnswer("too_long", f"level {level} has {words} words (answers.max_words={self.max_words})")


def answer_after_reasoning(text: str) -> str:
    """``text`` without the model's reasoning: ``<think>``, ``<thinking>`` or ``<reasoning>`` blocks.

    A closing tag without its opening tag (chat templates that put ``<think>`` in the prompt, so the
    answer starts inside the block) drops everything up to it. An opening tag that never closes drops
    everything after it; if nothing is left, the model never got to its answer: ``BadAnswer``.
    """
    text = REASONING_BLOCK.sub("", text)
    closes = list(REASONING_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    unclosed = REASONING_OPEN.search(text)
    if unclosed:
        text = text[: unclosed.start()]
        if not text.strip():
            raise BadAnswer(
                "unfinished_reasoning",
                f"the answer is a {unclosed.group(0)} block that never closes: the model stopped before its answer",
            )
    return text


def find_json_object(text: str) -> dict | None:
    """The first JSON object in ``text`` (inside code fences or prose), or None."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def level_keys(obj: dict) -> dict[int, object]:
    """{"3": x, "level 2": y, ...} -> {3: x, 2: y}: keys holding exactly one digit name a level."""
    levels = {}
    for key, value in obj.items():
        digits = re.findall(r"\d", str(key))
        if len(digits) == 1:
            levels.setdefault(int(digits[0]), value)
    return levels


def plain_passage(answer: str) -> str:
    """The passage of a per-level answer: without code fences, a leading "Passage:" label or wrapping quotes."""
    text = answer.strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    text = LABEL.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def copies_query(passage: str, query: str) -> bool:
    """True when the passage is the query, or the query makes up at least half of the passage's words."""
    passage, query = normalize_text(passage), normalize_text(query)
    if not query:
        return False
    return passage == query or (query in passage and 2 * len(query.split()) >= len(passage.split()))
