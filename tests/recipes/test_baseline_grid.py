"""`recipes.baseline_grid`: its rule for replacing the running baseline's defaults, and its arguments."""

import argparse

import pytest

from recipes import baseline_grid as bg

DEFAULT = (30.0, 1.0)


def test_a_setting_must_gain_in_sessions_and_keep_one_emotion_sessions():
    t = {bg.NONE: {"mixed": [0.30, 0.30], "one": [0.30, 0.30]},
         DEFAULT: {"mixed": [0.34, 0.34], "one": [0.31, 0.31]},
         (10.0, 1.0): {"mixed": [0.36, 0.36], "one": [0.304, 0.304]},   # +0.02, one-emotion -0.006: refused
         (10.0, 2.0): {"mixed": [0.355, 0.355], "one": [0.306, 0.306]},  # +0.015, -0.004: qualifies
         (60.0, 1.0): {"mixed": [0.345, 0.345], "one": [0.33, 0.33]}}    # +0.005: too little
    lines, best = bg.verdict(t, DEFAULT, 0.01)
    assert best == (10.0, 2.0)
    assert [("qualifies" in x, "(defaults)" in x) for x in lines] == [
        (False, False), (False, True), (False, False), (True, False), (False, False)]


def test_one_emotion_sessions_must_not_fall_below_no_baseline():
    t = {bg.NONE: {"mixed": [0.30], "one": [0.32]},
         DEFAULT: {"mixed": [0.34], "one": [0.31]},
         (10.0, 1.0): {"mixed": [0.36], "one": [0.315]}}  # within 0.005 of the defaults, but below no baseline
    assert bg.verdict(t, DEFAULT, 0.01)[1] is None


def test_run_argument():
    assert bg.parse_run("runs/x/checkpoint=ravdess, emovo") == (bg.Path("runs/x/checkpoint"), ["ravdess", "emovo"])
    with pytest.raises(argparse.ArgumentTypeError):
        bg.parse_run("runs/x/checkpoint")


def test_grid_must_hold_the_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        bg.main(["--cache", "x", "--run", "a=emovo", "--priors", "10"])
    assert e.value.code == 2
    assert "must hold the defaults" in capsys.readouterr().err


def test_a_cache_without_the_features_is_refused_before_any_model_loads(tmp_path):
    with pytest.raises(SystemExit) as e:
        bg.main(["--cache", str(tmp_path), "--run", "assets/dmd_live=emovo"])
    assert str(e.value).startswith(f"error: no emovo features under {tmp_path / 'features'}")
