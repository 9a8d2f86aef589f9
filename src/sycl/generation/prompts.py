"""Chat prompts for multi-level passage generation, read from ``conf/prompts/*.yaml`` (no prompt text in code).

A prompt file holds the level definitions, a system message and a user template with ``$``-placeholders
(``string.Template``, so the JSON example in a prompt needs no escaping): ``$query``, ``$levels`` (every
definition, one per line), and in per-level prompts ``$level`` and ``$definition``.
"""

from dataclasses import dataclass
from string import Template

LEVELS = (3, 2, 1, 0)
"""The relevance levels, best first (the TREC Deep Learning scale)."""

MODES = ("all_levels", "per_level")
PLACEHOLDERS = {"all_levels": ("query", "levels"), "per_level": ("query", "levels", "level", "definition")}


@dataclass
class PromptTemplate:
    """Renders the chat messages of one request.

    ``mode="all_levels"``: one request asks for every level and the answer is a JSON object keyed
    "3", "2", "1", "0". ``mode="per_level"``: one request per level and the answer is the passage text.
    """

    mode: str
    system: str
    user: str
    levels: dict

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"prompts.mode={self.mode!r} is not one of {MODES}")
        self.levels = {int(level): str(text).strip() for level, text in self.levels.items()}
        if sorted(self.levels) != sorted(LEVELS):
            raise ValueError(f"prompts.levels must define exactly the levels {LEVELS}, got {sorted(self.levels)}")
        # Render once with every placeholder so that a typo fails at start-up, naming the field.
        try:
            self.messages("query", (3,) if self.mode == "per_level" else LEVELS)
        except (KeyError, ValueError) as error:
            allowed = ", ".join("$" + name for name in PLACEHOLDERS[self.mode])
            raise ValueError(
                f"prompts.user: bad placeholder {error} (allowed in mode {self.mode!r}: {allowed}; write $$ for a $)"
            ) from None

    @property
    def answers_json(self) -> bool:
        """Whether the answer is a JSON object of levels (else plain passage text)."""
        return self.mode == "all_levels"

    def messages(self, query: str, levels: tuple[int, ...]) -> list[dict]:
        """The chat for one request: passages of ``levels`` (all four, or one in per-level mode) for ``query``."""
        values = {"query": query.strip(), "levels": "\n".join(f"{lv}: {self.levels[lv]}" for lv in LEVELS)}
        if self.mode == "per_level":
            (level,) = levels
            values.update(level=str(level), definition=self.levels[level])
        chat = [{"role": "system", "content": self.system.strip()}] if self.system.strip() else []
        return chat + [{"role": "user", "content": Template(self.user.strip()).substitute(values)}]
