"""Which windows' words the language head should read: the mean word probability of each window's words, on English
speech and on speech in other languages, and the floor (`PipelineConfig.min_word_prob`) chosen from it.

    python -m benchmarks.word_confidence [--data ../shared/data] [--floors 0.4,0.5,0.6,0.7] [--clips 60]

tiny.en is an English recogniser: it turns German or Italian speech into English words it is unsure of, and the
language head reads them as if someone had said them. `TranscriptConfig.min_segment_prob` drops such segments
before they are committed, but it also holds back English phrases that Whisper is still unsure of, so it delays
the words (`benchmarks.transcript_accuracy`, its lag column). This gate reads the committed words instead: a window
whose words' mean probability is below the floor is scored without language (`realtime.language.LanguageStep`),
so the words arrive as fast as before and only what the head reads changes.

Each audio is streamed through `TranscriptProcessor` (defaults) in 0.1 s chunks as a live stream pushes it, and
every 0.25 s a window takes the words committed by then that lie in its text window (`WindowConfig.text_window_s`,
`realtime.window.text_window_words`) and averages their probabilities (`dmd_model.feature_spec.mean_word_prob`).
For each floor it prints the share of word-holding windows whose words the gate leaves unread.

* Validation (the floor is chosen here): RAVDESS's validation actors (17, 18, the readout benchmarks' clips) and
  the two shared radio clips (English), and EmoDB (German).
* Held out (never used to choose): RAVDESS's test actors (19-24), TESS's test clips and the bundled sample (English),
  and EMOVO (Italian).

The rule, set before the first run: the largest floor of ``--floors`` that leaves at most 1 % of the English
validation windows unread (an English speaker should almost never lose their words). No timed figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.transcript_accuracy import ROOT, clips, no_shared_speech, stream

ENGLISH_MAX_UNREAD = 0.01
"""The rule's bound: the share of English validation windows whose words the chosen floor may leave unread."""
VALIDATION = {"ravdess-valid": True, "radio": True, "emodb": False}
HELD_OUT = {"ravdess-test": True, "tess-test": True, "sample": True, "emovo": False}
"""Audio name -> English?"""
HOP_S = 0.25


def audio_of(data: Path, which: str, n_clips: int):
    import numpy as np

    from realtime.features.media import decode_audio

    if which == "radio":
        paths = [data / "media" / "RD_Radio31_000.wav", data / "media" / "RD_Radio34_002.wav"]
    else:
        paths, _ = clips(data, which, n_clips)
    return np.concatenate([decode_audio(str(p), 16000) for p in paths])


def window_means(words, commits: list[float], duration: float, span_s: float) -> list[float]:
    """The mean word probability of each word-holding window (every ``HOP_S`` seconds), reading the words committed
    by the window's end."""
    from dmd_model.feature_spec import mean_word_prob
    from realtime.window import text_window_words

    out, k = [], 1
    while k * HOP_S <= duration + 1e-9:
        t = k * HOP_S
        ws = text_window_words([w for w, c in zip(words, commits) if c <= t + 1e-9], t, span_s)
        if ws:
            out.append(mean_word_prob(ws))
        k += 1
    return out


def unread_share(means: list[float], floor: float) -> float:
    return sum(m < floor for m in means) / len(means) if means else float("nan")


def choose(floors: list[float], english_means: list[float]) -> float:
    """The rule: the largest floor that leaves at most ``ENGLISH_MAX_UNREAD`` of the English windows unread (0 when
    none does)."""
    ok = [f for f in floors if unread_share(english_means, f) <= ENGLISH_MAX_UNREAD]
    return max(ok) if ok else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.word_confidence", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--floors", default="0.4,0.5,0.6,0.7",
                   help="comma-separated floors on a window's mean word probability (default 0.4,0.5,0.6,0.7)")
    p.add_argument("--clips", type=int, default=60, help="TESS, EmoDB and EMOVO clips joined per audio (default 60)")
    args = p.parse_args(argv)
    try:
        floors = sorted(float(x) for x in args.floors.split(",") if x.strip())
    except ValueError:
        p.error("--floors: comma-separated numbers")
    if not floors or any(not 0 <= f <= 1 for f in floors):
        p.error("--floors: numbers in [0, 1]")
    data = Path(args.data)
    if no_shared_speech(data):
        return 2

    from realtime.config import WindowConfig
    from realtime.features.transcript import TranscriptConfig, WhisperASR

    asr = WhisperASR(TranscriptConfig())
    span = WindowConfig().text_window_s
    print(f"tiny.en, default transcript settings, 0.1 s chunks; a window every {HOP_S:g} s reads the words committed "
          f"by its end within {span:g} s")
    print(f"{'audio':14s} {'part':10s} {'lang':4s} {'windows':>7s} {'mean p':>7s} | "
          + " ".join(f"{'unread<' + format(f, 'g'):>10s}" for f in floors))
    english = []
    for part, names in (("validation", VALIDATION), ("held out", HELD_OUT)):
        for name, is_english in names.items():
            audio = audio_of(data, name, args.clips)
            words, commits, *_ = stream(audio, 0, asr)
            means = window_means(words, commits, len(audio) / 16000, span)
            if part == "validation" and is_english:
                english += means
            avg = sum(means) / len(means) if means else float("nan")
            print(f"{name:14s} {part:10s} {'en' if is_english else 'no':4s} {len(means):7d} {avg:7.3f} | "
                  + " ".join(f"{unread_share(means, f):10.4f}" for f in floors), flush=True)
    pick = choose(floors, english)
    print(f"English validation windows: {len(english)}; the rule (largest floor leaving at most "
          f"{ENGLISH_MAX_UNREAD:.0%} of them unread) chooses {pick:g} "
          f"(unread {unread_share(english, pick) if pick else 0.0:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
