"""benchmarks.scoring_ab: another revision's scoring path, loaded beside the working tree's and compared with it."""

import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import scoring_ab

ROOT = Path(__file__).resolve().parents[2]


def git_tree() -> None:
    try:
        subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (or git missing): the benchmark reads the base from git")


def test_a_revision_is_timed_beside_the_working_tree_after_agreeing_with_it(capsys):
    git_tree()
    assert scoring_ab.main(["--base", "HEAD", "--presets", "live", "--batches", "2", "--repeats", "1"]) == 0
    line = re.search(r"live batch +2: max \|base - new\| (\S+) \| base min .* p50 ([\d.]+)x", capsys.readouterr().out)
    assert line, "no result line"
    assert float(line.group(1)) <= scoring_ab.TOL and float(line.group(2)) > 0


def test_an_unknown_revision_stops_with_the_reason():
    git_tree()
    with pytest.raises(SystemExit, match="cannot read dmd_model/inference.py at 'no-such-rev'"):
        scoring_ab.main(["--base", "no-such-rev"])
