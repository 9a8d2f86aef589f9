"""A local stand-in for the Hugging Face Hub's file endpoint, for tests that download through huggingface_hub.

It answers what ``hf_hub_download`` asks (HEAD, then GET, of ``/datasets/<org>/<name>/resolve/<revision>/<path>``)
with the headers the Hub sends: the commit the revision resolved to, the file's ETag and size. Every request is
counted, so a test can check how often a file was asked for and downloaded. Point HF_ENDPOINT at ``server.url``.
"""

import hashlib
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeHub:
    """Serves ``files[(repo_id, path_in_repo)] = bytes`` at one commit per repository, ``main`` resolving to it."""

    def __init__(self, files: dict[tuple[str, str], bytes], commits: dict[str, str]):
        self.files, self.commits = files, commits
        self.downloads: Counter = Counter()  # GETs served, by (repo id, path)
        self.requests: Counter = Counter()  # every HEAD or GET, by (method, repo id, path)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.answer(send_body=False)

            def do_GET(self):
                self.answer(send_body=True)

            def answer(self, send_body: bool):
                found = hub.lookup(unquote(self.path.split("?")[0]))
                if isinstance(found, str):  # the Hub's error code, as its X-Error-Code header carries it
                    self.send_response(404)
                    self.send_header("X-Error-Code", found)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                repo_id, path, commit, content = found
                hub.requests[(self.command, repo_id, path)] += 1
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if send_body:
                    hub.downloads[(repo_id, path)] += 1
                    self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def lookup(self, url_path: str) -> tuple[str, str, str, bytes] | str:
        """(repo id, path, commit, bytes) for ``/datasets/<org>/<name>/resolve/<revision>/<path>``, else the
        Hub's error code."""
        parts = url_path.strip("/").split("/")
        if len(parts) < 6 or parts[0] != "datasets" or parts[3] != "resolve":
            return "RepoNotFound"
        repo_id, revision, path = f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:])
        commit = self.commits.get(repo_id)
        if commit is None:
            return "RepoNotFound"
        if revision not in ("main", commit):
            return "RevisionNotFound"
        if (repo_id, path) not in self.files:
            return "EntryNotFound"
        return repo_id, path, commit, self.files[(repo_id, path)]

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
