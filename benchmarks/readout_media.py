"""The clips the readout benchmarks replay, built from shared media, and how a replay's splices are read.

Used by `benchmarks.readout_stability` (the issue's test clips, and RAVDESS's test actors) and by
`benchmarks.readout_tuning` (validation media only); it imports neither.
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass
from pathlib import Path


# -- clips -----------------------------------------------------------------------------------------------------------

def mux_pcm(container, stream, audio, rate: int) -> None:
    """Float audio in [-1, 1] into ``stream`` (16-bit mono PCM) of ``container``, in 0.1 s frames, then flush."""
    import av
    import numpy as np

    pcm = (np.clip(audio, -1, 32767 / 32768) * 32768).astype(np.int16)
    step = rate // 10
    for pts in range(0, len(pcm), step):
        af = av.AudioFrame.from_ndarray(pcm[None, pts:pts + step], format="s16", layout="mono")
        af.sample_rate, af.pts = rate, pts
        for pkt in stream.encode(af):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)


def loop_clip(src: Path, loops: int, out: Path) -> Path:
    """``src`` played ``loops`` times in a row (video re-encoded as MPEG-4, audio as 16 kHz mono PCM, in .mkv)."""
    import av
    import numpy as np

    from realtime.features.media import decode_audio

    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        rate = vs.average_rate or 25
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    audio = decode_audio(str(src), 16000)
    with av.open(str(out), "w") as o:
        v = o.add_stream("mpeg4", rate=int(round(float(rate))))
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.bit_rate = 2_000_000
        a = o.add_stream("pcm_s16le", rate=16000, layout="mono")
        for _ in range(loops):
            for fr in frames:
                for pkt in v.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                    o.mux(pkt)
        for pkt in v.encode():
            o.mux(pkt)
        mux_pcm(o, a, np.tile(np.asarray(audio, np.float32), loops), 16000)
    return out


def still_clip(images: list[Path], seconds: float, out: Path, fps: int = 25, size: int | None = None) -> Path:
    """A video of still images, ``seconds`` each, in order (no audio); ``size``: each resized to size x size first
    (bicubic; for stills of different sizes, or small ones)."""
    import av
    import numpy as np
    from PIL import Image

    def load(p: Path):
        img = Image.open(p).convert("RGB")
        return np.asarray(img if size is None else img.resize((size, size), Image.BICUBIC))

    stills = [load(p) for p in images]
    with av.open(str(out), "w") as o:
        v = o.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = stills[0].shape[1], stills[0].shape[0], "yuv420p"
        v.bit_rate = 2_000_000
        for img in stills:
            for _ in range(int(round(seconds * fps))):
                for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    o.mux(pkt)
        for pkt in v.encode():
            o.mux(pkt)
    return out


@dataclass(frozen=True)
class Segment:
    path: Path
    emotion: str
    who: str


def validation_faces(data: Path, fer_per_class: int = 2) -> list[Segment]:
    """CK+48 validation subjects' expressions (one image per class, subject by subject), then FER2013 validation
    images (``fer_per_class`` per class), ordered so that no two neighbours share a class."""
    from recipes.corpora import media_items, stable_key

    items = [i for i in media_items(data) if i.split == "valid" and i.corpus in ("ck48", "fer2013")]
    items.sort(key=lambda i: stable_key(i.key))
    ck: dict[str, dict[str, Path]] = collections.defaultdict(dict)
    for i in items:
        if i.corpus == "ck48":
            ck[i.group].setdefault(i.emotion7, data / i.key)
    segs: list[Segment] = []
    for who in sorted(ck):
        for emotion in sorted(ck[who]):
            segs.append(Segment(ck[who][emotion], emotion, f"ck48:{who}"))
    fer: dict[str, list[Path]] = collections.defaultdict(list)
    for i in items:
        if i.corpus == "fer2013" and len(fer[i.emotion7]) < fer_per_class:
            fer[i.emotion7].append(data / i.key)
    for k in range(fer_per_class):
        for emotion in sorted(fer):
            if k < len(fer[emotion]):
                segs.append(Segment(fer[emotion][k], emotion, f"fer2013:{fer[emotion][k].name}"))
    return _no_repeats(segs)


def _no_repeats(segs: list[Segment]) -> list[Segment]:
    """Greedy reorder so that neighbouring segments differ in class (a splice between equal classes shows no change);
    keeps the given order where it can."""
    left, out = list(segs), []
    while left:
        k = next((j for j, s in enumerate(left) if not out or s.emotion != out[-1].emotion), 0)
        out.append(left.pop(k))
    return out


def validation_voices(data: Path, per_class: int = 4, split: str = "valid") -> list[tuple[Segment, list[Path]]]:
    """RAVDESS's validation actors (``split="test"``: its test actors, for `readout_stability`), each speaking
    ``per_class`` of its clips of one class after another, class by class: a steady voice within a segment, a change
    of emotion (or of speaker) at each splice."""
    from recipes.corpora import media_items, stable_key

    items = [i for i in media_items(data) if i.split == split and i.corpus == "ravdess"]
    items.sort(key=lambda i: stable_key(i.key))
    groups: dict[tuple[str, str], list[Path]] = collections.defaultdict(list)
    for i in items:
        if len(groups[i.group, i.emotion7]) < per_class:
            groups[i.group, i.emotion7].append(data / i.key)
    segs = [(Segment(paths[0], emotion, who), paths) for (who, emotion), paths in sorted(groups.items())]
    order = _no_repeats([seg for seg, _ in segs])
    by_path = {seg.path: paths for seg, paths in segs}
    return [(seg, by_path[seg.path]) for seg in order]


def write_audio(audio, out: Path, rate: int = 16000) -> Path:
    """Float audio in [-1, 1] as 16-bit mono PCM in a Matroska file."""
    import av

    with av.open(str(out), "w") as o:
        mux_pcm(o, o.add_stream("pcm_s16le", rate=rate, layout="mono"), audio, rate)
    return out


def speech_clip(wavs: list[Path], loops: int, out: Path, rate: int = 16000) -> Path:
    """The sound of these media files one after another, the whole looped ``loops`` times (16 kHz mono PCM in .mkv)."""
    import numpy as np

    from realtime.features.media import decode_audio

    return write_audio(np.tile(np.concatenate([decode_audio(str(w), rate) for w in wavs]), loops), out, rate)


def voice_clip(segs: list[tuple[Segment, list[Path]]], out: Path, rate: int = 16000) -> list[float]:
    """Each segment's clips one after another, the segments in order; returns the segment boundaries (s)."""
    import numpy as np

    from realtime.features.media import decode_audio

    parts, bounds = [], [0.0]
    for _, paths in segs:
        audio = np.concatenate([decode_audio(str(p), rate) for p in paths])
        parts.append(audio)
        bounds.append(bounds[-1] + len(audio) / rate)
    write_audio(np.concatenate(parts), out, rate)
    return bounds


def dominant(labels: list[str]) -> str | None:
    return collections.Counter(labels).most_common(1)[0][0] if labels else None


def splices(rows: list[dict], bounds: list[float], modality: str = "visual") -> list[dict]:
    """The countable splices between the segments ``bounds[k]`` to ``bounds[k + 1]`` (s): {t, end, old, new}, with
    ``old``/``new`` the raw labels that dominate the second halves of the old and new segments (windows with
    ``modality`` present) and ``end`` the end of the new segment."""
    def second_half(k: int) -> list[str]:
        lo, hi = (bounds[k] + bounds[k + 1]) / 2, bounds[k + 1]
        return [d["emotion"] for d in rows if lo - 1e-9 <= d["t"] < hi - 1e-9 and d["present"].get(modality)]

    out = []
    for k in range(1, len(bounds) - 1):
        old, new = dominant(second_half(k - 1)), dominant(second_half(k))
        if old is not None and new is not None and old != new:
            out.append({"t": bounds[k], "end": bounds[k + 1], "old": old, "new": new})
    return out


def lags(rows: list[dict], shown: list[str], cuts: list[dict]) -> list[float | None]:
    """Per splice, seconds until ``shown`` first holds the new label inside the new segment (None: never)."""
    out = []
    for c in cuts:
        t = next((d["t"] for d, lab in zip(rows, shown) if c["t"] - 1e-9 <= d["t"] < c["end"] - 1e-9
                  and lab == c["new"]), None)
        out.append(None if t is None else t - c["t"])
    return out


# -- figures

def changes(rows: list[dict], shown: list[str] | None = None) -> tuple[int, int, float]:
    """(displayed-label changes, raw-label changes, media seconds covered)."""
    shown = shown if shown is not None else [d["readout"]["label"] for d in rows]
    raw = [d["emotion"] for d in rows]
    n_shown = sum(a != b for a, b in zip(shown, shown[1:]))
    n_raw = sum(a != b for a, b in zip(raw, raw[1:]))
    span = rows[-1]["t"] - rows[0]["t"] if len(rows) > 1 else 0.0
    return n_shown, n_raw, span


def per_minute(n: int, span: float) -> float:
    return n / span * 60.0 if span > 0 else float("nan")


def follow_summary(rows: list[dict], shown: list[str], cuts: list[dict], follow_s: float) -> dict:
    """For one label sequence over a spliced clip: changes a minute, the lags to each splice's new label, how many
    within ``follow_s``, their median (inf when none) and how many never."""
    lag = lags(rows, shown, cuts)
    seen = sorted(x for x in lag if x is not None)
    n, _, span = changes(rows, shown)
    return {"per_min": per_minute(n, span), "within": sum(x <= follow_s + 1e-9 for x in seen),
            "median": statistics.median(seen) if seen else float("inf"), "missed": len(lag) - len(seen)}
