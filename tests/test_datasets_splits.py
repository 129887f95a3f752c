"""Split planning, pure: spans per take, guard bands, take and group splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.splits import (
    TakeSpans,
    file_windows,
    overlap_problems,
    plan_splits,
)

TONES = ("raw", "clean", "crunch")


def make_rows(takes_per_pair: int = 1, *, frames: int = 441_000, players=None) -> pd.DataFrame:
    """Manifest-like rows: 2 guitars x 2 phrases x N takes x 3 tones, all renders aligned."""
    rows = []
    for guitar in ("stratocaster", "les_paul"):
        for phrase in ("backing", "lead"):
            for n in range(1, takes_per_pair + 1):
                take = f"{guitar}-{phrase}-t{n:03d}"
                for tone in TONES:
                    rows.append(
                        {
                            "id": f"{take}-{tone}",
                            "take": take,
                            "guitar": guitar,
                            "phrase": phrase,
                            "tone": tone,
                            "frames": frames,
                            "player": (players or {}).get(n, "ann"),
                        }
                    )
    return pd.DataFrame(rows)


def windows_table(rows: pd.DataFrame, plan, **kwargs) -> pd.DataFrame:
    parts = []
    for _, row in rows.iterrows():
        starts = file_windows(row["frames"], plan.takes[row["take"]], file_id=row["id"], **kwargs)
        for split in ("train", "val", "test"):
            parts.append(
                pd.DataFrame(
                    {"split": split, "id": row["id"], "take": row["take"], "start": starts[split]}
                )
            )
    return pd.concat(parts, ignore_index=True)


def test_span_split_holds_out_one_grid_aligned_span_per_take() -> None:
    rows = make_rows()
    plan = plan_splits(rows, seed=3)
    assert set(plan.takes) == set(rows["take"]) and not plan.leaky
    for spans in plan.takes.values():
        (start, end), (vstart, vend) = spans.test[0], spans.val[0]
        assert end - start == 96_000 and start % 8_000 == 0 and end <= 441_000
        assert vstart % 8_000 == 0 and (vend - vstart) % 8_000 == 0
        assert vend <= start or vstart >= end  # validation and test never meet


def test_post_setup_gives_12_test_windows_and_the_rest_in_train_val() -> None:
    frames = 441_000  # 10 s: 55 windows of 8000
    rows = make_rows(frames=frames)
    plan = plan_splits(rows, seed=0, val_fraction=0.2)
    for _, row in rows.iterrows():
        out = file_windows(frames, plan.takes[row["take"]], window=8000, file_id=row["id"])
        assert out["test"].size == 12
        assert np.all(np.diff(out["test"]) == 8000)
        # hop == window and grid-aligned spans: no window straddles an edge, none dropped
        assert int(out["dropped"][0]) == 0
        assert out["train"].size + out["val"].size + 12 == 55
        assert out["val"].size == round((frames - 96_000) * 0.2 / 8000)


def test_guard_band_drops_windows_straddling_a_span() -> None:
    rows = make_rows()
    plan = plan_splits(rows, seed=1, hop=3000)  # hop does not divide the window
    table = windows_table(rows, plan, window=8000, hop=3000)
    assert overlap_problems(table, plan.takes_json(), window=8000) == []
    spans = plan.takes[rows["take"][0]]
    out = file_windows(441_000, spans, window=8000, hop=3000)
    assert int(out["dropped"][0]) > 0
    for s, e in spans.test + spans.val:
        assert not np.any((out["train"] < e) & (out["train"] + 8000 > s))


def test_same_seed_same_splits_and_takes_do_not_disturb_each_other() -> None:
    rows = make_rows(2)
    first = plan_splits(rows, seed=7).takes_json()
    assert plan_splits(rows, seed=7).takes_json() == first
    assert plan_splits(rows, seed=8).takes_json() != first
    fewer = plan_splits(rows[rows["take"] != "les_paul-lead-t002"], seed=7).takes_json()
    assert all(fewer[take] == first[take] for take in fewer)


def test_same_span_all_is_the_post_protocol() -> None:
    plan = plan_splits(make_rows(), same_span_all=True, seed=2)
    assert len({tuple(s.test[0]) for s in plan.takes.values()}) == 1
    assert len({tuple(s.val[0]) for s in plan.takes.values()}) == 1


def test_take_split_is_stratified_and_keeps_a_training_take_per_label() -> None:
    rows = make_rows(3)  # 6 takes per guitar
    plan = plan_splits(rows, split="take", seed=0)
    roles = pd.Series({t: s.role for t, s in plan.takes.items()})
    guitar = pd.Series({t: t.split("-")[0] for t in plan.takes})
    for g in ("stratocaster", "les_paul"):
        assert (roles[guitar == g] == "test").sum() == 1
        assert (roles[guitar == g] == "train").sum() == 5
    test_take = roles[roles == "test"].index[0]
    assert plan.takes[test_take].test == [(0, 441_000)]
    table = windows_table(rows, plan, window=8000)
    assert set(table.loc[table["split"] == "test", "take"]) == set(roles[roles == "test"].index)
    assert overlap_problems(table, plan.takes_json(), window=8000) == []

    with_val = plan_splits(rows, split="take", val="take", seed=0)
    val_roles = [s.role for s in with_val.takes.values()]
    assert val_roles.count("val") == 2 and val_roles.count("test") == 2


def test_take_split_needs_two_takes_per_label() -> None:
    rows = make_rows(1)
    rows = rows[~((rows["guitar"] == "les_paul") & (rows["phrase"] == "lead"))]
    with pytest.raises(DatasetError, match="label 'les_paul' has only one take"):
        plan_splits(rows, split="take")
    with pytest.raises(DatasetError, match="leaves none to train|would leave"):
        plan_splits(make_rows(1), split="take", val="take")


def test_group_split_holds_out_whole_values() -> None:
    rows = make_rows(3, players={1: "ann", 2: "bob", 3: "cy"})
    plan = plan_splits(rows, split="group", group_by="player", seed=4)
    test_takes = {t for t, s in plan.takes.items() if s.role == "test"}
    players = set(rows.loc[rows["take"].isin(test_takes), "player"])
    assert len(players) == 1
    assert set(rows.loc[rows["player"].isin(players), "take"]) == test_takes
    with pytest.raises(DatasetError, match="within take"):
        plan_splits(rows, split="group", group_by="tone")
    with pytest.raises(DatasetError, match="--group-by"):
        plan_splits(rows, split="group")


def test_previous_spans_are_kept_and_new_takes_drawn() -> None:
    old = plan_splits(make_rows(1), seed=0).takes_json()
    grown = make_rows(2)
    new = plan_splits(grown, seed=99, previous=old)
    for take, spans in old.items():
        assert new.takes[take].to_json() == spans
    fresh = [t for t in new.takes if t not in old]
    assert len(fresh) == 4 and all(new.takes[t].test for t in fresh)
    shrunk = make_rows(1, frames=200_000)
    with pytest.raises(DatasetError, match="the files changed"):
        plan_splits(
            shrunk, seed=0, previous={t: {**s, "test": [[0, 300_000]]} for t, s in old.items()}
        )


def test_overlap_check_catches_an_injected_leak() -> None:
    rows = make_rows()
    plan = plan_splits(rows, seed=5)
    table = windows_table(rows, plan, window=8000)
    take = rows["take"][0]
    s, _ = plan.takes[take].test[0]
    leak = pd.DataFrame(
        [{"split": "train", "id": f"{take}-crunch", "take": take, "start": s + 4000}]
    )
    problems = overlap_problems(pd.concat([table, leak]), plan.takes_json(), window=8000)
    assert len(problems) == 1 and take in problems[0] and "overlaps test time" in problems[0]


def test_random_validation_is_flagged_and_bad_options_refused() -> None:
    rows = make_rows()
    plan = plan_splits(rows, val="random", seed=0)
    assert plan.leaky and all(not s.val for s in plan.takes.values())
    out = file_windows(441_000, next(iter(plan.takes.values())), val="random", val_fraction=0.2)
    assert out["val"].size == round((out["val"].size + out["train"].size) * 0.2)
    with pytest.raises(DatasetError, match="--val take needs"):
        plan_splits(rows, val="take")
    with pytest.raises(DatasetError, match="unknown split"):
        plan_splits(rows, split="tone")
    with pytest.raises(DatasetError, match="shorter than the test span"):
        plan_splits(make_rows(frames=90_000))
    assert TakeSpans.from_json("t", plan.takes_json()[rows["take"][0]]).frames == 441_000


def test_take_split_keeps_old_roles_when_the_corpus_grows() -> None:
    old = plan_splits(make_rows(3), split="take", val="take", seed=0).takes_json()
    new = plan_splits(make_rows(5), split="take", val="take", seed=11, previous=old)
    for take, spans in old.items():
        assert new.takes[take].to_json() == spans
    roles = [s.role for s in new.takes.values()]
    assert roles.count("test") == 4 and roles.count("train") >= 10
