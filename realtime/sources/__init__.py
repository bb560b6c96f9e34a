"""Packet sources. Each runs in its own thread and emits `VideoFrame`/`AudioChunk` packets on one clock.

A source implements ``run(emit, stop)``: it calls ``emit(packet)`` for every packet in media-time order and
returns at the end of its media or when ``stop`` is set. It raises `SourceError` for a fatal problem (the
pipeline reports it); a missing modality (no audio track, no camera) is announced by ``has_video``/``has_audio``.
"""


class SourceError(RuntimeError):
    """The source cannot deliver anything (missing or unreadable file, no device)."""
