"""Runs the pending requests: many in flight, bad answers asked again, every accepted answer journaled at once."""

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from tqdm import tqdm

from sycl.generation.chat import ChatBackend, Completion, ServerError
from sycl.generation.errors import GenerationError
from sycl.generation.journal import Journal
from sycl.generation.parsing import AnswerParser, BadAnswer
from sycl.generation.prompts import PromptTemplate
from sycl.generation.work import WorkUnit, journal_record

RESUME = "Finished requests are kept in the journal: run the same command again to resume."


@dataclass
class RunStats:
    """What one run did; ``failed`` maps a query id to (reason kind, detail) of the request that gave up."""

    requests: int = 0
    backend_calls: int = 0
    server_retries: int = 0
    answer_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests_without_usage: int = 0
    completed: int = 0
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    rejected_answers: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def count_usage(self, completion: Completion) -> None:
        self.server_retries += completion.server_retries
        if completion.prompt_tokens is None and completion.completion_tokens is None:
            self.requests_without_usage += 1
        self.prompt_tokens += completion.prompt_tokens or 0
        self.completion_tokens += completion.completion_tokens or 0


class Scheduler:
    """Hands units to ``backend.parallel`` workers, ``backend.batch_size`` units per call; one scheduler, one run.

    An answer the parser rejects is asked again (ahead of new work) up to ``max_attempts`` times, then
    its query is failed and its remaining units are skipped. A request the server failed after all
    its retries fails its query; ``max_consecutive_server_failures`` of those in a row, or one fatal
    failure (cannot connect, key or model rejected), stop the run with ``GenerationError``.
    """

    def __init__(
        self,
        backend: ChatBackend,
        prompt: PromptTemplate,
        parser: AnswerParser,
        journal: Journal,
        queries: dict[str, str],
        max_attempts: int = 3,
        max_consecutive_server_failures: int = 10,
        progress: bool = True,
    ):
        self.backend, self.prompt, self.parser, self.journal = backend, prompt, parser, journal
        self.queries = queries
        self.max_attempts, self.max_consecutive_server_failures = max_attempts, max_consecutive_server_failures
        self.progress = progress
        self.stats = RunStats()
        self._queue: deque[tuple[WorkUnit, int]] = deque()  # (unit, attempt number)
        self._units_left: Counter = Counter()
        self._server_failures_in_a_row = 0
        self._bar: tqdm | None = None

    def run(self, units: list[WorkUnit]) -> RunStats:
        """Make every request of ``units``; returns when each of their queries is complete or failed."""
        return asyncio.run(self._run(units))

    async def _run(self, units: list[WorkUnit]) -> RunStats:
        self._queue.extend((unit, 1) for unit in units)
        self._units_left.update(unit.query_id for unit in units)
        self._bar = tqdm(total=len(self._units_left), unit="query", desc="generate", disable=not self.progress)
        started = time.monotonic()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.backend.parallel)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.backend.aclose()
            self._bar.close()
            self.stats.seconds = time.monotonic() - started
        return self.stats

    async def _worker(self) -> None:
        # A worker leaves when the queue is empty; a retry is queued by a worker still running, so none is lost.
        while batch := self._take_batch():
            chats = [self.prompt.messages(self.queries[unit.query_id], unit.levels) for unit, _ in batch]
            self.stats.requests += len(batch)
            self.stats.backend_calls += 1
            try:
                completions = await self.backend.complete(chats)
            except ServerError as error:
                self._server_failed(batch, error)
                continue
            self._server_failures_in_a_row = 0
            for (unit, attempt), completion in zip(batch, completions, strict=True):
                self._answered(unit, attempt, completion)

    def _take_batch(self) -> list[tuple[WorkUnit, int]]:
        batch = []
        while self._queue and len(batch) < self.backend.batch_size:
            unit, attempt = self._queue.popleft()
            if unit.query_id not in self.stats.failed:
                batch.append((unit, attempt))
        return batch

    def _answered(self, unit: WorkUnit, attempt: int, completion: Completion) -> None:
        self.stats.count_usage(completion)
        query = self.queries[unit.query_id]
        try:
            passages = self.parser.parse(
                completion.text, unit.levels, query, self.prompt.answers_json, completion.finish_reason
            )
        except BadAnswer as bad:
            self.stats.rejected_answers[bad.kind] += 1
            if attempt < self.max_attempts:
                self.stats.answer_retries += 1
                self._queue.appendleft((unit, attempt + 1))
            else:
                self._fail(unit.query_id, bad.kind, f"{bad} (after {attempt} answers)")
            return
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
        self.journal.append(journal_record(unit, query, passages, attempt, usage))
        self._units_left[unit.query_id] -= 1
        if self._units_left[unit.query_id] == 0 and unit.query_id not in self.stats.failed:
            self.stats.completed += 1
            self._bar.update(1)

    def _server_failed(self, batch: list[tuple[WorkUnit, int]], error: ServerError) -> None:
        # The messages carry the ServerError's: chaining it would print the same failure twice.
        self.stats.server_retries += error.attempts - 1
        if error.unreachable:
            raise GenerationError(str(error)) from None
        if error.fatal:
            raise GenerationError(
                f"{error}. Check generator.base_url, generator.model and the API key. {RESUME}"
            ) from None
        self._server_failures_in_a_row += 1
        if self._server_failures_in_a_row >= self.max_consecutive_server_failures:
            raise GenerationError(
                f"the server failed {self._server_failures_in_a_row} requests in a row after all retries; "
                f"last: {error}. {RESUME}"
            ) from None
        for unit, _ in batch:
            self._fail(unit.query_id, "server_error", str(error))

    def _fail(self, query_id: str, kind: str, detail: str) -> None:
        if query_id not in self.stats.failed:
            self.stats.failed[query_id] = (kind, detail)
            self._bar.update(1)
            self._bar.set_postfix(failed=len(self.stats.failed), refresh=False)
