"""Issue 17, item 6: results go to a temporary file in the target's directory and are moved into place, so a failed
start never truncates an existing --jsonl and the file at the target is always complete."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from realtime.sinks.jsonl import JsonlSink

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "WDA_KatieHill_000.mp4"


def result(t):
    return SimpleNamespace(to_json_dict=lambda: {"t": t, "valence": float("nan")})


def test_a_mistyped_checkpoint_leaves_an_existing_jsonl_untouched(tmp_path):
    out = tmp_path / "scores.jsonl"
    out.write_text('{"t": 0.25}\n')
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, str(ROOT / "run_demo.py"), "--replay", str(SAMPLE), "--headless", "--fast",
                          "--jsonl", str(out), "--checkpoint", str(tmp_path / "no-such-checkpoint")],
                         capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "no-such-checkpoint not found" in res.stderr and "Traceback" not in res.stderr
    assert out.read_text() == '{"t": 0.25}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["scores.jsonl"]


def test_lines_reach_the_target_only_when_committed(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("old\n")
    sink = JsonlSink(out)
    sink(result(0.25))
    sink(result(0.5))
    assert out.read_text() == "old\n"  # meanwhile the old file is whole
    assert sink.tmp_path.parent == tmp_path and sink.tmp_path.read_text().count("\n") == 2
    sink.commit()
    sink.commit()  # idempotent
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"t": 0.25, "valence": None},
                                                                       {"t": 0.5, "valence": None}]
    sink(result(1.0))  # after the commit nothing more is written
    assert out.read_text().count("\n") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_discard_keeps_the_old_file(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("old\n")
    sink = JsonlSink(out)
    sink(result(0.25))
    sink.discard()
    sink.commit()  # nothing to commit after a discard
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]
