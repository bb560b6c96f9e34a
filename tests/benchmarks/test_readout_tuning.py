"""The readout-tuning protocol: which splices count, how a lag is read, and the selection rule (exact values)."""

from pathlib import Path

import pytest

from benchmarks.readout_media import Segment, _no_repeats, lags, splices, validation_faces
from benchmarks.readout_tuning import choose

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _row(t, label, face=True):
    return {"t": t, "emotion": label, "present": {"visual": face, "acoustic": False, "language": False}}


def test_no_repeats_separates_equal_neighbours_and_keeps_order_otherwise():
    segs = [Segment(Path(n), e, "x") for n, e in (("a", "happy"), ("b", "happy"), ("c", "sad"), ("d", "angry"))]
    assert [s.path.name for s in _no_repeats(segs)] == ["a", "c", "b", "d"]


def test_splices_count_only_changes_the_raw_label_shows():
    # three 2 s segments, one row every 0.5 s: happy | sad | sad (the third reads as the second: not counted)
    labels = ["happy"] * 4 + ["happy", "sad", "sad", "sad"] + ["sad"] * 4
    rows = [_row(0.5 * k, lab) for k, lab in enumerate(labels)]
    assert splices(rows, [0.0, 2.0, 4.0, 6.0]) == [{"t": 2.0, "end": 4.0, "old": "happy", "new": "sad"}]


def test_splices_skip_a_segment_without_a_face():
    rows = [_row(0.5 * k, "happy") for k in range(4)] + [_row(2.0 + 0.5 * k, "neutral", face=False) for k in range(4)]
    assert splices(rows, [0.0, 2.0, 4.0]) == []


def test_lag_is_the_first_displayed_new_label_inside_the_new_segment():
    rows = [_row(0.5 * k, "x") for k in range(8)]
    cuts = [{"t": 2.0, "end": 4.0, "old": "happy", "new": "sad"}]
    shown = ["happy"] * 5 + ["uncertain", "sad", "sad"]
    assert lags(rows, shown, cuts) == [1.0]
    assert lags(rows, ["happy"] * 8, cuts) == [None]


def test_choose_takes_the_most_followed_among_the_steady_then_the_smaller_median_lag():
    v = {"voices_per_min": 10.0}  # the voices alike and within their bound: the speech decides
    table = [((1.0, 0.15, 1.0, 1.0), {"within": 9, "median": 1.0, "per_min": 7.0, **v}),   # above the bound
             ((0.5, 0.10, 1.0, 1.0), {"within": 8, "median": 1.25, "per_min": 3.0, **v}),
             ((0.75, 0.10, 1.0, 1.0), {"within": 8, "median": 1.0, "per_min": 5.0, **v}),
             ((1.5, 0.10, 1.0, 1.0), {"within": 8, "median": 1.0, "per_min": 5.0, **v})]  # tie: the larger tau
    assert choose(table, {"per_min": 6.0, **v})[0] == (1.5, 0.10, 1.0, 1.0)
    assert choose(table, {"per_min": 7.0, **v})[0] == (1.0, 0.15, 1.0, 1.0)
    assert choose(table[:1], {"per_min": 6.0, **v}) is None


def test_choose_bounds_the_voices_too_and_breaks_ties_on_them():
    def row(key, within, voices):
        return key, {"within": within, "median": 0.5, "per_min": 9.0, "voices_per_min": voices}

    table = [row((0.25, 0.20, 1.0, 1.0), 46, 16.4),   # follows the most faces, but the voices flicker more
             row((0.25, 0.05, 0.5, 1.0), 45, 15.5),
             row((0.25, 0.10, 1.0, 1.0), 45, 14.1),   # tied on faces, median and speech: fewer voice changes
             row((0.50, 0.10, 0.5, 1.0), 42, 15.8)]
    bound = {"per_min": 9.0, "voices_per_min": 15.8}
    assert choose(table, bound)[0] == (0.25, 0.10, 1.0, 1.0)
    assert choose(table, {"per_min": 9.0, "voices_per_min": 20.0})[0] == (0.25, 0.20, 1.0, 1.0)
    assert choose(table, {"per_min": 9.0, "voices_per_min": 14.0}) is None


def test_validation_faces_come_from_the_validation_split_only():
    if not (SHARED / "manifest.csv").is_file():
        pytest.skip(f"the shared data folder is absent ({SHARED})")
    from recipes.corpora import media_items

    valid = {str(SHARED / i.key) for i in media_items(SHARED) if i.split == "valid"}
    segs = validation_faces(SHARED)
    assert len(segs) == 58 and all(str(s.path) in valid for s in segs)
    assert all(a.emotion != b.emotion for a, b in zip(segs, segs[1:]))
    assert sum(s.who.startswith("ck48:") for s in segs) == 44
