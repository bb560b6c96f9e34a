"""Where the bundled files are: the one home of the default checkpoint and sample paths (no I/O at import)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (the folder holding assets/ and run_demo.py)."""
ASSETS = ROOT / "assets"
DEFAULT_CHECKPOINT = ASSETS / "dmd_live"
"""The bundled DMD checkpoint (`live` preset, trained by ``python -m recipes.bootstrap``)."""
SAMPLE_CLIP = ASSETS / "WDA_KatieHill_000.mp4"
"""The bundled 8 s sample the page's Replay tab offers."""
