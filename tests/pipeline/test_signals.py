"""Issue 17, item 5: Ctrl-C and SIGTERM give the same clean stop at any moment, also while models load: exit within
2 s with status 130, no traceback, an existing --jsonl untouched, no temporary file or session folder left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "WDA_KatieHill_000.mp4"


def start(args, tmp_path, **popen):
    # torch keeps its compiler cache under the temporary folder and makes it when torch._dynamo is first imported
    # (a library's torch.compiler.disable, while the models load): torch's own cache, kept across runs on purpose,
    # not something the demo leaves behind, so it goes elsewhere and tmp_path must hold only what the demo wrote
    cache = tmp_path.parent / f"{tmp_path.name}-torch-cache"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path),
               TORCHINDUCTOR_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, str(ROOT / "run_demo.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **popen)


def stop(proc, sig):
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return time.monotonic() - t0, out, err


@pytest.mark.parametrize("sig, delay", [(signal.SIGINT, 0.3), (signal.SIGINT, 2.5), (signal.SIGTERM, 2.5)])
def test_signal_while_models_load_stops_cleanly(tmp_path, live_checkpoint, sig, delay):
    out = tmp_path / "scores.jsonl"
    out.write_text("previous run\n")
    proc = start(["--replay", SAMPLE, "--headless", "--fast", "--jsonl", out, "--checkpoint", live_checkpoint],
                 tmp_path)
    time.sleep(delay)
    assert proc.poll() is None  # still importing / loading models
    elapsed, stdout, stderr = stop(proc, sig)
    assert elapsed < 2.0, stderr[-2000:]
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert out.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.jsonl"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_page_server_stops_on_a_signal_and_removes_its_files(tmp_path, live_checkpoint, sig):
    pytest.importorskip("gradio")
    proc = start(["--checkpoint", live_checkpoint, "--port", "7990"], tmp_path)
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and "open http" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    assert "open http" in line, proc.stderr.read()[-2000:]
    assert [p.name.startswith("dmd-live-") for p in tmp_path.iterdir()] == [True]
    time.sleep(1.0)
    elapsed, _, stderr = stop(proc, sig)
    assert elapsed < 2.0, stderr[-2000:]
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("dmd-live-")]
