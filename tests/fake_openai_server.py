"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for the generation tests.

The test gives it a function ``Call -> Reply``, so each test scripts well-formed, malformed, partial
and failing answers (HTTP errors, dropped connections, bodies that are not JSON). The server records
every call and the most requests it had in flight at once. It reads the query (and, for per-level
prompts, the level) out of the prompt text, using the lines the prompt files in conf/prompts/ write.
"""

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

QUERY_LINE = re.compile(r"^Search query: (.*)$", re.MULTILINE)
LEVEL_LINE = re.compile(r"at relevance level (\d)")
FILLER = [
    *("harbor", "lantern", "copper", "meadow", "violin", "glacier", "orchard", "canyon", "ember", "saffron"),
    *("compass", "quartz", "willow", "thunder", "marble", "pepper", "falcon", "river", "cobalt", "lagoon"),
    *("pebble", "cedar", "prism", "tundra", "basil"),
]


@dataclass
class Call:
    """One request as the server saw it; ``attempt`` counts the requests for this query and level so far."""

    query: str
    level: int | None
    attempt: int
    body: dict
    authorization: str | None


@dataclass
class Reply:
    """What to answer: a chat completion with ``content``, or ``status`` + raw ``body``, or a dropped connection."""

    content: str | None = None
    status: int = 200
    body: str | None = None
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    finish_reason: str = "stop"


def passage(query: str, level: int, variant: int = 0, words: int = 30) -> str:
    """A distinct passage for (query, level, variant) that does not copy the query."""
    tag = hashlib.sha1(f"{query}|{level}|{variant}".encode()).hexdigest()[:10]
    filler = [FILLER[(i * (level + 2) + variant) % len(FILLER)] for i in range(words - 2)]
    return f"Record {tag} " + " ".join(filler) + "."


def json_answer(query: str, variant: int = 0, levels=(3, 2, 1, 0)) -> str:
    return json.dumps({str(level): passage(query, level, variant) for level in levels})


def good_answer(call: Call) -> Reply:
    """A well-formed answer for either prompt mode; each repeat of a request gets new text (as sampling would)."""
    if call.level is not None:
        return Reply(content=passage(call.query, call.level, call.attempt))
    return Reply(content=json_answer(call.query, call.attempt))


class FakeOpenAIServer:
    """Serves POST /v1/chat/completions on 127.0.0.1 (a free port) in a background thread; use as a context."""

    def __init__(self, answer: Callable[[Call], Reply] = good_answer):
        self.answer = answer
        self.calls: list[Call] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._attempts: Counter = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def queries_asked(self) -> Counter:
        with self._lock:
            return Counter(call.query for call in self.calls)

    def _record(self, body: dict, authorization: str | None) -> Call:
        prompt = body["messages"][-1]["content"]
        query = QUERY_LINE.search(prompt).group(1)
        level = LEVEL_LINE.search(prompt)
        level = int(level.group(1)) if level else None
        with self._lock:
            self._attempts[query, level] += 1
            call = Call(query, level, self._attempts[query, level], body, authorization)
            self.calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return call

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                call = server._record(body, self.headers.get("Authorization"))
                try:
                    self._answer(call, server.answer(call))
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, call: Call, reply: Reply):
                if reply.delay_s:
                    threading.Event().wait(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    return
                payload = reply.body
                if payload is None:
                    payload = json.dumps(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "model": call.body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.content},
                                    "finish_reason": reply.finish_reason,
                                }
                            ],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                        }
                    )
                data = payload.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
