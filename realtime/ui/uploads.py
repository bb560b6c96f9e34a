"""What a visitor may hand the page: media files to replay and checkpoints to score with (checked, never trusted).

The page only ever shows checkpoint *names* (`checkpoint_names`), so it neither reveals where the server keeps them
nor lets a visitor type a path to probe the disk. No Gradio here.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from ..features.media import AUDIO_EXTS, VIDEO_EXTS
from ..paths import ASSETS, ROOT
from .workspace import Workspace, delete_upload, public_message


class UploadError(ValueError):
    """An upload the page refuses (too big, wrong type, unreadable); the message is shown to the user."""


def check_upload(path: str | Path, max_mb: float) -> Path:
    """Accept only audio or video files up to ``max_mb`` MB; raise `UploadError` with a clear message otherwise."""
    p = Path(path)
    if not p.is_file():
        raise UploadError(f"{p.name}: the upload did not arrive")
    size_mb = p.stat().st_size / 1e6
    if size_mb > max_mb:
        raise UploadError(f"{p.name} is {size_mb:.1f} MB; the limit is {max_mb:g} MB (--max-upload-mb)")
    ext = p.suffix.lower()
    if ext not in VIDEO_EXTS | AUDIO_EXTS:
        raise UploadError(f"{p.name}: only audio or video files can be replayed (got '{ext or 'no extension'}')")
    if p.stat().st_size == 0:
        raise UploadError(f"{p.name}: the file is empty")
    return p


def find_checkpoints() -> list[str]:
    """Checkpoint directories under assets/ (a folder with config.json and model.safetensors)."""
    if not ASSETS.is_dir():
        return []
    return [str(d) for d in sorted(ASSETS.iterdir())
            if d.is_dir() and (d / "config.json").is_file() and (d / "model.safetensors").is_file()]


def checkpoint_names(cli_checkpoint: str | None) -> dict[str, str]:
    """The checkpoints the Settings tab offers, by the name it shows -> folder: those under assets/ and the one
    ``--checkpoint`` named (uploads are added per session)."""
    out: dict[str, str] = {}
    if cli_checkpoint:
        c = Path(cli_checkpoint).resolve()
        try:
            name = str(c.relative_to(ROOT))
        except ValueError:
            name = f"--checkpoint ({c.name})"
        out[name] = str(c)
    for d in find_checkpoints():
        name = str(Path(d).resolve().relative_to(ROOT))
        out.setdefault(name, str(Path(d).resolve()))
    return out


def install_checkpoint(files: list[Path], max_mb: float, into: Path) -> Path:
    """An uploaded checkpoint (one weights .safetensors, one config .json and, for a checkpoint trained on MiniLM's
    fine-tuned layers, its ``text_encoder.safetensors``), checked from its header and config
    (`dmd_model.checkpoint.check_checkpoint`: sizes capped, every shape compared, nothing built) and copied into a
    new ``checkpoint-N`` folder under ``into``. Returns the folder; raises `UploadError`."""
    from dmd_model.checkpoint import CheckpointError, check_checkpoint
    from dmd_model.text_encoder import OVERLAY_FORMAT, overlay_metadata

    from ..features.specs import TEXT_OVERLAY_FILE

    overlays = [p for p in files if p.name == TEXT_OVERLAY_FILE]
    weights = [p for p in files if p.name.endswith(".safetensors") and p not in overlays]
    configs = [p for p in files if p.name.endswith(".json")]
    if len(weights) != 1 or len(configs) != 1 or len(overlays) > 1:
        raise UploadError(f"upload exactly one .safetensors and one config .json (and {TEXT_OVERLAY_FILE} where "
                          "the checkpoint was trained on it)")
    if sum(p.stat().st_size for p in weights + configs + overlays) > max_mb * 1e6:
        raise UploadError(f"the checkpoint is larger than {max_mb:g} MB")
    d = into / f"checkpoint-{len(list(into.glob('checkpoint-*')))}"
    d.mkdir()
    shutil.copy(weights[0], d / "model.safetensors")
    shutil.copy(configs[0], d / "config.json")
    try:
        if overlays:
            try:
                fmt = overlay_metadata(overlays[0]).get("format")
            except Exception:  # noqa: BLE001 - any unreadable header is a bad upload
                fmt = None
            if fmt != OVERLAY_FORMAT:
                raise CheckpointError(f"{TEXT_OVERLAY_FILE} is not a text-encoder overlay")
            shutil.copy(overlays[0], d / TEXT_OVERLAY_FILE)
        check_checkpoint(d, allow_text_encoder=False)
    except CheckpointError as e:
        shutil.rmtree(d, ignore_errors=True)
        raise UploadError(public_message(str(e))) from None
    return d


class TabFolder:
    """One tab's folder (inside the server's `Workspace`), the uploads Gradio stored for the tab and the
    checkpoints it uploaded; all deleted with the tab unless the workspace keeps files (``--keep-session-files``)."""

    def __init__(self, workspace: Workspace | None = None):
        self.workspace = workspace
        self.dir = Path(tempfile.mkdtemp(prefix="dmd-ui-", dir=workspace.sessions if workspace else None))
        self.uploads: list[Path] = []
        """Files Gradio stored for this tab's uploads (in its cache)."""
        self.checkpoints: dict[str, str] = {}
        """This tab's uploaded checkpoints: the name the page shows -> the folder (inside `dir`)."""
        self._lock = threading.Lock()

    def own_upload(self, path: str | Path) -> Path:
        """Note a file Gradio stored for this tab (deleted when the tab closes); returns it as a Path."""
        p = Path(path)
        with self._lock:
            self.uploads.append(p)
        return p

    def add_checkpoint(self, files, max_mb: float) -> str:
        """An uploaded checkpoint, checked and copied into this folder (`install_checkpoint`). Returns the name the
        page shows; raises `UploadError`."""
        d = install_checkpoint([self.own_upload(f) for f in files], max_mb, self.dir)
        name = f"upload {d.name}"
        with self._lock:
            self.checkpoints[name] = str(d)
        return name

    def delete(self) -> None:
        if self.workspace is not None and self.workspace.keep:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        for p in self.uploads:
            delete_upload(p, self.workspace.cache if self.workspace else None)
