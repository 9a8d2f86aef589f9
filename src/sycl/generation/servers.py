"""Which of several OpenAI-compatible servers takes the next request, and how a failing one is steered around.

Each request goes to the usable server with the fewest requests in flight, so a faster server takes more.
A server that failed a request (refused or dropped connection, timeout, 429, 5xx) rests with exponential
backoff and, until it answers again, takes one new request at a time and no retries: a hung server then
holds one request, not a burst of them, each for ``timeout_s``, and a retry goes to a server that is not
failing. One that rejected the setup (401, 403, 404: key, URL or model) is left out for the rest of the
run. With one server, every request and every retry goes to it.
"""

import random
import time
from dataclasses import dataclass

from sycl.generation.chat import ServerError


@dataclass(eq=False)
class Server:
    """One server's state. ``answered``: it has answered at least once (a refusal after that is a restart)."""

    base_url: str
    in_flight: int = 0
    answered: bool = False
    failures_in_a_row: int = 0
    resting_until: float = 0.0  # time.monotonic()
    refused: str | None = None  # why it could not be reached, while it never answered
    rejected: str | None = None  # the answer that ruled it out for the run

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def ready(self, now: float) -> bool:
        """Free to take a request now: not rejected, not resting, and, after a failure, not already probed."""
        return (
            self.rejected is None and self.resting_until <= now and (self.failures_in_a_row == 0 or self.in_flight == 0)
        )


class ServerPool:
    """The servers of ``generator.base_url`` (one URL or a list) and the choice among them."""

    def __init__(self, base_urls: str | list[str], initial_backoff_s: float, max_backoff_s: float):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("generator.base_url is an empty list: give one URL or a list of them")
        self.servers = [Server(url.rstrip("/")) for url in urls]
        self.initial_backoff_s, self.max_backoff_s = initial_backoff_s, max_backoff_s
        self._turn = 0  # breaks ties in turn, so that idle servers share the first requests

    def __len__(self) -> int:
        return len(self.servers)

    def choose(self, avoid: Server | None = None) -> Server:
        """The ready server with the fewest in flight. For a retry, ``avoid`` is the server that just failed it:
        then a server that is not failing comes first (a new request may probe a failing one, a retry does not,
        so that one request does not run out of retries going from one failing server to the next), then any
        other ready one.

        When none is ready, the usable one whose rest ends first (``avoid`` last): the caller waits its
        backoff before sending, as with a single server. ``ServerError`` (fatal) when every server was ruled out.
        """
        now = time.monotonic()
        usable = self.usable()
        if not usable:  # a request started while the last server was being ruled out
            rejections = "; ".join(server.rejected for server in self.servers)
            raise ServerError(f"every server of generator.base_url was ruled out: {rejections}", 1, fatal=True)
        ready = [s for s in usable if s.ready(now)]
        if avoid is not None:
            others = [s for s in ready if s is not avoid]
            ready = [s for s in others if s.failures_in_a_row == 0] or others or ready
        self._turn += 1
        if ready:
            return min(ready, key=lambda s: (s.in_flight, (self.servers.index(s) - self._turn) % len(self.servers)))
        return min(usable, key=lambda s: (s is avoid, s.resting_until, s.in_flight))

    def usable(self) -> list[Server]:
        return [server for server in self.servers if server.rejected is None]

    def succeeded(self, server: Server) -> None:
        server.failures_in_a_row, server.resting_until = 0, 0.0

    def failed(self, server: Server) -> None:
        """Rest ``server`` for initial * 2^(failures in a row - 1), with jitter, capped at max_backoff_s."""
        server.failures_in_a_row += 1
        # Every request in flight at an outage counts a failure: the exponent is capped so that it stays a float.
        doublings = min(server.failures_in_a_row - 1, 30)
        rest = self.initial_backoff_s * 2**doublings * random.uniform(0.5, 1.0)
        server.resting_until = time.monotonic() + min(rest, self.max_backoff_s)

    def none_reachable(self) -> bool:
        """Every server refused its first connections and none has ever answered: there is no server at all."""
        return all(server.refused is not None and not server.answered for server in self.servers)

    def describe_refusals(self) -> str:
        """E.g. "http://a/v1 (connection refused) nor at http://b/v1 (connection refused)"."""
        return " nor at ".join(f"{server.base_url} ({server.refused})" for server in self.servers)
