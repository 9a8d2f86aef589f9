"""What every chat backend returns, and the error for a request the server never answered."""

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Completion:
    """One answer. Token counts are None when the server does not report usage."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    server_retries: int = 0


class ServerError(RuntimeError):
    """A request that failed at the transport or HTTP level after all its retries.

    ``fatal``: no other request can succeed either (cannot connect; key, URL or model rejected), so
    the run stops instead of failing every query in turn. ``unreachable``: no server has answered at
    all; the message already says what to start or set, and nothing was generated to resume from.
    """

    def __init__(self, message: str, attempts: int, fatal: bool = False, unreachable: bool = False):
        super().__init__(message)
        self.attempts, self.fatal, self.unreachable = attempts, fatal or unreachable, unreachable


class ChatBackend(Protocol):
    """A chat model: ``parallel`` calls of up to ``batch_size`` chats each may be in flight at once."""

    model: str
    batch_size: int
    parallel: int

    async def complete(self, chats: list[list[dict]]) -> list[Completion]: ...

    async def aclose(self) -> None: ...
