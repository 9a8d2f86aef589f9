"""Every loader the README names for an exported ``model/`` gives the project's embeddings, long inputs included.

The lengths are small so that one query and one passage of each pair are cut: an export that loses a
truncation length (or a prefix, the pooling, the normalisation, a tower) embeds them differently.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from sycl.evaluation.encoding import encode_texts
from sycl.models import DualEncoder, pool
from sycl.models.dual_encoder import PASSAGE_ENCODER_DIR, SETTINGS_FILE

QUERY_MAX_LENGTH, PASSAGE_MAX_LENGTH = 8, 16
QUERIES = ["boil an egg", "how many minutes should a large hen egg boil before it is hard all the way through"]
PASSAGES = [
    "Ten minutes.",
    "Hard-boiled eggs need about ten minutes in boiling water, then a bowl of cold water so that the shell "
    "comes off cleanly and the yolk keeps its colour.",
]


def plain_transformers_embeddings(folder, texts: list[str], kind: str) -> torch.Tensor:
    """The README's recipe for plain transformers: settings from sycl_encoder.json, AutoModel, then pooling."""
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    tower = folder if kind == "query" or settings["shared"] else folder / PASSAGE_ENCODER_DIR
    prefix = settings["query_prefix"] if kind == "query" else settings["passage_prefix"]
    max_length = settings["query_max_length"] if kind == "query" else settings["passage_max_length"]
    tokenizer = AutoTokenizer.from_pretrained(tower)
    model = AutoModel.from_pretrained(tower).eval()
    batch = tokenizer(
        [prefix + t for t in texts], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    embeddings = pool(hidden, batch["attention_mask"], settings["pooling"])
    return F.normalize(embeddings, dim=-1) if settings["normalize"] else embeddings


def assert_same_embeddings(theirs: torch.Tensor, ours: torch.Tensor, loader: str) -> None:
    cosine = F.cosine_similarity(theirs.float(), ours, dim=-1)
    assert cosine.min() > 1 - 1e-5, f"{loader}: cosine {cosine.tolist()} to the project's embeddings"
    # Dot-product models (normalize=False) also need the same norms.
    torch.testing.assert_close(theirs.float(), ours, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "shared,pooling,normalize", [(True, "mean", True), (True, "cls", False), (False, "mean", True)]
)
def test_every_loader_reproduces_query_and_passage_embeddings(tmp_path, tiny_model_path, shared, pooling, normalize):
    encoder = DualEncoder.from_pretrained(
        tiny_model_path,
        pooling=pooling,
        normalize=normalize,
        query_prefix="query: ",
        passage_prefix="passage: ",
        query_max_length=QUERY_MAX_LENGTH,
        passage_max_length=PASSAGE_MAX_LENGTH,
        shared=shared,
    )
    if not shared:  # towers that differ, so a loader that uses the wrong one is caught
        with torch.no_grad():
            for parameter in encoder.passage_model.parameters():
                parameter.add_(0.05)
    tokenizer = encoder.tokenization.tokenizer
    assert len(tokenizer("query: " + QUERIES[1])["input_ids"]) > QUERY_MAX_LENGTH
    assert len(tokenizer("passage: " + PASSAGES[1])["input_ids"]) > PASSAGE_MAX_LENGTH
    folder = tmp_path / "model"
    encoder.save_pretrained(folder)
    ours = {
        kind: encode_texts(encoder, texts, kind, device="cpu", progress=False)
        for kind, texts in (("query", QUERIES), ("passage", PASSAGES))
    }

    reloaded = DualEncoder.from_pretrained(str(folder))
    st_model = SentenceTransformer(str(folder), device="cpu")
    for kind, texts in (("query", QUERIES), ("passage", PASSAGES)):
        assert_same_embeddings(
            encode_texts(reloaded, texts, kind, device="cpu", progress=False),
            ours[kind],
            f"DualEncoder.from_pretrained {kind}",
        )
        assert_same_embeddings(plain_transformers_embeddings(folder, texts, kind), ours[kind], f"AutoModel {kind}")
    assert_same_embeddings(st_model.encode_query(QUERIES, convert_to_tensor=True), ours["query"], "encode_query")
    assert_same_embeddings(
        st_model.encode_document(PASSAGES, convert_to_tensor=True), ours["passage"], "encode_document"
    )


def test_shared_tower_is_exported_once_and_separate_towers_twice(tmp_path, tiny_model_path):
    for shared in (True, False):
        folder = tmp_path / f"shared_{shared}"
        DualEncoder.from_pretrained(tiny_model_path, shared=shared).save_pretrained(folder)
        weights = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
        assert weights == (
            ["model.safetensors"] if shared else ["model.safetensors", "passage_encoder/model.safetensors"]
        )


def test_sentence_transformers_folder_per_task_lengths_are_read(tmp_path, tiny_model_path):
    """A sentence-transformers folder (no sycl_encoder.json) with query_length / document_length keeps them."""
    folder = tmp_path / "model"
    DualEncoder.from_pretrained(tiny_model_path, query_max_length=12, passage_max_length=40).save_pretrained(folder)
    (folder / SETTINGS_FILE).unlink()
    settings = DualEncoder.from_pretrained(str(folder)).settings
    assert (settings.query_max_length, settings.passage_max_length) == (12, 40)
