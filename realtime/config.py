"""The typed configuration of a stream and of the page, and the one rule that derives a stream's config.

* `PipelineConfig`: everything one stream's `realtime.pipeline.Pipeline` needs.
* `StreamSettings`: what a user chooses per stream (the CLI flags, or the page's Settings tab).
* `stream_config(base, settings, live)`: the base config with those settings and the mode's policies applied. The
  only place that turns settings into a pipeline config: run_demo.py's headless run and every page stream call it.
* `UIConfig`: the page's own settings, frozen, built once in run_demo.py from the command line (no argparse
  ``Namespace`` travels below run_demo.py).

Nothing here reads the environment or the command line; nothing heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .baseline import BaselineConfig
from .readout import ReadoutConfig
from .scorer import ScorerConfig
from .window import WindowConfig


def _default_face():
    from .features.face import FaceConfig

    return FaceConfig()


def _default_acoustic():
    from .features.acoustic import AcousticConfig

    return AcousticConfig()


def _default_text():
    from .features.text import TextConfig

    return TextConfig()


def _default_transcript():
    from .features.transcript import TranscriptConfig

    return TranscriptConfig()


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline needs; built once by run_demo.py (or a test) and passed in.

    Attributes:
        window: `WindowConfig` (window and hop lengths, emission policy).
        scorer: `ScorerConfig` (checkpoint, device, engine).
        face, acoustic, transcript, text: the extractors' configs (realtime.features); `checkpoint_features` sets
            the acoustic stream and the text overlay the checkpoint was trained on.
        live: live overflow policies (latest frame, drop oldest audio) instead of replay's blocking queues.
        video_queue: frames buffered before the face stage (replay; live keeps one, the latest).
        audio_queue: audio chunks buffered per audio stage (0.1 s chunks: 300 = 30 s, far more than any stage lags).
        event_queue: stage outputs buffered before the scorer.
        stall_timeout_s: in replay, a stage whose watermark has not moved for this long (wall s) while the source
            has moved on is declared stalled: its modality is masked and its queue starts dropping, so the rest
            finishes instead of hanging.
        join_timeout_s: how long `stop()` waits for each thread (s).
        text_cache: distinct word lists whose MiniLM states the language step keeps (`realtime.language`): words
            change far less often than windows, so most windows reuse the previous encoding.
        defer_words: a window whose words are not encoded yet is scored with the newest encoded words, and MiniLM
            runs after its result has gone out (`realtime.language`): MiniLM leaves the capture-to-score path, and
            new words reach the scores one window later. `stream_config` turns it on for live streams only, so a
            replay's scores stay exact and reproducible.
        min_word_prob: a window whose words' mean probability (Whisper's, per word) is below this is scored
            without language (`realtime.language.LanguageStep`); the words still reach the transcript. tiny.en
            turns speech in another language into English words it is unsure of, which the language head would
            read as said. 0.6, by the rule of `python -m benchmarks.word_confidence` (the largest floor leaving at
            most 1 % of the English validation windows unread): none of 884 English validation windows unread,
            0.9638 of EmoDB's German ones; held out, 0.0032 of RAVDESS's test actors' windows, none of TESS's, 0.8858
            of EMOVO's Italian ones, and the sample clip's first 6 of 26 (its cut-off first words, mean 0.36 to
            0.49). Unlike `TranscriptConfig.min_segment_prob` it reads committed words, so no word comes later.
        audio_nice: live streams raise the nice value of the acoustic and transcript stage threads (and the
            openSMILE and Whisper threads they start) by this much on Linux, so that when the cores are short (a
            browser on the same two cores) the face stage and the scorer, which a live score waits for, go first;
            the voice stages' work comes in bursts (a 1 s openSMILE block, a Whisper pass) whose latency the
            scores do not wait for. 0 turns it off. With the transcript catching up on its backlog in one call, three
            alternating browser pairs gave capture-to-score p50 86 / 102 / 86 ms and p90 257 / 325 / 241 ms against
            122 / 211 / 170 and 475 / 722 / 477 ms at 0, the words' delay within the same spread (docs/speed.md 5o).
        baseline: `BaselineConfig`, the per-session baseline applied to each window before scoring
            (`realtime.baseline`); `Pipeline.calibrate` starts its calibration.
        readout: `ReadoutConfig`, the smoothed readout added to each result (`realtime.readout`).
    """

    window: WindowConfig = WindowConfig()
    scorer: ScorerConfig = ScorerConfig()
    face: object = field(default_factory=_default_face)
    acoustic: object = field(default_factory=_default_acoustic)
    transcript: object = field(default_factory=_default_transcript)
    text: object = field(default_factory=_default_text)
    live: bool = False
    video_queue: int = 8
    audio_queue: int = 300
    event_queue: int = 2000
    stall_timeout_s: float = 15.0
    join_timeout_s: float = 1.0
    text_cache: int = 64
    defer_words: bool = False
    min_word_prob: float = 0.6
    audio_nice: int = 5
    baseline: BaselineConfig = BaselineConfig()
    readout: ReadoutConfig = ReadoutConfig()

    def feature_spec(self):
        """The spec of the features this config's extractors produce (what the checkpoint must expect)."""
        from .features.specs import feature_spec

        return feature_spec(self.face.sample_fps, text_model_dir=self.text.model_dir, acoustic=self.acoustic,
                            text_overlay=self.text.overlay)


@dataclass(frozen=True)
class StreamSettings:
    """What the user chooses for a stream (``--checkpoint``, ``--device``, ``--window``, ``--hop``,
    ``--whisper-model``, or the Settings tab); applied by `stream_config` when the stream starts.

    Attributes:
        checkpoint: DMD checkpoint directory.
        device: scoring device (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        window_s: sliding window length (s).
        hop_s: a window is scored every hop (s).
        whisper_model: ``tiny.en`` (English only), ``base`` (multilingual) or a CTranslate2 model directory.
    """

    checkpoint: str
    device: str = "auto"
    window_s: float = 4.0
    hop_s: float = 0.25
    whisper_model: str = "tiny.en"


HISTORY_MARGIN_S = 2.0
"""Data kept beyond the window (s), so a late stage output still finds the rows it belongs with."""
MIN_HISTORY_S = 12.0
"""The window's default history (s): covers the 10 s text window with room to spare."""


def whisper_language(model: str) -> str | None:
    """``tiny.en`` transcribes English only (told so); any other model detects the language itself."""
    return "en" if model == "tiny.en" else None


def stream_config(base: PipelineConfig, settings: StreamSettings, live: bool) -> PipelineConfig:
    """The pipeline config for one stream: ``base`` with the user's settings and the mode's policies (replay: wait
    for every stage, encode the words first, deterministic; live: score as soon as the face stream reaches the hop,
    encode new words after the score, Whisper on `TranscriptConfig.live_cpu_threads`).

    Raises `realtime.checks.SettingError` (a ValueError) for a window or hop that is not a finite number in range."""
    from .checks import window_and_hop

    window_s, hop_s = window_and_hop(settings.window_s, settings.hop_s, names=("window", "hop"))
    history_s = max(MIN_HISTORY_S, window_s + HISTORY_MARGIN_S, base.window.text_window_s)
    window = replace(base.window, window_s=window_s, hop_s=hop_s, wait_for_all=not live, history_s=history_s)
    transcript = replace(base.transcript, model=settings.whisper_model,
                         language=whisper_language(settings.whisper_model),
                         cpu_threads=base.transcript.live_cpu_threads if live else base.transcript.cpu_threads)
    scorer = replace(base.scorer, checkpoint=str(settings.checkpoint), device=settings.device)
    return checkpoint_features(replace(base, window=window, transcript=transcript, scorer=scorer, live=live,
                                       defer_words=live))


def checkpoint_features(config: PipelineConfig) -> PipelineConfig:
    """``config`` with the features its checkpoint was trained on, as its feature spec names (``config.json``, read
    without torch): the acoustic stream (eGeMAPS alone, or eGeMAPS + Whisper encoder states) and MiniLM as shipped
    or with the fine-tuned layers in the checkpoint's directory. A checkpoint that cannot be read leaves the config
    as it is: the scorer says what is wrong with it when it loads."""
    from pathlib import Path

    from dmd_model.checkpoint_config import read_config

    try:
        spec = read_config(config.scorer.checkpoint)[1]
    except (OSError, ValueError):
        return config
    acoustic = config.acoustic.for_spec(spec.acoustic.extractor if spec is not None else None)
    ck = Path(config.scorer.checkpoint)
    text = config.text.for_checkpoint(spec.language.extractor if spec is not None else None,
                                      ck if ck.is_dir() else ck.parent)
    if acoustic is config.acoustic and text is config.text:
        return config
    return replace(config, acoustic=acoustic, text=text)


@dataclass(frozen=True)
class UIConfig:
    """The page server's settings, built once by run_demo.py from its flags (see ``run_demo.py --help``).

    Attributes:
        stream: the default `StreamSettings` of every tab (the Settings tab starts from them).
        replay: a file every new tab starts replaying (``--replay``), or None.
        fast: replay as fast as the pipeline runs (``--fast``) instead of at real-time pace.
        start_at: skip the first seconds of ``replay`` (s).
        max_upload_mb: largest file the Replay tab and the checkpoint upload accept (MB).
        host, port: where the page is served (127.0.0.1: this machine only; the next free port if taken).
        share: ask Gradio for a public share link (off by default).
        keep_session_files: keep each tab's results and uploads after it closes and the server stops.
        frame_every_s: how often the browser sends a webcam frame (s); 0.1 = 10 frames/s, the face stage's
            ``sample_fps``: more would be decimated away on the server.
        webcam_size: the (width, height) the page asks the browser's webcam for (pixels; a request, the camera may
            give another size). 320 x 240: a face at a laptop's distance still spans about 100 pixels, which
            MediaPipe's landmark model resamples to 256 x 256 anyway; against 640 x 480 each frame is 62 kB instead
            of 136 kB to encode, send and decode on the same cores, and capture-to-score p50 fell from 256 / 294 ms
            to 193 / 214 ms in two alternating pairs, with the sample clip's face found in every frame and the same
            fused labels (docs/speed.md 5h).
        audio_every_s: how much microphone audio the browser sends per upload (s). 0.5: each upload is one HTTP
            request; a window waits for the chunk that covers its end, so shorter chunks cut that wait at the cost
            of more requests (measure with ``python -m benchmarks.browser_latency --demo-arg=--audio-every=S``).
    """

    stream: StreamSettings
    replay: str | None = None
    fast: bool = False
    start_at: float = 0.0
    max_upload_mb: float = 200.0
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    keep_session_files: bool = False
    frame_every_s: float = 0.1
    webcam_size: tuple[int, int] = (320, 240)
    audio_every_s: float = 0.5
