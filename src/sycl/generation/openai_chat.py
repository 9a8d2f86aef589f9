"""Chat completions from any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp, OpenAI) over HTTP."""

import asyncio
import logging
import os
import random
import time

import httpx

from sycl.generation.chat import Completion, ServerError
from sycl.generation.servers import ServerPool

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}
# Statuses that mean the setup is wrong (URL, key, model name): every other request would get the same.
FATAL_STATUS = {401, 403, 404}


class OpenAIChat:
    """POSTs ``{base_url}/chat/completions`` with ``concurrency`` requests in flight per server.

    ``base_url`` is one URL or a list: each request goes to the server with the fewest in flight, and a
    request a server failed is asked again at another (``sycl.generation.servers``).
    Connection errors, timeouts, 408/409/429 and 5xx are retried ``max_retries`` times, at once on another
    server when one is free, else with exponential backoff and jitter (a server's ``Retry-After`` is
    honoured, up to ``max_backoff_s``). A refused connection or an unknown host before a server has ever
    answered means no server there: when that holds for every server, it is reported at once rather than
    after a minute of retries. 401, 403 and 404 (key, URL or model rejected) rule a server out; with none
    left the request fails as fatal.
    The API key is read from the environment variable named ``api_key_env`` and kept only in the
    request headers: it is in no config, log or output file. ``sampling`` goes into every request body
    as is (temperature, top_p, max_tokens, seed, response_format, ...).
    """

    batch_size = 1

    def __init__(
        self,
        base_url: str | list[str],
        model: str,
        api_key_env: str | None = "SYCL_API_KEY",
        concurrency: int = 64,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 5,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        sampling: dict | None = None,
    ):
        if concurrency < 1:
            raise ValueError(f"generator.concurrency must be >= 1, got {concurrency}")
        self.pool = ServerPool(base_url, initial_backoff_s, max_backoff_s)
        self.model = model
        self.parallel = concurrency * len(self.pool)
        self.max_retries = max_retries
        self.initial_backoff_s, self.max_backoff_s = initial_backoff_s, max_backoff_s
        self.sampling = dict(sampling or {})
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.AsyncClient | None = None
        # httpx logs every request at INFO: millions of lines in a large run. Failures reach the report.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def __repr__(self) -> str:
        urls = [server.url for server in self.pool.servers]
        where = f"url={urls[0]!r}" if len(urls) == 1 else f"urls={urls!r}"
        return f"OpenAIChat({where}, model={self.model!r}, concurrency={self.parallel})"

    async def complete(self, chats: list[list[dict]]) -> list[Completion]:
        return [await self._request(chat) for chat in chats]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _request(self, messages: list[dict]) -> Completion:
        if self._client is None:  # created here so that it belongs to the running event loop
            limits = httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel)
            self._client = httpx.AsyncClient(timeout=self._timeout, limits=limits, headers=self._headers)
        body = {"model": self.model, "messages": messages, **self.sampling}
        attempt = 0
        server = self.pool.choose()
        while True:
            retry_after = None
            server.in_flight += 1
            try:
                response = await self._client.post(server.url, json=body)
            except httpx.TransportError as error:
                fatal = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                reason = str(error) or type(error).__name__
                if isinstance(error, httpx.ConnectError) and not server.answered:
                    server.refused = connect_failure(error)
                    if self.pool.none_reachable():
                        hint = "start one (README, 'With vLLM') or set generator.base_url"
                        message = f"no server at {self.pool.describe_refusals()}: {hint}"
                        raise ServerError(message, attempt + 1, unreachable=True) from None
                if fatal:
                    failure = f"could not connect ({reason})"
                elif isinstance(error, httpx.TimeoutException):
                    failure = f"no answer within generator.timeout_s={self._timeout.read} s ({type(error).__name__})"
                else:
                    failure = f"connection failed ({reason})"
                retryable = True
            else:
                server.answered, server.refused = True, None  # it is up: a refusal later is a restart
                if response.status_code == 200:
                    try:
                        completion = read_completion(response.json(), server_retries=attempt)
                    except (ValueError, KeyError, IndexError, TypeError) as error:
                        failure, retryable, fatal = f"malformed response body ({error})", True, False
                    else:
                        self.pool.succeeded(server)
                        return completion
                else:
                    status = response.status_code
                    failure = f"HTTP {status}: {response.text.strip()[:300]}"
                    retryable, fatal = status in RETRYABLE_STATUS or status >= 500, status in FATAL_STATUS
                    retry_after = response.headers.get("retry-after")
            finally:
                server.in_flight -= 1
            failure = f"{server.url}: {failure}"
            if fatal and not retryable:  # this server cannot serve the run: the others may
                if server.rejected is None:
                    server.rejected = failure
                    if self.pool.usable():
                        log.warning("%s; its requests go to the other servers for the rest of the run", failure)
                retryable = bool(self.pool.usable())
            if not retryable or attempt == self.max_retries:
                raise ServerError(f"{failure} (after {attempt + 1} attempts)", attempt + 1, fatal)
            self.pool.failed(server)
            server = self.pool.choose(avoid=server)
            if not server.ready(time.monotonic()):  # no other server free: give this one time to recover
                await asyncio.sleep(self._backoff(attempt, retry_after))
            attempt += 1

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """initial * 2^attempt with jitter (so that many clients do not retry in lockstep), capped."""
        delay = self.initial_backoff_s * 2**attempt * random.uniform(0.5, 1.0)
        if retry_after and retry_after.strip().isdigit():  # the HTTP-date form is rare: our own backoff then
            delay = max(delay, float(retry_after))
        return min(delay, self.max_backoff_s)


def connect_failure(error: httpx.ConnectError) -> str:
    """Why a connection failed, in words: "connection refused" when it was (the async client's own message
    then is the vaguer "All connection attempts failed"), else the error's message (e.g. an unknown host)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


def read_completion(payload: dict, server_retries: int) -> Completion:
    """The first choice of a chat-completions response body.

    Only ``content`` is the answer: ``reasoning_content`` (or ``reasoning``), which servers with a
    reasoning parser return apart, is the model's thinking and may hold a draft answer.
    """
    choice = payload["choices"][0]
    usage = payload.get("usage") or {}
    return Completion(
        text=choice["message"].get("content") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        server_retries=server_retries,
    )
