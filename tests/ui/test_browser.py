"""End to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download):
start ``run_demo.py --replay <shared sample>`` on a free port, open the page, and within 60 s see a non-empty
transcript, a valence value that changes, and edge labels for both graphs. Measures the page's update rate during
the replay and saves a screenshot (artifacts/ui/browser-test.png; set DMD_UI_SCREENSHOT=path to also write it
elsewhere, e.g. assets/screenshot.png)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream"]

# records every change of the shown window time and valence, with the browser's clock
RECORDER = """
() => {
  window.__dmd = {t: [], v: [], seen: {}};
  const poll = () => {
    const t = document.querySelector('#dmd-result-t'), v = document.querySelector('#dmd-valence');
    const now = performance.now();
    if (t && t.textContent !== window.__dmd.lastT) { window.__dmd.lastT = t.textContent; window.__dmd.t.push([now, t.textContent]); }
    if (v && v.textContent !== window.__dmd.lastV) { window.__dmd.lastV = v.textContent; window.__dmd.v.push([now, v.textContent]); }
  };
  setInterval(poll, 20);
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _state(page) -> dict:
    return page.evaluate("""() => ({
        transcript: (document.querySelector('#dmd-transcript') || {}).textContent || '',
        homo: [...document.querySelectorAll('text.edge-label[data-unit="homo"]')].map(e => [e.dataset.edge, e.textContent]),
        hetero: [...document.querySelectorAll('text.edge-label[data-unit="hetero"]')].map(e => [e.dataset.edge, e.textContent]),
        values: window.__dmd ? window.__dmd.v.map(x => x[1]) : [],
        health: (document.querySelector('.health .state') || {}).textContent || '',
    })""")


@pytest.mark.slow
def test_replay_in_headless_chromium(shared_data, ui_checkpoint, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) not installed")
    sample = shared_data / "media" / "WDA_KatieHill_000.mp4"
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_demo.py"), "--replay", str(sample), "--checkpoint",
                             str(ui_checkpoint), "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.25)
        else:
            pytest.fail("server did not open its port within 120 s:\n" + log_path.read_text()[-3000:])
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1250})
            page = ctx.new_page()
            page.goto(url)
            page.evaluate(RECORDER)
            t_open = time.monotonic()
            ok = False
            while time.monotonic() - t_open < 60:
                st = _state(page)
                labelled = lambda pairs: len(pairs) == 6 and all(re.fullmatch(r"\d\.\d\d", x) for _, x in pairs)
                if (st["transcript"].strip() and "no words yet" not in st["transcript"] and len(set(st["values"]) - {"–"}) >= 2
                        and labelled(st["homo"]) and labelled(st["hetero"])):
                    ok = True
                    break
                time.sleep(0.25)
            seen_s = time.monotonic() - t_open
            assert ok, f"after 60 s: {st}\n" + log_path.read_text()[-2000:]
            # the screenshot: the Live tab, mid-replay
            page.get_by_role("tab", name="Live").click()
            time.sleep(0.6)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "browser-test.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("DMD_UI_SCREENSHOT"):
                shutil.copy(shot, os.environ["DMD_UI_SCREENSHOT"])
            # let the replay run to its end, then measure the update rate over the whole replay
            while time.monotonic() - t_open < 120 and "finished" not in _state(page)["health"]:
                time.sleep(0.25)
            final = _state(page)["health"]
            rec = page.evaluate("() => window.__dmd")
            browser.close()
        scored = re.search(r"finished \((\d+) windows\)", final)
        assert scored, final
        ts = [(ms / 1000.0, float(t)) for ms, t in rec["t"]]
        assert len(ts) >= 3, rec
        span = ts[-1][0] - ts[0][0]
        rate = (len(ts) - 1) / span if span > 0 else 0.0
        media = ts[-1][1] - ts[0][1]
        n_scored = int(scored.group(1))
        # The page shows the latest result at each poll (latest wins), so a window can fall between two polls when
        # the machine is busy (CI once showed 28 of 32). What must hold on any machine: results arrive in media
        # order and the page never stalls for long; the share shown is a timing figure, asserted only when strict.
        steps = [b[1] - a[1] for a, b in zip(ts, ts[1:])]
        assert all(s > 0 for s in steps), f"the page went back in media time: {ts}"
        assert max(steps) <= 1.0, f"the page skipped {max(steps):.2f} s of media at once: {ts}"
        assert len(ts) >= 0.5 * n_scored, f"the page showed {len(ts)} of {n_scored} scored windows"
        assert len(ts) >= 0.9 * n_scored or not os.environ.get("DMD_UI_RATE_STRICT"), \
            f"the page showed {len(ts)} of {n_scored} scored windows"
        print(f"\npage: transcript, changing valence and both graphs' labels seen {seen_s:.1f} s after opening; "
              f"{len(ts)} of {n_scored} scored windows shown over {span:.2f} s of wall time ({media:.2f} s of media): "
              f"UI update rate {rate:.2f} updates/s (target >= 3 at a 250 ms hop); screenshot {shot}")
        # The rate is a measured figure (printed above; target >= 3/s), not a timed assertion: CI machines are shared.
        # DMD_UI_RATE_STRICT=1 turns the target into an assertion for a run on an idle machine.
        assert rate >= 3.0 or not os.environ.get("DMD_UI_RATE_STRICT"), f"UI update rate {rate:.2f}/s < 3/s"
        assert rate > 0.5, f"the page barely updated ({rate:.2f}/s)"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
