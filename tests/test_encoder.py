"""Pooling, tokenization, and exports that transformers and sentence-transformers load identically."""

import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel

from sycl.data.collator import GroupCollator
from sycl.models import DualEncoder, pool

TEXTS = ["how long to boil an egg", "Hard-boiled eggs need about ten minutes in boiling water, then cold water."]


def test_pooling_modes_against_direct_computation():
    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert torch.allclose(pool(hidden, mask, "mean")[0], hidden[0, :3].mean(0))
    assert torch.allclose(pool(hidden, mask, "cls"), hidden[:, 0])
    assert torch.equal(pool(hidden, mask, "last"), torch.stack([hidden[0, 2], hidden[1, 4]]))
    left_padded = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert torch.equal(pool(hidden, left_padded, "last")[0], hidden[0, 4])
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        pool(hidden, mask, "max")


def test_collator_pads_to_the_longest_in_the_batch_not_to_max_length(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=64)
    items = [
        {"query_id": "a", "query": "short", "passages": ["one two", "three"], "labels": [3.0, 0.0]},
        {
            "query_id": "b",
            "query": "a somewhat longer query " * 10,
            "passages": ["four five six", "x"],
            "labels": [2, 1],
        },
    ]
    batch = GroupCollator(encoder.tokenization)(items)
    assert batch["query"]["input_ids"].shape == (2, 16)  # the long query is truncated at query_max_length
    assert batch["passages"]["input_ids"].shape == (4, 5)  # [CLS] four five six [SEP]: the longest passage
    assert batch["labels"].shape == (2, 2) and batch["labels"].dtype == torch.float32
    assert batch["passages"]["attention_mask"].sum(1).tolist() == [4, 3, 5, 3]


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False), ("last", False)])
def test_export_loads_in_transformers_and_sentence_transformers_with_same_embeddings(
    tmp_path, tiny_model_path, pooling, normalize
):
    encoder = DualEncoder.from_pretrained(
        tiny_model_path, pooling=pooling, normalize=normalize, query_prefix="query: ", passage_prefix="passage: "
    ).eval()
    encoder.save_pretrained(tmp_path / "model")
    with torch.no_grad():
        queries = encoder.encode_queries(**encoder.tokenization.queries(TEXTS))
        passages = encoder.encode_passages(**encoder.tokenization.passages(TEXTS))
    st_model = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    torch.testing.assert_close(st_model.encode_query(TEXTS, convert_to_tensor=True), queries, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(st_model.encode_document(TEXTS, convert_to_tensor=True), passages, atol=1e-5, rtol=1e-4)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "model"), torch.nn.Module)
    reloaded = DualEncoder.from_pretrained(str(tmp_path / "model")).eval()  # no settings repeated
    assert reloaded.settings == encoder.settings
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encode_queries(**reloaded.tokenization.queries(TEXTS)), queries)


def test_separate_towers_are_trained_and_exported_apart(tmp_path, tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, shared=False)
    assert encoder.passage_model is not None and encoder.passage_model is not encoder.query_model
    with torch.no_grad():
        for parameter in encoder.passage_model.parameters():
            parameter.add_(0.1)
    encoder.save_pretrained(tmp_path / "model")
    reloaded = DualEncoder.from_pretrained(str(tmp_path / "model")).eval()
    batch = encoder.tokenization.passages(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encode_passages(**batch), encoder.eval().encode_passages(**batch))
        assert not torch.allclose(reloaded.encode_queries(**batch), reloaded.encode_passages(**batch))


def test_bundled_minilm_matches_its_sentence_transformers_embeddings(minilm_path):
    encoder = DualEncoder.from_pretrained(minilm_path, normalize=True).eval()
    with torch.no_grad():
        ours = encoder.encode_passages(**encoder.tokenization.passages(TEXTS))
    theirs = SentenceTransformer(minilm_path, device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_unreachable_hub_model_gives_one_clear_error():
    with pytest.raises(OSError, match=r"could not load model 'facebook/contriever'.*model.name_or_path"):
        DualEncoder.from_pretrained("facebook/contriever")
