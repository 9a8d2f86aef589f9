"""Source filters, relabelling, the merge rule, seeded group sampling and the short-group policy."""

import pytest

from sycl.data import SourceSpec, load_sources
from sycl.data.batching import EpochBatchSampler
from sycl.data.dataset import GroupedQueryDataset
from sycl.data.groups import GroupSampler
from tests.beir_fixtures import graded_source, write_beir


def labels_by_text(pool, query_id):
    return {pool.passage_texts[key]: label for owned in pool.candidates[query_id] for key, label in owned}


def test_score_window_is_inclusive_below_exclusive_above_and_relabels(tmp_path):
    source = graded_source(tmp_path / "d", num_queries=1)
    pool = load_sources([SourceSpec(**source, min_score=1, max_score=3, score_transform=7)])
    assert labels_by_text(pool, "q0") == {"passage q0 level 2": 7.0, "passage q0 level 1": 7.0}


@pytest.mark.parametrize("rule,expected", [("last", 1.0), ("first", 3.0), ("max", 3.0)])
def test_merge_rule_for_a_passage_in_two_sources(tmp_path, rule, expected):
    first = write_beir(
        tmp_path / "a", {"q": "query"}, {"p": "shared passage", "x": "other"}, [("q", "p", 3), ("q", "x", 0)]
    )
    second = {**first, "qrels": str(tmp_path / "b.tsv")}
    (tmp_path / "b.tsv").write_text("query-id\tcorpus-id\tscore\nq\tp\t1\n")
    pool = load_sources([SourceSpec(**first), SourceSpec(**second)], on_conflict=rule)
    assert labels_by_text(pool, "q")["shared passage"] == expected
    assert pool.pool_size("q") == 2  # one passage, not two copies


def test_same_id_in_different_corpus_files_are_different_passages(tmp_path):
    one = write_beir(tmp_path / "one", {"q": "query"}, {"p": "text from corpus one"}, [("q", "p", 3)])
    two = write_beir(tmp_path / "two", {"q": "query"}, {"p": "text from corpus two"}, [("q", "p", 1)])
    pool = load_sources([SourceSpec(**one), SourceSpec(**two)])
    assert labels_by_text(pool, "q") == {"text from corpus one": 3.0, "text from corpus two": 1.0}


def test_queries_are_the_union_of_the_sources(tmp_path):
    one = write_beir(tmp_path / "one", {"q1": "first"}, {"p": "a"}, [("q1", "p", 3)])
    two = write_beir(tmp_path / "two", {"q2": "second"}, {"p": "b"}, [("q2", "p", 1)])
    assert load_sources([SourceSpec(**one), SourceSpec(**two)]).query_ids == ["q1", "q2"]


def mixed_pool(tmp_path):
    """Synthetic levels 3..0 plus real data: a positive relabelled 3 and 5 negatives relabelled 1, 2 drawn at random."""
    synthetic = graded_source(tmp_path / "syn", num_queries=1)
    real = write_beir(
        tmp_path / "real",
        {"q0": "query number 0"},
        {"pos": "real positive", **{f"n{i}": f"real negative {i}" for i in range(5)}},
        [("q0", "pos", 1)] + [("q0", f"n{i}", 0) for i in range(5)],
    )
    specs = [
        SourceSpec(**real, name="real_pos", min_score=1, score_transform=3),
        SourceSpec(**real, name="bm25_neg", max_score=1, score_transform=1, group_random_k=2),
        SourceSpec(**synthetic, name="synthetic"),
    ]
    return load_sources(specs)


def test_mixing_relabels_as_configured_and_fixes_the_pool_size(tmp_path):
    pool = mixed_pool(tmp_path)
    labels = labels_by_text(pool, "q0")
    assert labels["real positive"] == 3.0
    assert all(labels[f"real negative {i}"] == 1.0 for i in range(5))
    assert labels["passage q0 level 0"] == 0.0
    assert pool.pool_size("q0") == 1 + 2 + 4
    sampler = GroupSampler(pool, group_size=7)
    group = sampler.group("q0", epoch=0)
    assert len({key for key, _ in group}) == 7
    assert sorted(label for _, label in group) == [0.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0]


def test_random_picks_are_seeded_and_redrawn_each_epoch(tmp_path):
    pool = mixed_pool(tmp_path)

    def drawn_negatives(seed: int, epoch: int) -> tuple[str, ...]:
        group = GroupSampler(pool, group_size=7, seed=seed).group("q0", epoch)
        return tuple(sorted(t for t in (pool.passage_texts[k] for k, _ in group) if t.startswith("real negative")))

    assert drawn_negatives(seed=1, epoch=0) == drawn_negatives(seed=1, epoch=0)  # a fresh sampler, same draw
    assert len({drawn_negatives(seed=1, epoch=e) for e in range(20)}) > 3  # redrawn across epochs
    assert [drawn_negatives(1, e) for e in range(8)] != [drawn_negatives(2, e) for e in range(8)]


def test_group_top_k_keeps_the_best_labels(tmp_path):
    source = graded_source(tmp_path / "d", num_queries=1)
    pool = load_sources([SourceSpec(**source, group_top_k=2)])
    assert pool.pool_size("q0") == 2
    group = GroupSampler(pool, group_size=2).group("q0", epoch=3)
    assert [label for _, label in group] == [3.0, 2.0]


def test_multilevel_group_labels_belong_to_their_passages_best_first(tmp_path):
    pool = load_sources([SourceSpec(**graded_source(tmp_path / "d", num_queries=4, levels=(3, 2, 1, 0, 0, 1)))])
    dataset = GroupedQueryDataset(GroupSampler(pool, group_size=4, seed=0))
    for index in range(4):
        item = dataset[(index, 2)]
        assert item["labels"] == sorted(item["labels"], reverse=True)
        for text, label in zip(item["passages"], item["labels"], strict=True):
            assert text.startswith(f"passage {item['query_id']} level {int(label)}")


def test_most_relevant_selection_takes_the_top_labels(tmp_path):
    pool = load_sources([SourceSpec(**graded_source(tmp_path / "d", num_queries=1, levels=(3, 2, 1, 0)))])
    group = GroupSampler(pool, group_size=2, selection="most_relevant").group("q0", epoch=0)
    assert [label for _, label in group] == [3.0, 2.0]


def test_binary_mode_puts_one_positive_first(tmp_path):
    source = graded_source(tmp_path / "d", num_queries=3)
    specs = [SourceSpec(**source, min_score=2, score_transform=1), SourceSpec(**source, max_score=2, score_transform=0)]
    dataset = GroupedQueryDataset(GroupSampler(load_sources(specs), group_size=3, mode="binary", seed=0))
    for epoch in range(4):
        item = dataset[(0, epoch)]
        assert item["labels"] == [1.0, 0.0, 0.0]
        assert item["passages"][0].split("level ")[1] in {"3", "2"}
        assert {p.split("level ")[1] for p in item["passages"][1:]} == {"1", "0"}


def test_binary_mode_without_a_positive_fails_at_setup(tmp_path):
    source = graded_source(tmp_path / "d", num_queries=2, levels=(1, 0))
    sampler = GroupSampler(load_sources([SourceSpec(**source)]), group_size=2, mode="binary", positive_threshold=2)
    with pytest.raises(ValueError, match="2 queries have no positive.*query-id 'q0'"):
        GroupedQueryDataset(sampler)


def test_short_groups_are_repeated_or_skipped(tmp_path, caplog):
    short = graded_source(tmp_path / "short", num_queries=1, levels=(3, 0))
    full = write_beir(
        tmp_path / "full",
        {"q9": "long query"},
        {f"d{i}": f"passage {i}" for i in range(4)},
        [("q9", f"d{i}", i) for i in range(4)],
    )
    pool = load_sources([SourceSpec(**short), SourceSpec(**full)])
    repeated = GroupedQueryDataset(GroupSampler(pool, group_size=4), short_group_policy="repeat")
    assert len(repeated) == 2
    item = repeated[(0, 0)]
    assert item["passages"] == ["passage q0 level 3", "passage q0 level 0"] * 2  # cycled, as the reference does
    assert "1 of 2 queries have fewer candidates" in caplog.text
    skipped = GroupedQueryDataset(GroupSampler(pool, group_size=4), short_group_policy="skip")
    assert skipped.query_ids == ["q9"]


def test_epoch_batches_are_seeded_sharded_and_resumable():
    full = [b for b in EpochBatchSampler(10, 2, seed=3, num_replicas=2, rank=0)]
    other = [b for b in EpochBatchSampler(10, 2, seed=3, num_replicas=2, rank=1)]
    assert len(full) == len(other) == 2  # 10 items, global batches of 4, last partial one dropped
    indices = [i for batch in full + other for i, _ in batch]
    assert len(set(indices)) == 8
    again = [b for b in EpochBatchSampler(10, 2, seed=3, num_replicas=2, rank=0)]
    assert again == full
    sampler = EpochBatchSampler(10, 2, seed=3)
    sampler.set_epoch(1)
    epoch_one = list(sampler)
    assert epoch_one != [b for b in EpochBatchSampler(10, 2, seed=3)] and all(e == 1 for b in epoch_one for _, e in b)
    sampler.skip_batches(3)
    assert list(sampler) == epoch_one[3:]
    assert list(sampler) == epoch_one  # the skip applies once


def test_train_fraction_keeps_a_seeded_subset(tmp_path):
    pool = load_sources([SourceSpec(**graded_source(tmp_path / "d", num_queries=20))])
    subsets = []
    for seed in (1, 1, 2):
        dataset = GroupedQueryDataset(GroupSampler(pool, group_size=4))
        dataset.keep_fraction(0.25, seed=seed)
        subsets.append(dataset.query_ids)
    assert len(subsets[0]) == 5 and subsets[0] == subsets[1] != subsets[2]
    assert subsets[0] == sorted(subsets[0], key=pool.query_ids.index)


def test_length_bucketed_batches_are_seeded_and_group_similar_lengths():
    lengths = [(i * 37) % 100 for i in range(64)]
    sampler = EpochBatchSampler(64, 4, seed=5, lengths=lengths, bucket_batches=4)
    batches = [[i for i, _ in batch] for batch in sampler]
    assert sorted(i for batch in batches for i in batch) == list(range(64))  # every item once
    assert batches == [
        [i for i, _ in batch] for batch in EpochBatchSampler(64, 4, seed=5, lengths=lengths, bucket_batches=4)
    ]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    random_batches = [[i for i, _ in batch] for batch in EpochBatchSampler(64, 4, seed=5)]
    random_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in random_batches) / len(batches)
    assert spread < random_spread / 2
    sampler.set_epoch(1)
    assert [[i for i, _ in batch] for batch in sampler] != batches
