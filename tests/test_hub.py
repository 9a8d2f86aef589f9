"""hf:// URIs: resolved by huggingface_hub from a hand-built offline cache, with the commit recorded."""

import logging

import pytest
from huggingface_hub.errors import HfUriError

from sycl import hub
from tests.hub_cache import commit_for, put_file

PINNED = "c5a29a104738b98a9e76336939199e264163d4a0"


def test_a_pinned_uri_reads_the_file_at_that_commit(offline_hub):
    uri = put_file(offline_hub, "mteb/msmarco", "corpus.jsonl", '{"_id": "1", "text": "x"}\n', revision=PINNED)
    assert uri == f"hf://datasets/mteb/msmarco@{PINNED}/corpus.jsonl"
    fetched = hub.fetch(uri)
    assert fetched.path.read_text() == '{"_id": "1", "text": "x"}\n'
    assert fetched.commit == PINNED
    assert hub.fetched_files()[uri] == PINNED


def test_an_unpinned_uri_reads_main_and_records_the_commit_main_named(offline_hub):
    uri = put_file(offline_hub, "BatsResearch/sycl", "llama33_70b/qrels/train.tsv", "query-id\tcorpus-id\tscore\n")
    assert uri == "hf://datasets/BatsResearch/sycl/llama33_70b/qrels/train.tsv"
    assert hub.fetch(uri).commit == commit_for("BatsResearch/sycl")
    assert hub.local_path(uri).name == "train.tsv"


def test_local_paths_pass_through_untouched(tmp_path):
    assert hub.local_path(str(tmp_path / "a.jsonl")) == tmp_path / "a.jsonl"
    assert not hub.is_hub_uri(tmp_path / "hf:" / "x")


def test_a_missing_file_names_the_uri_and_the_command_that_fetches_it(offline_hub, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    put_file(offline_hub, "mteb/msmarco", "corpus.jsonl", "{}\n", revision=PINNED)
    uri = f"hf://datasets/mteb/msmarco@{PINNED}/qrels/dev.tsv"
    with caplog.at_level(logging.DEBUG), pytest.raises(hub.HubFileUnavailable) as raised:
        hub.fetch(uri)
    message = str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    assert uri in message and "HF_HUB_OFFLINE is set" in message
    assert f"hf download mteb/msmarco qrels/dev.tsv --repo-type dataset --revision {PINNED}" in message
    assert "hf_secret_token_value" not in message + caplog.text


def test_a_uri_without_a_file_or_with_a_bad_repo_id_is_refused(offline_hub):
    with pytest.raises(ValueError, match="name a file inside a repository"):
        hub.fetch("hf://datasets/mteb/msmarco")
    with pytest.raises(HfUriError):
        hub.fetch("hf://datasets/only-one-part")
