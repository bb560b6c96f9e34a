"""Importing any module of the project must stay cheap: no heavy library may load at import time.

Every module under ``realtime/`` (the page's ``realtime.ui`` included), ``dmd_model/`` and ``recipes/`` is found by
walking the packages, so a new module is covered without editing a list. gradio counts as heavy: the UI imports it when the page is built. Only the
network and its training code (``TORCH_MODULES``) may import torch, and nothing else heavy.
"""

import subprocess
import sys

HEAVY = ("torch", "mediapipe", "ctranslate2", "faster_whisper", "opensmile", "transformers", "av", "cv2", "gradio")
PACKAGES = ("realtime", "dmd_model", "recipes")
TORCH_MODULES = (
    "dmd_model.model", "dmd_model.transformer", "dmd_model.gd_unit", "dmd_model.losses", "dmd_model.trainer",
    "dmd_model.inference", "dmd_model.compiled", "dmd_model.checkpoint",
)

CODE = f"""
import importlib, pkgutil, subprocess, sys
names = list({PACKAGES!r})
for pkg in {PACKAGES!r}:
    names += [m.name for m in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + ".")]
probe = "import importlib, sys; importlib.import_module(sys.argv[1]); print(sorted(h for h in {HEAVY!r} if h in sys.modules))"
for name in names:
    # one interpreter per module, so each is judged by what it pulls itself
    out = subprocess.run([sys.executable, "-c", probe, name], capture_output=True, text=True)
    print(name, out.stdout.strip() if out.returncode == 0 else "IMPORT-ERROR " + out.stderr.strip()[-300:])
"""


def test_every_module_imports_without_a_heavy_library():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    pulled = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert len(pulled) >= 60, sorted(pulled)  # the walk found the modules (about 70 today)
    assert {"realtime.ui.app", "realtime.ui.session", "recipes.crosscorpus", "recipes.bootstrap"} <= set(pulled)
    allowed = {name: ("['torch']" if name in TORCH_MODULES else "[]") for name in pulled}
    wrong = {name: got for name, got in pulled.items() if got not in ("[]", allowed[name])}
    assert wrong == {}, wrong
