"""Heavy models shared by every pipeline in the process, keyed by the config that builds them.

Each replay loaded its own copy of every extractor. What is shared, and why:

* **openSMILE** (``opensmile.Smile``): a description of the feature set; every ``process_signal`` call builds its
  own native extractor, so concurrent calls share nothing mutable.
* **MiniLM** (`text_encoder`, the language step's): stateless between calls; its `encode` takes a lock, and a
  call costs a few ms once per new word list (the language step caches the rest).

Not shared:

* **Whisper.** Its ``transcribe`` keeps no state, but a CTranslate2 model reused from a second stream's thread ran
  4 to 6 times slower (measured, 8 s sample, fast replays in one process: transcript stage mean 78-110 ms a chunk
  with a model per stream, 155 ms for the first stream and 450-610 ms for the next ones with one shared model,
  whose third stream stalled). Each stream loads its own (1.5-3 s), and since a finished pipeline is now freed
  at once (`pipeline._weak_method`), the copies do not pile up. The same holds for the acoustic stage's encoder
  (`realtime.features.whisper_states`, when the checkpoint reads Whisper states): one per stream, loaded by its
  `AcousticProcessor.start`.
* MediaPipe's face landmarker: in VIDEO mode it tracks the face from frame to frame and needs each stream's
  timestamps to increase, so every stream builds its own (about 50 ms) and closes it at its end.
"""

from __future__ import annotations

import collections
import threading


class ModelCache:
    """Builds each model once per key and hands the same object to every caller (thread-safe).

    ``max_entries`` bounds how many distinct configs stay loaded (least recently used goes first): a visitor who
    tries every Whisper model does not keep them all in memory."""

    def __init__(self, max_entries: int = 4):
        self.max_entries = max_entries
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, key, build):
        with self._lock:  # one load at a time; a second caller for the same key waits and shares it
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = build()
            self.loads += 1
            self._items[key] = value
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    # -- the models --------------------------------------------------------------------------------------------
    def smile(self):
        """The eGeMAPS low-level-descriptor ``opensmile.Smile``."""

        def build():
            import opensmile  # lazy: pulls pandas, pyarrow and the native library

            return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                   feature_level=opensmile.FeatureLevel.LowLevelDescriptors)

        return self.get(("smile", "eGeMAPSv02", "LLD"), build)

    def text_encoder(self, config=None):
        """The started MiniLM `realtime.features.text.TextEncoder` for ``config`` (the default `TextConfig`)."""
        from .features.text import TextConfig, TextEncoder

        config = config or TextConfig()
        return self.get(("minilm", config), lambda: TextEncoder(config).start())


SHARED = ModelCache()
"""The process's cache, the default for every `Pipeline`."""
