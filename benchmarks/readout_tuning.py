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

3. **Voices** (voice and words, no face): RAVDESS's validation actors (17, 18), each speaking four clips of one
   emotion after another, emotion by emotion (14 segments of 12 to 17 s): a steady voice within a segment, a new
   emotion at each splice. The figures: displayed-label changes a minute, and how many splices the displayed label
   follows within 4 s (the voice's span).

The rule (round 8): among the settings that change the displayed label on the speech and on the voices no more
often than the previous defaults (`PREVIOUS`, round 5's choice) do, take the one that shows the new label within
1.5 s after the most face splices; ties go to the smaller median lag, then to fewer changes a minute on the speech,
then on the voices, then to the larger time constant; ``lead_hold_s`` stays at its default (see `HOLDS`). Every
setting is read as the readout reads it: the face windows smoothed with the grid's ``tau_s``, the windows without a
face with ``tau_voice_s`` and ``tau_words_s`` (set by their own rule, half the input's span, not chosen here).
Round 5's rule bounded the speech alone, smoothed with the grid's ``tau_s``, by rounds 1 to 4's defaults
(1 s, 0.15, 1 s, no held lead); re-run on the words of the promptless transcript (round 8), it would have slowed
the face to 33 splices of 49 within 1.5 s, and it read the speech as no page shows it since the time constants
without a face exist. Issue 14's 6 changes a minute is no bound here: the radio clips are not steady (they move from
"the holidays are a time of celebrating" to "constant attack by politicians"), and RAVDESS's one-emotion voices
move with the voice head's per-window reading (no setting reaches 6 on them). The face span of the window stays at
its default (1 s, the training face sequences' length): it needs a replay per value and no validation clip shows a
talking face. The test figures stay `python -m benchmarks.readout_stability`'s, and a choice becomes the default
only if they keep issue 14's targets there: round 8's (tau_s 0.25 s, margin 0.2, dwell 1 s) changes the label on
the looped sample 6.59 times a minute (bound 6; 2.82 with the previous defaults), so the defaults stayed round 5's.
A validation clip of a steady talking face would let the rule see that. Part 5 then varies ``tau_voice_s`` alone
beside the chosen setting, to show what its rule trades.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

from benchmarks.readout_media import (Segment, follow_summary, speech_clip, splices, still_clip,
                                      validation_faces, validation_voices, voice_clip)
from benchmarks.readout_stability import ROOT, VOICE_FOLLOW_S, relabel, replay

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
"""``tau_voice_s`` values of part 5 (shown, not chosen: the default is half the voice's 4 s span)."""
PREVIOUS = (0.5, 0.1, 0.5, 1.0)
"""The defaults before this tuning (issue 14, round 5's choice): the bound on the speech's and the voices' changes a
minute."""
ROUND4 = (1.0, 0.15, 1.0, OFF)
"""Rounds 1 to 4's defaults, shown in the table for reference."""


def face_clip(segs: list[Segment], seconds: float, out: Path) -> Path:
    """A video of the faces, ``seconds`` each, enlarged to FACE_SIZE and made RGB (no audio)."""
    return still_clip([s.path for s in segs], seconds, out, size=FACE_SIZE)


def score(key: tuple, face_rows, cuts, speech_rows, voice_rows, voice_cuts) -> dict:
    """A setting read as the readout reads it (`as_read`): the face splices followed (``within``, ``median``,
    ``missed``), the speech's changes a minute (``per_min``), and the voices' changes a minute and splices followed
    within 4 s (``voices_per_min``, ``voices_within``)."""
    face_cfg, other_cfg = as_read(key)
    faces = follow_summary(face_rows, relabel(face_rows, face_cfg), cuts, FOLLOW_S)
    speech = follow_summary(speech_rows, relabel(speech_rows, other_cfg), [], FOLLOW_S)
    voices = follow_summary(voice_rows, relabel(voice_rows, other_cfg), voice_cuts, VOICE_FOLLOW_S)
    return {**faces, "per_min": speech["per_min"], "voices_per_min": voices["per_min"],
            "voices_within": voices["within"]}


def as_read(key: tuple):
    """The readout configs for the face clip and for the clips without a face: ``key`` (tau_s, margin, dwell, hold)
    with the default time constants of windows without a face (a setting of rounds 1 to 4 had one time constant for
    every window, and is read so)."""
    from realtime.readout import ReadoutConfig

    if key == ROUND4:
        return config(key), config(key)
    return config(key), config(key, ReadoutConfig.tau_voice_s)


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

    raw = follow_summary(voice_rows, [d["emotion"] for d in voice_rows], cuts, VOICE_FOLLOW_S)
    lines = [f"  raw per-window label: new label after {raw['median']:.2f} s (median), "
             f"{raw['within']} of {len(cuts)} within {VOICE_FOLLOW_S:g} s",
             f"  tau_voice_s | changes/min voices  within {VOICE_FOLLOW_S:g} s  missed  median lag | "
             "changes/min speech"]
    for tv in TAU_VOICES:
        cfg = config(face_key, tv)
        v = follow_summary(voice_rows, relabel(voice_rows, cfg), cuts, VOICE_FOLLOW_S)
        speech = follow_summary(speech_rows, relabel(speech_rows, cfg), [], VOICE_FOLLOW_S)["per_min"]
        mark = "  (default)" if tv == ReadoutConfig.tau_voice_s else ""
        lines.append(f"  {tv:11.2f} | {v['per_min']:18.2f}  {v['within']:5d} of {len(cuts):<3d} "
                     f"{v['missed']:6d}  {v['median']:8.2f} s | {speech:18.2f}{mark}")
    return lines


def choose(table: list[tuple[tuple, dict]], bound: dict) -> tuple[tuple, dict] | None:
    """The module docstring's rule (``bound``: `PREVIOUS`'s ``per_min`` and ``voices_per_min``); None when no setting
    is steady enough."""
    ok = [(k, s) for k, s in table if s["per_min"] <= bound["per_min"] + 1e-9
          and s["voices_per_min"] <= bound["voices_per_min"] + 1e-9]
    return min(ok, key=lambda ks: (-ks[1]["within"], ks[1]["median"], ks[1]["per_min"], ks[1]["voices_per_min"],
                                   -ks[0][0]), default=None)


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

    voices = validation_voices(data)
    voice_file = tmp / "validation-voices.mkv"
    bounds = voice_clip(voices, voice_file)  # rewritten each run: the boundaries come from writing it
    print(f"3. voices: {len(voices)} one-emotion voice segments of RAVDESS's validation actors ({bounds[-1]:.2f} s; "
          "words too, no face)")
    voice_rows = replay(voice_file, tmp / "voices.jsonl")
    voice_cuts = splices(voice_rows, bounds, "acoustic")
    print(f"  {len(voice_cuts)} of {len(voices) - 1} splices counted")

    from realtime.readout import ReadoutConfig

    d = ReadoutConfig()
    current = (d.tau_s, d.switch_margin, d.min_dwell_s, d.lead_hold_s)
    keys = [(*k, d.lead_hold_s) for k in itertools.product(TAUS, MARGINS, DWELLS)]
    keys += [k for k in (PREVIOUS, ROUND4, current) if k not in keys]
    clips = {"face_rows": face_rows, "cuts": cuts, "speech_rows": speech_rows, "voice_rows": voice_rows,
             "voice_cuts": voice_cuts}
    table = [(key, score(key, **clips)) for key in keys]
    bound = dict(table)[PREVIOUS]
    best = choose(table, bound)
    print(f"\n4. every setting on the validation clips ({len(cuts)} face splices, the new label shown within "
          f"{FOLLOW_S:g} s; changes a minute at most the previous defaults': speech {bound['per_min']:.2f}, voices "
          f"{bound['voices_per_min']:.2f})")
    print(f"  tau_s  margin  dwell_s  hold_s | within 1.5 s  missed  median lag | speech changes/min | voices "
          f"changes/min  within {VOICE_FOLLOW_S:g} s")
    order = lambda ks: (-ks[1]["within"], ks[1]["median"], ks[1]["per_min"], ks[1]["voices_per_min"])  # noqa: E731
    for key, s in sorted(table, key=order):
        mark = "".join(m for m, on in (("  <- chosen", bool(best) and key == best[0]),
                                         ("  (previous defaults)", key == PREVIOUS),
                                         ("  (rounds 1-4, one time constant)", key == ROUND4),
                                         ("  (current defaults)", key == current)) if on)
        hold = "off" if key[3] >= OFF else f"{key[3]:.2f}"
        print(f"  {key[0]:5.2f}  {key[1]:6.2f}  {key[2]:7.2f}  {hold:>6s} | {s['within']:5d} of {len(cuts):<3d}"
              f" {s['missed']:6d}  {s['median']:8.2f} s | {s['per_min']:18.2f} | {s['voices_per_min']:18.2f}"
              f"  {s['voices_within']:3d} of {len(voice_cuts)}{mark}")
    if best is None:
        print("\nno setting changes the label as rarely as the previous defaults; nothing chosen")
        return 1
    (tau, margin, dwell, hold), s = best
    print(f"\nchosen: tau_s={tau:g} switch_margin={margin:g} min_dwell_s={dwell:g} lead_hold_s={hold:g}: "
          f"{s['within']} of {len(cuts)} splices within {FOLLOW_S:g} s, median lag {s['median']:.2f} s, "
          f"{s['per_min']:.2f} changes/min on the speech, {s['voices_per_min']:.2f} on the voices (previous defaults: "
          f"{bound['within']} of {len(cuts)}, {bound['median']:.2f} s, {bound['per_min']:.2f}/min, "
          f"{bound['voices_per_min']:.2f}/min)")
    for h in HOLDS:
        r = score((tau, margin, dwell, h), **clips)
        print(f"  the same with lead_hold_s {'off' if h >= OFF else f'{h:g}'}: {r['within']} of {len(cuts)} within "
              f"{FOLLOW_S:g} s, median lag {r['median']:.2f} s, {r['per_min']:.2f} changes/min on the speech, "
              f"{r['voices_per_min']:.2f} on the voices")
    print("\n5. the time constant without a face (tau_voice_s) beside the chosen setting")
    print("\n".join(voice_table((tau, margin, dwell, hold), voice_rows, voice_cuts, speech_rows)))
    print(f"files: {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
