"""Choose the page readout's settings on validation media, never on the test clips of `readout_stability`.

    python -m benchmarks.readout_tuning [--data ../shared/data] [--out DIR] [--reuse] [--segment 5]

The readout (`realtime.readout.Readout`) is a pure function of the raw per-window probabilities, so one replay per
clip is enough: every candidate setting is recomputed from the JSONL. Two validation clips, from material that the
benchmark's test clips do not use and that no model was trained on (the checkpoint's validation splits):

1. **Expression changes** (face only, no audio): the validation-split faces of `recipes.corpora` (CK+48's
   validation subjects, each showing its expressions one after another, so most splices are one face changing
   expression; then FER2013's validation images, two per class, a new person at each splice), each held for
   ``--segment`` seconds, enlarged to 192x192. At each splice the *new label* is the raw label that dominates the
   second half of the new segment; a splice whose new label is the old segment's too (the model reads both alike),
   or whose new segment has no face, is not counted. The figure: after how many seconds the displayed label first
   shows the new label (never within the segment = missed).
2. **Speech** (voice and words, no face): the two shared radio clips (`RD_Radio31_000.wav`, `RD_Radio34_002.wav`,
   one speaker each) one after the other, looped ``--loops`` times. The figure: displayed-label changes a minute.

3. **Voices** (voice and words, no face; part 4): RAVDESS's validation actors (17, 18), each speaking four clips of
   one emotion after another, emotion by emotion (14 segments of 12 to 17 s): a steady voice within a segment, a
   new emotion at each splice. It shows what the time constant of windows without a face (``tau_voice_s``) trades:
   changes a minute on one-emotion speech against the lag after a change, beside the radio speech's changes.

The rule: among the settings that change the displayed label on the speech no more often than the previous defaults
(`PREVIOUS`), take the one that shows the new label within 1.5 s after the most splices; ties go to the smaller
median lag, then to fewer changes a minute, then to the larger time constant; ``lead_hold_s`` stays at its default
(see `HOLDS`). Issue 14's 6 changes a minute is no bound here: the radio clips are not steady (they move from "the
holidays are a time of celebrating" to "constant attack by politicians"), and on them every setting, the previous
defaults included, changes the label more often than that. The face span of the window stays at its default (1 s,
the training face sequences' length): it needs a replay per value and no validation clip shows a talking face. The
test figures stay `python -m benchmarks.readout_stability`'s. Parts 1 to 3 smooth every window with the one time
constant ``tau_s`` (as the readout did when they were run); part 4 then varies ``tau_voice_s`` alone, which is set
by a rule (half the voice's 4 s span), not chosen on this table.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.readout_stability import ROOT, changes, per_minute, relabel, replay, still_clip

FOLLOW_S = 1.5
"""Issue 14's target: the displayed label follows a real change within this many seconds."""
FACE_SIZE = 192
"""Validation faces (48x48 greyscale) are enlarged to this square size (px), about a webcam face's size."""

TAUS = (0.25, 0.5, 0.75, 1.0, 1.5)
MARGINS = (0.05, 0.1, 0.15, 0.2)
DWELLS = (0.5, 1.0, 1.5)
"""The grid (tau_s, switch_margin, min_dwell_s); the other readout settings keep their defaults."""
OFF = 1e9
HOLDS = (0.5, 1.0, 1.5, OFF)
"""``lead_hold_s`` values shown beside the chosen setting (OFF: no held-lead rule). Not chosen here: the validation
faces are read clearly enough that the margin decides every splice, so all of them score alike."""
TAU_VOICES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""``tau_voice_s`` values of part 4 (shown, not chosen: the default is half the voice's 4 s span, as ``tau_s`` is
half the face's 1 s)."""
VOICE_FOLLOW_S = 4.0
"""Part 4's follow figure: within the 4 s over which the voice is read."""
PREVIOUS = (1.0, 0.15, 1.0, OFF)
"""The defaults before this tuning (issue 14, rounds 1 to 4): the bound on the speech's changes a minute."""


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


def face_clip(segs: list[Segment], seconds: float, out: Path) -> Path:
    """A video of the faces, ``seconds`` each, enlarged to FACE_SIZE and made RGB (no audio)."""
    return still_clip([s.path for s in segs], seconds, out, size=FACE_SIZE)


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
    import numpy as np

    pcm = (np.clip(audio, -1, 32767 / 32768) * 32768).astype(np.int16)
    with av.open(str(out), "w") as o:
        a = o.add_stream("pcm_s16le", rate=rate, layout="mono")
        for pts in range(0, len(pcm), 1600):
            af = av.AudioFrame.from_ndarray(pcm[None, pts:pts + 1600], format="s16", layout="mono")
            af.sample_rate, af.pts = rate, pts
            for pkt in a.encode(af):
                o.mux(pkt)
        for pkt in a.encode():
            o.mux(pkt)
    return out


def speech_clip(wavs: list[Path], loops: int, out: Path, rate: int = 16000) -> Path:
    """The audio files one after another, the whole looped ``loops`` times (16 kHz mono PCM in .mkv)."""
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


def score(cfg, face_rows, cuts, speech_rows) -> dict:
    lag = lags(face_rows, relabel(face_rows, cfg), cuts)
    seen = sorted(x for x in lag if x is not None)
    n, _, span = changes(speech_rows, relabel(speech_rows, cfg))
    return {"within": sum(x <= FOLLOW_S + 1e-9 for x in seen), "missed": len(lag) - len(seen),
            "median": statistics.median(seen) if seen else float("inf"), "per_min": per_minute(n, span)}


def config(key: tuple, tau_voice: float | None = None):
    """A readout setting; without ``tau_voice`` one time constant for every window, as before part 4 existed."""
    from realtime.readout import ReadoutConfig

    tau, margin, dwell, hold = key
    return ReadoutConfig(tau_s=tau, tau_voice_s=tau if tau_voice is None else tau_voice,
                         tau_words_s=tau if tau_voice is None else ReadoutConfig.tau_words_s,
                         switch_margin=margin, min_dwell_s=dwell, lead_hold_s=hold)


def voice_table(face_key: tuple, voice_rows: list[dict], cuts: list[dict], speech_rows: list[dict]) -> list[str]:
    """Part 4: the time constant of windows with a voice and no face, on the validation voices and the speech."""
    from realtime.readout import ReadoutConfig

    raw = lags(voice_rows, [d["emotion"] for d in voice_rows], cuts)
    seen = [x for x in raw if x is not None]
    lines = [f"  raw per-window label: new label after {statistics.median(seen):.2f} s (median), "
             f"{sum(x <= VOICE_FOLLOW_S + 1e-9 for x in seen)} of {len(cuts)} within {VOICE_FOLLOW_S:g} s",
             f"  tau_voice_s | changes/min voices  within {VOICE_FOLLOW_S:g} s  missed  median lag | "
             "changes/min speech"]
    for tv in TAU_VOICES:
        cfg = config(face_key, tv)
        lag = lags(voice_rows, relabel(voice_rows, cfg), cuts)
        seen = [x for x in lag if x is not None]
        n, _, span = changes(voice_rows, relabel(voice_rows, cfg))
        m, _, span2 = changes(speech_rows, relabel(speech_rows, cfg))
        median = statistics.median(seen) if seen else float("inf")
        mark = "  (default)" if tv == ReadoutConfig.tau_voice_s else ""
        within = sum(x <= VOICE_FOLLOW_S + 1e-9 for x in seen)
        lines.append(f"  {tv:11.2f} | {per_minute(n, span):18.2f}  {within:5d} of {len(cuts):<3d} "
                     f"{len(lag) - len(seen):6d}  {median:8.2f} s | {per_minute(m, span2):18.2f}{mark}")
    return lines


def choose(table: list[tuple[tuple, dict]], bound: float) -> tuple[tuple, dict] | None:
    """The module docstring's rule (``bound``: the speech's changes a minute under `PREVIOUS`); None when no setting
    is steady enough."""
    ok = [(k, s) for k, s in table if s["per_min"] <= bound + 1e-9]
    return min(ok, key=lambda ks: (-ks[1]["within"], ks[1]["median"], ks[1]["per_min"], -ks[0][0]), default=None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.readout_tuning", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--out", help="keep the clips and JSONL files here (default: a temporary folder)")
    p.add_argument("--reuse", action="store_true", help="with --out: read the JSONL files a previous run left there")
    p.add_argument("--segment", type=float, default=5.0, help="seconds each validation face is shown (default 5)")
    p.add_argument("--loops", type=int, default=2, help="how many times the radio clips are looped (default 2)")
    p.add_argument("--fer-per-class", type=int, default=2, help="FER2013 validation images per class (default 2)")
    p.add_argument("--checkpoint", help="score with this checkpoint (default: the bundled assets/dmd_live)")
    args = p.parse_args(argv)
    if args.segment < 2.0:
        p.error("--segment must be at least 2 s (the lag is read inside the new segment)")
    data = Path(args.data)
    wavs = [data / "media" / "RD_Radio31_000.wav", data / "media" / "RD_Radio34_002.wav"]
    for f in (data / "manifest.csv", *wavs):
        if not f.is_file():
            print(f"error: {f} not found (the validation media come from the shared data folder)", file=sys.stderr)
            return 2
    import benchmarks.readout_stability as rs

    rs.REUSE = bool(args.reuse and args.out)
    rs.CHECKPOINT = args.checkpoint
    tmp = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="readout-tuning-"))
    tmp.mkdir(parents=True, exist_ok=True)

    segs = validation_faces(data, args.fer_per_class)
    faces = tmp / "validation-faces.mp4"
    if not (rs.REUSE and faces.is_file()):
        face_clip(segs, args.segment, faces)
    print(f"1. {len(segs)} validation faces, {args.segment:g} s each ({len(segs) * args.segment:g} s, no audio)")
    face_rows = replay(faces, tmp / "faces.jsonl")
    cuts = splices(face_rows, [k * args.segment for k in range(len(segs) + 1)])
    missing = sum(1 for k in range(len(segs)) if not any(
        d["present"].get("visual") for d in face_rows if k * args.segment <= d["t"] < (k + 1) * args.segment))
    print(f"  {len(cuts)} of {len(segs) - 1} splices counted (the others: the same raw label on both sides, or no "
          f"face); {missing} segments without any face")
    speech = tmp / "validation-speech.mkv"
    if not (rs.REUSE and speech.is_file()):
        speech_clip(wavs, args.loops, speech)
    print(f"2. speech: {' + '.join(w.name for w in wavs)}, looped {args.loops} times")
    speech_rows = replay(speech, tmp / "speech.jsonl")

    from realtime.readout import ReadoutConfig

    d = ReadoutConfig()
    current = (d.tau_s, d.switch_margin, d.min_dwell_s, d.lead_hold_s)
    keys = [(*k, d.lead_hold_s) for k in itertools.product(TAUS, MARGINS, DWELLS)]
    keys += [k for k in (PREVIOUS, current) if k not in keys]
    table = [(key, score(config(key), face_rows, cuts, speech_rows)) for key in keys]
    bound = dict(table)[PREVIOUS]["per_min"]
    best = choose(table, bound)
    print(f"\n3. every setting on the validation clips ({len(cuts)} splices; the new label shown within {FOLLOW_S:g} s;"
          f" the speech's changes a minute at most the previous defaults' {bound:.2f})")
    print("  tau_s  margin  dwell_s  hold_s | within 1.5 s  missed  median lag | speech changes/min")
    for key, s in sorted(table, key=lambda ks: (-ks[1]["within"], ks[1]["median"], ks[1]["per_min"])):
        mark = "".join(m for m, on in (("  <- chosen", bool(best) and key == best[0]),
                                         ("  (previous defaults)", key == PREVIOUS),
                                         ("  (current defaults)", key == current)) if on)
        hold = "off" if key[3] >= OFF else f"{key[3]:.2f}"
        print(f"  {key[0]:5.2f}  {key[1]:6.2f}  {key[2]:7.2f}  {hold:>6s} | {s['within']:5d} of {len(cuts):<3d}"
              f" {s['missed']:6d}  {s['median']:8.2f} s | {s['per_min']:10.2f}{mark}")
    if best is None:
        print("\nno setting changes the label on the speech as rarely as the previous defaults; nothing chosen")
        return 1
    (tau, margin, dwell, hold), s = best
    print(f"\nchosen: tau_s={tau:g} switch_margin={margin:g} min_dwell_s={dwell:g} lead_hold_s={hold:g}: "
          f"{s['within']} of {len(cuts)} splices within {FOLLOW_S:g} s, median lag {s['median']:.2f} s, "
          f"{s['per_min']:.2f} changes/min on the speech (previous defaults: {dict(table)[PREVIOUS]['within']} of "
          f"{len(cuts)}, {bound:.2f}/min)")
    for h in HOLDS:
        r = score(config((tau, margin, dwell, h)), face_rows, cuts, speech_rows)
        print(f"  the same with lead_hold_s {'off' if h >= OFF else f'{h:g}'}: {r['within']} of {len(cuts)} within "
              f"{FOLLOW_S:g} s, median lag {r['median']:.2f} s, {r['per_min']:.2f} changes/min on the speech")
    voices = validation_voices(data)
    voice_file = tmp / "validation-voices.mkv"
    bounds = voice_clip(voices, voice_file)  # rewritten each run: the boundaries come from writing it
    print(f"\n4. the time constant without a face: {len(voices)} one-emotion voice segments of RAVDESS's validation "
          f"actors ({bounds[-1]:.2f} s; words too, no face); tau_s, margin, dwell and hold as chosen above")
    voice_rows = replay(voice_file, tmp / "voices.jsonl")
    voice_cuts = splices(voice_rows, bounds, "acoustic")
    print(f"  {len(voice_cuts)} of {len(voices) - 1} splices counted")
    print("\n".join(voice_table((tau, margin, dwell, hold), voice_rows, voice_cuts, speech_rows)))
    print(f"files: {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
