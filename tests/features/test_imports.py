"""Importing the package must stay cheap: no heavy library may load at import time."""

import subprocess
import sys

HEAVY = ("torch", "mediapipe", "ctranslate2", "faster_whisper", "opensmile", "transformers", "av", "cv2")
MODULES = (
    "realtime", "realtime.features", "realtime.features.media", "realtime.features.specs",
    "realtime.features.face", "realtime.features.acoustic", "realtime.features.transcript",
    "realtime.features.text", "realtime.extract", "realtime.bench_features",
    "realtime.clock", "realtime.packets", "realtime.queues", "realtime.stages", "realtime.window", "realtime.scorer",
    "realtime.pipeline", "realtime.batching", "realtime.logs", "realtime.sources.file_replay", "realtime.sources.live",
    "realtime.sinks.jsonl", "realtime.bench_pipeline", "dmd_model", "dmd_model.config", "dmd_model.feature_spec",
    "dmd_model.feature_file", "dmd_model.data", "dmd_model.train", "dmd_model.evaluate",
)


def test_imports_pull_no_heavy_library():
    code = (
        "import sys\n"
        f"for m in {MODULES!r}: __import__(m)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
