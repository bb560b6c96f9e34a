"""Issue 17, items 7-8: a closed tab leaves nothing behind (its folder, Gradio's copies of its uploads), the page
shows no server paths and offers no path box, and the status never says "playing"/"running" beside an error."""

import json
import shutil
import time
from pathlib import Path
import pytest

from realtime.ui import health, session
from realtime.ui.render import health_snapshot, start_message
from realtime.ui.session import Session, Settings
from realtime.ui.uploads import checkpoint_names
from realtime.ui.workspace import Workspace, public_message

from .test_health_session import _FakePipeline, _Pool, _wait_finished

ROOT = Path(__file__).resolve().parents[2]


def _session(ws=None, factory=_FakePipeline):
    from realtime.pipeline import PipelineConfig

    return Session(PipelineConfig(), Settings(checkpoint="unused"), key="k", pool=_Pool(), pipeline_factory=factory,
                   workspace=ws)


def _cached_upload(ws: Workspace, name: str) -> Path:
    """A file where Gradio stores an upload: <cache>/<content hash>/<name>."""
    d = ws.cache / "0123abcd"
    d.mkdir(parents=True)
    p = d / name
    shutil.copy(session.SAMPLE, p)
    return p


@pytest.mark.parametrize("keep", [False, True])
def test_closing_a_tab_deletes_its_results_and_uploads(tmp_path, keep):
    ws = Workspace(tmp_path / "ws", keep=keep)
    s = _session(ws)
    up = s.own_upload(_cached_upload(ws, "mine.mp4"))
    s.start_replay(up, fast=True)
    _wait_finished(s)
    assert s.dir.parent == ws.sessions  # inside Gradio's cache: downloads are served in place, never copied
    assert sorted(Path(p).name for p in s.downloads) == ["results-1.csv", "results-1.jsonl", "summary-1.png"]
    s.close()
    assert s.dir.exists() == keep and up.exists() == keep and up.parent.exists() == keep
    ws.remove()
    assert ws.root.exists() == keep


def test_upload_deletion_stays_inside_the_cache(tmp_path):
    ws = Workspace(tmp_path / "ws")
    outside = tmp_path / "precious.mp4"
    outside.write_bytes(b"x")
    s = _session(ws)
    s.own_upload(outside)  # a path the browser's request named, outside the cache: never deleted
    s.close()
    assert outside.exists()


def test_messages_on_the_page_carry_no_server_paths(tmp_path):
    assert public_message("/srv/data/uploads/abc/text.mp4: Invalid data found") == "text.mp4: Invalid data found"
    assert public_message("checkpoint /home/u/runs/live not found") == "checkpoint live not found"
    assert public_message("hop 0.25 s, 3/4 present") == "hop 0.25 s, 3/4 present"
    bad = tmp_path / "deep" / "text.mp4"
    bad.parent.mkdir()
    bad.write_text("not a video at all\n" * 50)
    s = _session()
    try:
        s.start_replay(bad, fast=True)
        msg = start_message(s, "text.mp4", timeout=20)
        assert msg.startswith("**Could not play** `text.mp4`: text.mp4") and str(tmp_path) not in msg
        assert str(tmp_path) not in (s.error or "") and s.error
        snap = health_snapshot(s)
        assert snap["state_text"] == "text.mp4: could not start" and snap["running"] is False
    finally:
        s.close()


def test_a_start_that_fails_never_reads_running():
    class NoCamera(_FakePipeline):
        def start(self):
            raise RuntimeError("no camera could be opened")

    s = _session(factory=NoCamera)
    try:
        s.start_replay(session.SAMPLE, fast=True)
        msg = start_message(s, session.SAMPLE.name, timeout=20)
        assert msg == f"**Could not play** `{session.SAMPLE.name}`: could not start: no camera could be opened"
        snap = health_snapshot(s)
        assert snap["state_text"] == f"{session.SAMPLE.name}: could not start"
        assert snap["running"] is False
        assert ("error", "could not start: no camera could be opened") in health.messages(snap)
    finally:
        s.close()


def test_a_good_start_says_playing():
    s = _session()
    try:
        s.start_replay(session.SAMPLE, fast=True)
        assert start_message(s, "x.mp4", timeout=20) == "playing `x.mp4`"
    finally:
        s.close()


def test_settings_offer_checkpoints_by_name_only(tmp_path):
    names = checkpoint_names(str(ROOT / "assets" / "dmd_live"))
    # the default first, then the other bundled checkpoint (the prior-free one the edge caveat points to)
    assert names == {"assets/dmd_live": str(ROOT / "assets" / "dmd_live"),
                     "assets/dmd_live_prior_free": str(ROOT / "assets" / "dmd_live_prior_free")}
    elsewhere = tmp_path / "runs" / "mine"
    names = checkpoint_names(str(elsewhere))
    assert list(names) == ["--checkpoint (mine)", "assets/dmd_live", "assets/dmd_live_prior_free"]


@pytest.mark.slow
def test_page_config_shows_no_server_paths(tmp_path):
    pytest.importorskip("gradio")
    from realtime.config import PipelineConfig, StreamSettings, UIConfig
    from realtime.ui.app import build_app

    ckpt = tmp_path / "secret-place" / "ckpt"
    demo = build_app(UIConfig(stream=StreamSettings(checkpoint=str(ckpt))), PipelineConfig())
    text = json.dumps(demo.get_config_file(), default=str)
    assert str(tmp_path) not in text and str(ROOT) not in text
    drop = [c for c in demo.get_config_file()["components"] if c.get("props", {}).get("label") == "DMD checkpoint"]
    assert len(drop) == 1
    props = drop[0]["props"]
    assert props["allow_custom_value"] is False
    assert [c[0] for c in props["choices"]] == ["--checkpoint (ckpt)", "assets/dmd_live", "assets/dmd_live_prior_free"]


def test_server_stop_closes_every_tab_at_once_and_removes_the_files(tmp_path):
    """The page server's stop (Ctrl-C, SIGTERM) with several tabs playing: each pipeline takes 1 s to stop, the
    tabs are closed in parallel (it took 7 s one after the other), and every folder goes."""
    from realtime.ui import app

    class SlowStop(_FakePipeline):
        def start(self):
            return self  # playing until stopped

        def stop(self):
            time.sleep(1.0)
            self.done.set()
            return []

    ws = Workspace(tmp_path / "ws")
    tabs = [_session(ws, factory=SlowStop) for _ in range(4)]
    for k, s in enumerate(tabs):
        s.start_replay(session.SAMPLE, fast=True)
        assert start_message(s, "x", timeout=20) == "playing `x`"
        app.SESSIONS[f"tab{k}"] = s
    old, app.WORKSPACE = app.WORKSPACE, ws
    try:
        t0 = time.monotonic()
        app.close_all_sessions()
        elapsed = time.monotonic() - t0
    finally:
        app.WORKSPACE = old
    assert elapsed < 2.0  # four 1 s stops in parallel, not 4 s in a row
    assert app.SESSIONS == {} and all(s.closed for s in tabs)
    assert not ws.root.exists()
