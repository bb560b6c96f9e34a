"""How well the streaming transcript hears speech whose words are known: word error rate of `TranscriptProcessor`.

    python -m benchmarks.transcript_accuracy [--audio ravdess-valid,ravdess-test,tess-test,emodb,emovo,sample]
                                             [--prompt-chars 0,200] [--zero-duration drop,keep]
                                             [--min-segment-prob 0,0.5]

Two shared speech corpora say known sentences: RAVDESS's actors say "Kids are talking by the door" or "Dogs are
sitting by the door" (the fifth field of the file name), TESS's speakers "Say the word <word>" (the name's second
field). Their clips are joined one after another (RAVDESS as `benchmarks.readout_media.validation_voices` orders them
for the readout benchmarks: four clips per actor and class for the validation actors, three for the test actors;
TESS: the first ``--tess-clips`` test clips in the corpora's stable order) and streamed through the transcript
processor in 0.1 s chunks, as a live stream pushes them. For each prompt setting and each way with the words of
zero duration (dropped by Whisper's step, the default, or kept) it prints the words spoken, the words committed, how
many of those have zero duration (Whisper's copies and loops have), the word error rate (case and punctuation
ignored) and the compute time. The two corpora repeat their sentences, which is where a prompt of the committed
text misleads Whisper (`TranscriptConfig.prompt_chars`, `TranscriptConfig.drop_zero_duration`). EmoDB (German) and
EMOVO (Italian) clips, joined the same way, are speech the English model cannot transcribe: there it prints the words
committed, every one of them wrong, for each floor on a segment's mean word probability
(`TranscriptConfig.min_segment_prob`). ``sample`` is the bundled clip (English, no reference words here). For every
audio the last column is the largest commit lag: how far (media seconds) a word's end lies behind the audio pushed
when it is committed, the wait a floor adds while Whisper is still unsure of a phrase.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAVDESS_STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
AUDIO = ("ravdess-valid", "ravdess-test", "tess-test", "emodb", "emovo", "sample")
FOREIGN = {"emodb": "German", "emovo": "Italian"}
"""Speech the English model cannot transcribe: every word it commits there is wrong (no word error rate)."""
SAMPLE = ROOT / "assets" / "WDA_KatieHill_000.mp4"
"""``sample``: the bundled clip (English, no reference words here: its committed words and their lag only)."""


def norm(words) -> list[str]:
    """Each word as `realtime.features.transcript.norm_word` compares it (lower case, no punctuation); empty ones
    dropped."""
    from realtime.features.transcript import norm_word

    return [w for w in map(norm_word, words) if w]


def word_error_rate(ref: list[str], hyp: list[str]) -> float:
    """(substitutions + deletions + insertions) / len(ref), by Levenshtein distance over words."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / len(ref)


def clips(data: Path, which: str, tess_clips: int) -> tuple[list[Path], list[str]]:
    """The clips of ``which`` in order, and the words they say (none where unknown or not English)."""
    if which == "sample":
        return [SAMPLE], []
    if which.startswith("ravdess-"):
        from benchmarks.readout_media import validation_voices

        split = which.split("-", 1)[1]
        segs = validation_voices(data, per_class=4 if split == "valid" else 3, split=split)
        paths = [p for _, ps in segs for p in ps]
        return paths, [w for p in paths for w in RAVDESS_STATEMENTS[p.stem.split("-")[4]].split()]
    from recipes.corpora import media_items, stable_key

    if which in FOREIGN:
        items = sorted((i for i in media_items(data) if i.corpus == which), key=lambda i: stable_key(i.key))
        return [data / i.key for i in items[:tess_clips]], []
    items = sorted((i for i in media_items(data) if i.corpus == "tess" and i.split == "test"),
                   key=lambda i: stable_key(i.key))[:tess_clips]
    paths = [data / i.key for i in items]
    return paths, [w for p in paths for w in f"say the word {p.stem.split('_')[1]}".split()]


def no_shared_speech(data: Path) -> bool:
    """True (after saying so on stderr) when ``data`` is not the shared data folder the speech comes from."""
    if (data / "manifest.csv").is_file():
        return False
    print(f"error: {data / 'manifest.csv'} not found (the speech comes from the shared data folder)", file=sys.stderr)
    return True


def stream(audio, prompt_chars: int, asr) -> tuple[list, list[float], float, int, float]:
    """The committed words of ``audio`` pushed in 0.1 s chunks, when each was committed (media s: the end of the
    audio pushed by then), the compute seconds, the Whisper calls and the largest commit lag (media seconds from a
    word's end to its commit; the words ``flush`` commits at the end are left out, as a live stream never flushes
    mid-speech)."""
    from realtime.features.transcript import TranscriptProcessor

    proc = TranscriptProcessor(dataclasses.replace(asr.config, prompt_chars=prompt_chars), asr=asr)
    words, commits, lag, t0 = [], [], 0.0, time.perf_counter()
    for i in range(0, len(audio), 1600):
        new = proc.push(audio[i:i + 1600])
        lag = max([lag, *(proc.buffer_end - w.end for w in new)])
        words += new
        commits += [proc.buffer_end] * len(new)
    last = proc.flush()
    words += last
    commits += [proc.buffer_end] * len(last)
    return words, commits, time.perf_counter() - t0, proc.calls, lag


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transcript_accuracy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--audio", default=",".join(AUDIO), help=f"comma-separated, of {', '.join(AUDIO)}")
    p.add_argument("--prompt-chars", default="0,200",
                   help="comma-separated prompt lengths to compare (characters; 0 = no prompt, the default)")
    p.add_argument("--zero-duration", default="drop,keep",
                   help="comma-separated: drop (the default) and/or keep the words of zero duration")
    p.add_argument("--min-segment-prob", default=None,
                   help="comma-separated floors on a segment's mean word probability to compare (default: the "
                        "setting's default)")
    p.add_argument("--tess-clips", type=int, default=60,
                   help="TESS test clips joined, and EmoDB or EMOVO clips (default 60)")
    args = p.parse_args(argv)
    which = [a.strip() for a in args.audio.split(",") if a.strip()]
    bad = [a for a in which if a not in AUDIO]
    if bad or not which:
        p.error(f"--audio: unknown {bad}; choose from {', '.join(AUDIO)}")
    try:
        prompts = [int(x) for x in args.prompt_chars.split(",")]
    except ValueError:
        p.error("--prompt-chars: comma-separated whole numbers")
    if any(x < 0 for x in prompts):
        p.error("--prompt-chars: 0 or more")
    try:
        floors = ([float(x) for x in args.min_segment_prob.split(",")] if args.min_segment_prob
                  else [None])
    except ValueError:
        p.error("--min-segment-prob: comma-separated numbers")
    zero = [z.strip() for z in args.zero_duration.split(",") if z.strip()]
    if not zero or any(z not in ("drop", "keep") for z in zero):
        p.error("--zero-duration: drop and/or keep")
    data = Path(args.data)
    if no_shared_speech(data):
        return 2

    import numpy as np

    from realtime.features.media import decode_audio
    from realtime.features.transcript import TranscriptConfig, WhisperASR

    def asr_for(z, floor):
        kw = {} if floor is None else {"min_segment_prob": floor}
        return WhisperASR(TranscriptConfig(drop_zero_duration=z == "drop", **kw))

    asrs = {(z, f): asr_for(z, f) for z in zero for f in floors}
    print(f"streamed in 0.1 s chunks; tiny.en int8, {TranscriptConfig.cpu_threads} threads")
    print(f"{'audio':14s} {'seconds':>8s} {'spoken':>7s} | {'prompt':>6s} {'0 s':>4s} {'floor':>5s} {'committed':>9s} "
          f"{'zero-dur':>8s} {'WER':>7s} {'compute s':>9s} {'calls':>6s} {'lag max s':>9s}")
    for a in which:
        paths, ref = clips(data, a, args.tess_clips)
        audio = np.concatenate([decode_audio(str(f), 16000) for f in paths])
        spoken = (f"{len(ref):7d}" if ref else f"{'0 (' + FOREIGN[a][:2] + ')':>7s}" if a in FOREIGN
                  else f"{'?':>7s}")
        for pc in prompts:
            for (z, f), asr in asrs.items():
                words, _, secs, calls, lag = stream(audio, pc, asr)
                hyp = norm(w.text for w in words)
                n_zero = sum(1 for w in words if w.end - w.start <= 1e-6)
                wer = f"{word_error_rate(ref, hyp):7.4f}" if ref else f"{'-':>7s}"
                print(f"{a:14s} {len(audio) / 16000:8.2f} {spoken} | {pc:6d} {z:>4s} "
                      f"{asr.config.min_segment_prob:5.2f} {len(hyp):9d} {n_zero:8d} {wer} {secs:9.2f} {calls:6d} "
                      f"{lag:9.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
