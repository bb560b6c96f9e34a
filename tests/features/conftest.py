"""Fixtures for the feature-extractor tests: shared media, and media generated on the fly."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def media(shared_data) -> Path:
    d = shared_data / "media"
    if not (d / "WDA_KatieHill_000.mp4").is_file():
        pytest.skip(f"shared media not found in {d}")
    return d


@pytest.fixture(scope="session")
def katie(media) -> Path:
    return media / "WDA_KatieHill_000.mp4"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) gives the astronaut face")
    return np.ascontiguousarray(skimage_data.astronaut())


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10, audio: np.ndarray | None = None) -> Path:
    """Encode RGB frames (and optional 16 kHz mono audio) into an mp4 with PyAV."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for img in frames:
            for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in v.encode():
            c.mux(pkt)
        if a is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for i in range(0, len(pcm), 1024):
                fr = av.AudioFrame.from_ndarray(pcm[None, i : i + 1024], format="s16", layout="mono")
                fr.sample_rate = 16000
                for pkt in a.encode(fr):
                    c.mux(pkt)
            for pkt in a.encode():
                c.mux(pkt)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """'I am really happy to see you today...' spoken by espeak-ng, as 16 kHz mono wav."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to synthesise speech (apt-get install espeak-ng sox)")
    d = tmp_path_factory.mktemp("speech")
    raw, out = d / "raw.wav", d / "speech16k.wav"
    text = "I am really happy to see you today, this is a wonderful surprise."
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(out)], check=True, timeout=60)
    return out
