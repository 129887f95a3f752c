"""Leak-free splits: which time spans of which takes are held out, and where each window goes.

Pure planning, no audio. All renders of one take share its timing (a window at 30 s of
``les_paul-lead-t001-crunch`` carries the window at 30 s of its ``raw`` source), so
everything is decided per *take* on one timeline in samples and then applied to every
file of that take, in every tone:

- ``span``: one random span per take (``test_windows`` windows long, on the window grid)
  is the test set; validation is another span of the same take, disjoint from it.
- ``take``: whole takes are held out, stratified by label.
- ``group``: whole values of a column (a player, a guitar serial) are held out.

The held-out takes or groups are drawn at random, or named: ``named_roles`` (from
``dataset build --test-where "fret >= 6"``) and ``test_groups`` (``--test-groups a,b``).

Guard bands: a training window that overlaps a held-out span even by one sample is
dropped. ``val="random"`` reproduces the post's random 80/20 of windows and is marked
leaky.

Every split method lives here because all share the take and span arithmetic that keeps
all renders of a take on one side, so the leak-free rule is read in one place.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guitarlab.corpus.defaults import WINDOW
from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.windows import window_starts

SPLITS = ("train", "val", "test")
SPLIT_METHODS = ("span", "take", "group")
VAL_METHODS = ("span", "take", "random")
ROLES = ("train", "val", "test")
# Share of takes (or groups) held out for test by the take and group splits.
TEST_TAKE_FRACTION = 0.2

Span = tuple[int, int]


@dataclass
class TakeSpans:
    """What is held out of one take, in samples of its timeline (``[start, end)``)."""

    take: str
    frames: int
    role: str = "train"  # the whole take is "train", "val" or "test"
    test: list[Span] = field(default_factory=list)
    val: list[Span] = field(default_factory=list)
    # first sample of the take's windows (its first sound, with --trim-silence)
    offset: int = 0

    def to_json(self) -> dict:
        out = {
            "frames": int(self.frames),
            "role": self.role,
            "test": [[int(s), int(e)] for s, e in self.test],
            "val": [[int(s), int(e)] for s, e in self.val],
        }
        if self.offset:
            out["offset"] = int(self.offset)
        return out

    def shifted(self, offset: int) -> TakeSpans:
        """The same spans on a timeline that starts ``offset`` samples later in the file."""
        o = int(offset)
        return TakeSpans(
            self.take,
            self.frames,
            self.role,
            [(s + o, e + o) for s, e in self.test],
            [(s + o, e + o) for s, e in self.val],
            self.offset + o,
        )

    @classmethod
    def from_json(cls, take: str, data: Mapping) -> TakeSpans:
        return cls(
            take=take,
            frames=int(data["frames"]),
            role=str(data.get("role", "train")),
            test=[(int(s), int(e)) for s, e in data.get("test", [])],
            val=[(int(s), int(e)) for s, e in data.get("val", [])],
            offset=int(data.get("offset", 0)),
        )


@dataclass
class SplitPlan:
    """The held-out spans of every take, plus how they were chosen."""

    split: str
    val: str
    takes: dict[str, TakeSpans]
    leaky: bool = False
    notes: list[str] = field(default_factory=list)
    test_groups: list[str] = field(default_factory=list)  # values held out by a group split

    def takes_json(self) -> dict[str, dict]:
        return {take: spans.to_json() for take, spans in sorted(self.takes.items())}


def _take_rng(seed: int, take: str, salt: str) -> np.random.Generator:
    """A generator per take: a take's spans do not depend on which other takes exist."""
    return np.random.default_rng([int(seed), zlib.crc32(f"{salt}:{take}".encode())])


def span_length_samples(test_windows: int, window: int) -> int:
    """Length of a test span: ``test_windows`` consecutive windows (96,000 = 12 x 8,000)."""
    if int(test_windows) < 1:
        raise DatasetError(f"test_windows must be at least 1, got {test_windows}")
    return int(test_windows) * int(window)


def val_span_samples(frames: int, test_len: int, *, window: int, val_fraction: float) -> int:
    """Length of a validation span: ``val_fraction`` of what the test span leaves, whole windows."""
    if val_fraction <= 0:
        return 0
    n = int(round((frames - test_len) * float(val_fraction) / window))
    return max(1, n) * int(window)


def _grid_starts(frames: int, length: int, hop: int) -> np.ndarray:
    """Starts on the window grid (multiples of ``hop``) where a span of ``length`` fits."""
    if length > frames:
        return np.zeros(0, dtype=np.int64)
    return np.arange((frames - length) // hop + 1, dtype=np.int64) * hop


def _free_starts(frames: int, length: int, hop: int, taken: list[Span]) -> np.ndarray:
    starts = _grid_starts(frames, length, hop)
    ok = np.ones(starts.shape, dtype=bool)
    for s, e in taken:
        ok &= ~((starts < e) & (starts + length > s))
    return starts[ok]


def _draw_span(
    rng: np.random.Generator,
    frames: int,
    length: int,
    hop: int,
    taken: list[Span],
    *,
    what: str,
    take: str,
) -> Span:
    starts = _free_starts(frames, length, hop, taken)
    if starts.size == 0:
        raise DatasetError(
            f"take {take} is {frames} samples long: no room for a {what} span of {length} samples"
            + (" beside the test span" if taken else "")
            + "; lower --test-seconds/--test-windows or --val-fraction, or use --split take"
        )
    start = int(starts[rng.integers(starts.size)])
    return (start, start + int(length))


def take_table(rows: pd.DataFrame, *, label: str, group_by: str | None = None) -> pd.DataFrame:
    """One row per take: ``frames`` (shortest file), ``frames_max``, its label key and group."""
    if rows.empty:
        raise DatasetError("no rows to split; check --where")
    grouped = rows.groupby("take", sort=True)
    table = pd.DataFrame(
        {
            "frames": grouped["frames"].min().astype(int),
            "frames_max": grouped["frames"].max().astype(int),
        }
    )
    table["labels"] = _per_take(rows, label, table.index).map("+".join)
    if group_by:
        values = _per_take(rows, group_by, table.index)
        for take, vals in values.items():
            if len(vals) != 1:
                raise DatasetError(
                    f"column {group_by!r} has values {', '.join(vals)} within take {take}; "
                    "a group split holds out whole takes, so group by a column that is the same "
                    "for every file of a take (player, guitar, session)"
                )
            if not vals[0]:
                raise DatasetError(
                    f"take {take} has no value in column {group_by!r}; fill it in the manifest or exclude it with --where"
                )
        table["group"] = values.map(lambda v: v[0])
    return table


def _per_take(rows: pd.DataFrame, column: str, takes: pd.Index) -> pd.Series:
    """Per take (in ``takes``' order), the sorted distinct values of ``column`` as text: one
    walk over the rows (a groupby with a Python function per take cost 0.1 s for 1,600)."""
    found: dict = {}
    for take, value in zip(rows["take"].tolist(), rows[column].tolist(), strict=True):
        found.setdefault(take, set()).add(str(value))
    return pd.Series([sorted(found[take]) for take in takes], index=takes, dtype=object)


def plan_splits(
    rows: pd.DataFrame,
    *,
    label: str = "guitar",
    window: int = WINDOW,
    hop: int | None = None,
    split: str = "span",
    test_windows: int = 12,
    val: str = "span",
    val_fraction: float = 0.2,
    same_span_all: bool = False,
    group_by: str | None = None,
    seed: int = 0,
    previous: Mapping[str, Mapping] | None = None,
    named_roles: Mapping[str, str] | None = None,
    test_groups: list[str] | None = None,
) -> SplitPlan:
    """Decide what every take holds out.

    Parameters
    ----------
    rows : DataFrame
        The manifest rows used, with at least ``take``, ``frames`` (as the build will read
        them) and the ``label`` (and ``group_by``) column.
    previous : mapping, optional
        ``dataset.json["takes"]`` of an older dataset: takes found there keep exactly their
        old spans and roles, so old and new models are compared on the same test audio.
    named_roles : mapping, optional
        ``{take: "test" | "val"}``: whole takes held out by name instead of at random
        (``split="take"``; ``"val"`` entries need ``val="take"``).
    test_groups : list of str, optional
        Values of ``group_by`` held out for test (``split="group"``), instead of a random 20 %.

    Returns
    -------
    SplitPlan
        Held-out spans per take in samples: ``takes[take].test`` and ``.val``.
    """
    if split not in SPLIT_METHODS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLIT_METHODS)}")
    if val not in VAL_METHODS:
        raise DatasetError(f"unknown validation {val!r}; use one of {', '.join(VAL_METHODS)}")
    if not 0 <= float(val_fraction) < 1:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if split == "group" and not group_by:
        raise DatasetError("split 'group' needs a column to group by: pass --group-by COLUMN")
    if group_by and group_by not in rows.columns:
        raise DatasetError(
            f"no column {group_by!r} in the manifest; known: {', '.join(map(str, rows.columns))}"
        )
    window = int(window)
    hop = window if hop is None else int(hop)
    previous = dict(previous or {})
    table = take_table(rows, label=label, group_by=group_by if split == "group" else None)
    plan = SplitPlan(split=split, val=val, takes={}, leaky=val == "random")

    named = {str(t): str(r) for t, r in (named_roles or {}).items()}
    if split == "span":
        if named or test_groups:
            raise DatasetError(
                "named test or validation sets hold out whole takes; use --split take or group"
            )
        _plan_span(plan, table, window, hop, test_windows, val, val_fraction, same_span_all, seed)
    else:
        _plan_whole(
            plan, table, window, hop, split, val, val_fraction, seed, previous, group_by,
            named=named, test_groups=test_groups,
        )  # fmt: skip
    if previous:
        _keep_previous(plan, table, previous)
    if plan.leaky:
        plan.notes.append(
            "val='random' picks validation windows at random: they share time with training "
            "windows of other tones of the same take, so validation scores are optimistic (leaky)"
        )
    return plan


def _plan_span(
    plan: SplitPlan,
    table: pd.DataFrame,
    window: int,
    hop: int,
    test_windows: int,
    val: str,
    val_fraction: float,
    same_span_all: bool,
    seed: int,
) -> None:
    if val == "take":
        raise DatasetError(
            "--val take needs --split take or group (a span split keeps every take in training); use --val span"
        )
    test_len = span_length_samples(test_windows, window)
    short = table[table["frames"] < test_len]
    if not short.empty:
        take, frames = short.index[0], int(short["frames"].iloc[0])
        shortest = int(table["frames"].min())
        raise DatasetError(
            f"take {take} is {frames} samples long, shorter than the test span of {test_len} "
            f"({test_windows} windows of {window}); splits that work: "
            + _splits_that_work(shortest, window, hop, val, val_fraction)
        )
    common: tuple[Span, Span | None] | None = None
    if same_span_all:
        frames = int(table["frames"].min())
        rng = np.random.default_rng(int(seed))
        test = _draw_span(rng, frames, test_len, hop, [], what="test", take="(all takes)")
        vspan = None
        if val == "span" and val_fraction > 0:
            vlen = val_span_samples(frames, test_len, window=window, val_fraction=val_fraction)
            vspan = _draw_span(rng, frames, vlen, hop, [test], what="validation", take="(all)")
        common = (test, vspan)
    for take, frames in zip(table.index, table["frames"].tolist(), strict=True):
        frames = int(frames)
        if common is not None:
            test, vspan = common
        else:
            rng = _take_rng(seed, str(take), "span")
            test = _draw_span(rng, frames, test_len, hop, [], what="test", take=str(take))
            vspan = None
            if val == "span" and val_fraction > 0:
                vlen = val_span_samples(frames, test_len, window=window, val_fraction=val_fraction)
                vspan = _draw_span(rng, frames, vlen, hop, [test], what="validation", take=take)
        plan.takes[str(take)] = TakeSpans(
            str(take), frames, "train", [test], [vspan] if vspan else []
        )


def _splits_that_work(frames: int, window: int, hop: int, val: str, val_fraction: float) -> str:
    """What a build can do with takes of ``frames`` samples, for an error message."""
    fits = 0
    for k in range(frames // window - 1, 0, -1):  # leave at least one training window
        test_len = k * window
        vlen = (
            val_span_samples(frames, test_len, window=window, val_fraction=val_fraction)
            if val == "span" and val_fraction > 0
            else 0
        )
        if test_len + vlen + window <= frames:
            fits = k
            break
    whole = (
        '--split take (whole takes), --test-where "COLUMN >= VALUE" (named takes, e.g. '
        '"fret >= 6") or --split group --group-by COLUMN'
    )
    if fits:
        return f"--test-windows {fits} (or fewer), or hold out whole takes: {whole}"
    return f"hold out whole takes: {whole}; or use a smaller --window"


def _whole_counts(n: int, *, val_takes: bool, val_fraction: float, what: str) -> tuple[int, int]:
    """(test, val) counts of whole takes or groups out of ``n``, leaving at least one to train."""
    n_test = min(max(1, int(round(n * TEST_TAKE_FRACTION))), n - 1)
    n_val = 0
    if val_takes and val_fraction > 0:
        n_val = max(1, int(round(n * val_fraction)))
        if n - n_test - n_val < 1:
            raise DatasetError(
                f"{what} has {n} take(s): holding out {n_test} for test and {n_val} for validation "
                "leaves none to train; record more takes or use --val span"
            )
    return n_test, n_val


def _plan_whole(
    plan: SplitPlan,
    table: pd.DataFrame,
    window: int,
    hop: int,
    split: str,
    val: str,
    val_fraction: float,
    seed: int,
    previous: Mapping[str, Mapping],
    group_by: str | None = None,
    *,
    named: Mapping[str, str] | None = None,
    test_groups: list[str] | None = None,
) -> None:
    roles = {take: "train" for take in table.index}
    named = dict(named or {})
    unknown = sorted(set(named) - set(roles))
    if unknown:
        raise DatasetError(f"take {unknown[0]} is named for a held-out set but not selected")
    old_role = {t: str(previous[t].get("role", "train")) for t in table.index if t in previous}
    rng = np.random.default_rng(int(seed))
    named_test = sorted(t for t, r in named.items() if r == "test")
    named_val = sorted(t for t, r in named.items() if r == "val")
    if named_val and val != "take":
        raise DatasetError("a named validation set holds out whole takes; use --val take")
    if split == "take" and named_test:
        for take in named_test:
            roles[take] = "test"
    elif split == "take":
        for labels, takes in table.groupby("labels", sort=True).groups.items():
            takes = sorted(map(str, takes))
            if len(takes) < 2:
                raise DatasetError(
                    f"label {labels!r} has only one take ({takes[0]}); a take split needs at least "
                    "two per label so one can train; record another take or use --split span"
                )
            n_test, _ = _whole_counts(len(takes), val_takes=False, val_fraction=0, what=labels)
            _assign(roles, takes, "test", n_test, rng, old_role)
    else:
        groups = sorted(map(str, table["group"].unique()))
        if len(groups) < 2:
            raise DatasetError(
                f"column {group_by!r} has one value ({groups[0]}) in the selection; "
                "a group split needs at least two so one can train"
            )
        if test_groups:
            missing = [g for g in test_groups if g not in groups]
            if missing:
                raise DatasetError(
                    f"--test-groups {missing[0]!r} is not a value of column {group_by!r} in the "
                    f"selection; known: {', '.join(groups)}"
                )
        n_test, _ = _whole_counts(len(groups), val_takes=False, val_fraction=0, what="groups")
        old_test_groups = sorted(
            {str(table.loc[t, "group"]) for t, r in old_role.items() if r == "test"}
        )
        new_groups = [g for g in groups if g not in set(table.loc[list(old_role), "group"])]
        need = max(0, n_test - len(old_test_groups))
        if need and new_groups:
            picked = list(rng.permutation(new_groups)[: min(need, len(new_groups))])
        else:
            picked = []
        held = set(old_test_groups) | set(map(str, picked))
        if test_groups:
            held = set(test_groups)
        if not held:
            held = {str(rng.permutation(groups)[0])}
        if len(held) >= len(groups):
            raise DatasetError(
                f"--test-groups {','.join(sorted(held))} holds out every value of {group_by!r}; "
                "leave at least one group to train"
                if test_groups
                else "a group split must leave at least one group to train"
            )
        plan.test_groups = sorted(held)
        for take, group in table["group"].items():
            if str(group) in held:
                roles[str(take)] = "test"
    for take in named_val:
        if roles[take] == "test":
            raise DatasetError(
                f"take {take} is in both the test set and the named validation set; "
                "make --test-where and --val-where disjoint"
            )
        roles[take] = "val"
    if val == "take" and not named_val:
        train_table = table[[roles[t] == "train" for t in table.index]]
        for labels, takes in train_table.groupby("labels", sort=True).groups.items():
            takes = sorted(map(str, takes))
            n_val = max(1, int(round(len(takes) * val_fraction))) if val_fraction > 0 else 0
            if n_val and len(takes) - n_val < 1:
                raise DatasetError(
                    f"label {labels!r} has {len(takes)} training take(s): --val take would leave "
                    "none to train; record more takes or use --val span"
                )
            _assign(roles, takes, "val", n_val, rng, old_role)
    if not any(role == "train" for role in roles.values()):
        raise DatasetError(
            "the held-out sets take every take; leave some to train (narrow --test-where/--val-where)"
        )
    columns = (table.index, table["frames"].tolist(), table["frames_max"].tolist())
    for take, frames, frames_max in zip(*columns, strict=True):
        take, frames, frames_max = str(take), int(frames), int(frames_max)
        spans = TakeSpans(take, frames, roles[take])
        if roles[take] == "test":
            spans.test = [(0, frames_max)]
        elif roles[take] == "val":
            spans.val = [(0, frames_max)]
        elif val == "span" and val_fraction > 0:
            vlen = val_span_samples(frames, 0, window=window, val_fraction=val_fraction)
            rng_take = _take_rng(seed, take, "val")
            spans.val = [_draw_span(rng_take, frames, vlen, hop, [], what="validation", take=take)]
        plan.takes[take] = spans


def _assign(
    roles: dict[str, str],
    takes: list[str],
    role: str,
    count: int,
    rng: np.random.Generator,
    old_role: Mapping[str, str],
) -> None:
    """Give ``role`` to ``count`` of ``takes`` still in training; old takes keep their role."""
    already = [t for t in takes if old_role.get(t) == role]
    for t in already:
        roles[t] = role
    fresh = [t for t in takes if t not in old_role and roles[t] == "train"]
    need = max(0, count - len(already))
    keep_one = len([t for t in takes if roles[t] == "train"]) - 1
    need = min(need, len(fresh), max(0, keep_one))
    for t in rng.permutation(fresh)[:need] if need else []:
        roles[str(t)] = role


def _keep_previous(plan: SplitPlan, table: pd.DataFrame, previous: Mapping[str, Mapping]) -> None:
    """Takes of an older dataset keep exactly their old spans and role."""
    kept = 0
    for take, spans in plan.takes.items():
        if take not in previous:
            continue
        old = TakeSpans.from_json(take, previous[take])
        frames_max = int(table.loc[take, "frames_max"])
        for s, e in old.test + old.val:
            if e - old.offset > frames_max and not (s == 0 and old.role != "train"):
                raise DatasetError(
                    f"take {take}: the old dataset holds out [{s}, {e}) but the take now has "
                    f"{frames_max} samples; the files changed, rebuild without --held-out-from"
                )
        old.frames = spans.frames
        if old.role != "train":
            whole = (old.offset, old.offset + frames_max)
            old.test = [whole] if old.role == "test" else []
            old.val = [whole] if old.role == "val" else old.val
        plan.takes[take] = old
        kept += 1
    new = len(plan.takes) - kept
    plan.notes.append(f"held-out spans kept for {kept} take(s) of the old dataset; {new} new")


# ---------------------------------------------------------------- windows of one file


def overlaps(starts: np.ndarray, length: int, spans: list[Span]) -> np.ndarray:
    """True for each window (``starts``, ``length`` samples) that touches any of ``spans``."""
    hit = np.zeros(starts.shape, dtype=bool)
    for s, e in spans:
        hit |= (starts < e) & (starts + length > s)
    return hit


def _inside(starts: np.ndarray, length: int, spans: list[Span]) -> np.ndarray:
    hit = np.zeros(starts.shape, dtype=bool)
    for s, e in spans:
        hit |= (starts >= s) & (starts + length <= e)
    return hit


def clip_starts(frames: int, spans: TakeSpans, *, window: int) -> np.ndarray:
    """Starts of the test windows of one file: each test span as consecutive windows."""
    out = []
    for s, e in spans.test:
        n = max(0, (min(int(e), int(frames)) - int(s)) // int(window))
        out.append(int(s) + np.arange(n, dtype=np.int64) * int(window))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def file_windows(
    frames: int,
    spans: TakeSpans,
    *,
    window: int = WINDOW,
    hop: int | None = None,
    val: str = "span",
    val_fraction: float = 0.2,
    seed: int = 0,
    file_id: str = "",
    start: int = 0,
    candidates: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Start samples of the train, val and test windows of one file of a take.

    Training windows lie on the window grid (multiples of ``hop``) and touch no held-out
    span; validation windows lie wholly inside a validation span (or, for
    ``val="random"``, are a seeded random share of the training windows of this file);
    test windows are the test spans cut into consecutive windows. Everything else on the
    grid (windows straddling a span boundary) is dropped: the guard band. The grid
    starts at sample ``start`` (the take's first sound with ``--trim-silence``).

    ``candidates`` (sorted starts, e.g. at note onsets: ``datasets.onsets``) replace the
    grid: the same rules sort them into train, val and test (test: wholly inside a test
    span), so they never cross held-out time either.

    Returns
    -------
    dict
        ``{"train": starts, "val": starts, "test": starts, "dropped": count array}``.
    """
    window = int(window)
    hop = window if hop is None else int(hop)
    start = int(start)
    if candidates is None:
        grid = start + window_starts(max(0, int(frames) - start), length=window, hop=hop)
    else:
        grid = np.asarray(candidates, dtype=np.int64)
        grid = grid[(grid >= start) & (grid + window <= int(frames))]
    held = list(spans.test) + list(spans.val)
    train_mask = ~overlaps(grid, window, held)
    val_mask = _inside(grid, window, spans.val) & ~overlaps(grid, window, spans.test)
    train, val_starts = grid[train_mask], grid[val_mask]
    if val == "random" and val_fraction > 0 and train.size:
        rng = np.random.default_rng([int(seed), zlib.crc32(f"random-val:{file_id}".encode())])
        pick = np.zeros(train.size, dtype=bool)
        pick[rng.permutation(train.size)[: int(round(train.size * float(val_fraction)))]] = True
        train, val_starts = train[~pick], np.sort(np.concatenate([val_starts, train[pick]]))
    in_test = _inside(grid, window, spans.test)
    test = clip_starts(frames, spans, window=window) if candidates is None else grid[in_test]
    dropped = int((~train_mask & ~val_mask & ~in_test).sum())
    return {"train": train, "val": val_starts, "test": test, "dropped": np.array([dropped])}


# ---------------------------------------------------------------- checking


def overlap_problems(
    windows: pd.DataFrame,
    takes: Mapping[str, Mapping],
    *,
    window: int,
    check_val: bool = True,
) -> list[str]:
    """Every training window that overlaps held-out time of its take, in any tone.

    Checks training windows against the declared test and validation spans *and* against
    the actual test and validation windows of every file of the take; validation windows
    against test time. ``windows`` has ``split``, ``id``, ``take`` and ``start`` columns.
    """
    problems: list[str] = []
    window = int(window)
    for take, group in windows.groupby("take", sort=True):
        spans = TakeSpans.from_json(str(take), takes.get(str(take), {"frames": 0}))
        starts = {s: group.loc[group["split"] == s, ["id", "start"]] for s in SPLITS}
        test_time = _intervals(spans.test, starts["test"]["start"].to_numpy(), window)
        val_time = _intervals(spans.val, starts["val"]["start"].to_numpy(), window)
        checks = [("train", test_time, "test"), ("val", test_time, "test")]
        if check_val:
            checks.append(("train", val_time, "validation"))
        for split, (lo, hi), what in checks:
            frame = starts[split]
            if frame.empty or lo.size == 0:
                continue
            st = frame["start"].to_numpy(dtype=np.int64)
            bad = _hits(st, st + window, lo, hi)
            for idx in np.flatnonzero(bad)[:3]:
                problems.append(
                    f"take {take}: {split} window of {frame['id'].iloc[idx]} at "
                    f"[{st[idx]}, {st[idx] + window}) overlaps {what} time"
                )
            if bad.sum() > 3:
                problems.append(f"take {take}: ... {int(bad.sum()) - 3} more {split} windows")
    return problems


def _intervals(spans: list[Span], starts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out time as merged, sorted ``[lo, hi)`` intervals."""
    los = np.concatenate([np.array([s for s, _ in spans], dtype=np.int64), starts])
    his = np.concatenate([np.array([e for _, e in spans], dtype=np.int64), starts + window])
    if los.size == 0:
        return los, his
    order = np.argsort(los, kind="stable")
    los, his = los[order], his[order]
    merged_lo, merged_hi = [int(los[0])], [int(his[0])]
    for lo, hi in zip(los[1:], his[1:], strict=True):
        if lo <= merged_hi[-1]:
            merged_hi[-1] = max(merged_hi[-1], int(hi))
        else:
            merged_lo.append(int(lo))
            merged_hi.append(int(hi))
    return np.array(merged_lo, dtype=np.int64), np.array(merged_hi, dtype=np.int64)


def _hits(a_lo: np.ndarray, a_hi: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which ``[a_lo, a_hi)`` intersect any of the disjoint sorted intervals ``[lo, hi)``."""
    # the last interval starting before a_hi must end after a_lo
    idx = np.searchsorted(lo, a_hi, side="left") - 1
    valid = idx >= 0
    out = np.zeros(a_lo.shape, dtype=bool)
    out[valid] = hi[idx[valid]] > a_lo[valid]
    return out
