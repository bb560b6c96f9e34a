"""Where the bundled files are: the one home of the default checkpoint and sample paths (no I/O at import)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (the folder holding assets/ and run_demo.py)."""
ASSETS = ROOT / "assets"
DEFAULT_CHECKPOINT = ASSETS / "dmd_live"
"""The bundled DMD checkpoint (`live` preset, trained by ``python -m recipes.bootstrap``)."""
PRIOR_FREE_CHECKPOINT = ASSETS / "dmd_live_prior_free"
"""The same recipe with the ``live-prior-free`` preset (no hand-set edge prior, no regulariser), offered in Settings
so that the default model's edges can be compared with what the data alone gives."""
SAMPLE_CLIP = ASSETS / "WDA_KatieHill_000.mp4"
"""The bundled 8 s sample the page's Replay tab offers."""
