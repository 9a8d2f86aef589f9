"""Files named by Hugging Face Hub URIs, resolved into the standard HF cache with huggingface_hub.

Wherever the project accepts a file path it also accepts ``hf://datasets/<org>/<name>[@<revision>]/<path in
repo>``, the form the SyCL reference names its data with (its data_configs/*.json). The URI is parsed by
``huggingface_hub.parse_hf_uri`` and the file fetched by ``hf_hub_download`` into the cache that HF_HOME (or
HF_HUB_CACHE) names; HF_TOKEN and HF_HUB_OFFLINE are honoured by huggingface_hub itself, and the token is
never passed through this module, so it never reaches a log or a saved config. Without ``@<revision>`` the
repository's current ``main`` is used; either way the commit actually read is returned and recorded
(``fetched_files``), so a run can say which upstream version it trained or evaluated on.

A file that is neither in the cache nor downloadable (offline, private, misspelt) raises
``HubFileUnavailable``, a ``FileNotFoundError`` naming the URI and the ``hf download`` command that puts it in
the cache.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, parse_hf_uri
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

log = logging.getLogger(__name__)

SCHEME = "hf://"


@dataclass(frozen=True)
class FetchedFile:
    """A hub file in the local cache: its URI as given, its local path and the commit it was read at."""

    uri: str
    path: Path
    commit: str


class HubFileUnavailable(FileNotFoundError):
    """An ``hf://`` file that is not in the local HF cache and could not be downloaded."""


# Every file fetched in this process, by URI: what a run records as the data it read.
_fetched: dict[str, FetchedFile] = {}


def is_hub_uri(path: object) -> bool:
    """Whether ``path`` is an ``hf://`` URI (a ``str``; a ``Path`` would have folded its ``//``)."""
    return isinstance(path, str) and path.startswith(SCHEME)


def fetch(uri: str, local_only: bool = False) -> FetchedFile:
    """Download ``uri`` into the HF cache (or find it there) and return where it is and at which commit.

    ``local_only`` never touches the network: what a non-zero DDP rank does after rank 0 fetched. Raises
    ``huggingface_hub.errors.HfUriError`` (a ValueError) for a malformed URI or one without a file path, and
    ``HubFileUnavailable`` when the file is neither cached nor downloadable.
    """
    parsed = parse_hf_uri(uri)
    if not parsed.path_in_repo or parsed.is_bucket:
        raise ValueError(f"{uri}: name a file inside a repository, as hf://datasets/<org>/<name>[@<revision>]/<path>")
    try:
        local = Path(
            hf_hub_download(
                parsed.id,
                parsed.path_in_repo,
                repo_type=parsed.type,
                revision=parsed.revision,
                local_files_only=local_only,
            )
        )
    except (EntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise HubFileUnavailable(unavailable_message(uri, parsed, local_only, error)) from None
    fetched = FetchedFile(uri, local, commit_of(local, parsed.revision))
    if _fetched.get(uri) != fetched:
        log.info("%s: commit %s, %s", uri, fetched.commit, local)
    _fetched[uri] = fetched
    return fetched


def local_path(path: str | Path, local_only: bool = False) -> Path:
    """``path`` as a local file: an ``hf://`` URI is fetched (see ``fetch``), anything else is returned as is."""
    return fetch(path, local_only).path if is_hub_uri(path) else Path(path)


def fetched_files() -> dict[str, str]:
    """{URI: commit} of every hub file this process has read: the upstream versions a run used."""
    return {uri: fetched.commit for uri, fetched in sorted(_fetched.items())}


def commit_of(local: Path, revision: str | None) -> str:
    """The commit a cached file belongs to: the cache stores it under ``snapshots/<commit>/<path in repo>``."""
    parts = local.parts
    if "snapshots" in parts and parts.index("snapshots") + 1 < len(parts):
        return parts[parts.index("snapshots") + 1]
    return revision or "unknown"


def prefetch_command(parsed) -> str:
    """The ``hf`` command (huggingface_hub's CLI) that puts the file of a parsed URI in the cache."""
    command = f"hf download {parsed.id} {parsed.path_in_repo} --repo-type {parsed.type}"
    return command + (f" --revision {parsed.revision}" if parsed.revision else "")


def unavailable_message(uri: str, parsed, local_only: bool, error: Exception) -> str:
    """Why ``uri`` could not be read, and what to do: fetch it elsewhere, or fix the URI or the token."""
    where = f"{parsed.id} at {parsed.revision or 'main'}"
    if isinstance(error, RevisionNotFoundError):
        return f"{uri}: {parsed.type} repository {parsed.id} has no revision {parsed.revision!r}"
    if isinstance(error, RepositoryNotFoundError):
        return f"{uri}: no {parsed.type} repository {parsed.id} (or it is private or gated: set HF_TOKEN)"
    if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
        return f"{uri}: {where} has no file {parsed.path_in_repo}"
    if constants.is_offline_mode():
        why = "HF_HUB_OFFLINE is set"
    elif local_only:
        why = "only the local cache was searched"
    else:
        why = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
    return (
        f"{uri} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and was not downloaded: {why}. "
        f"Fetch it where the Hub is reachable, with the same HF_HOME: `{prefetch_command(parsed)}`"
    )
