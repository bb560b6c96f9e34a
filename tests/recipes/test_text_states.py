"""The recipe's text-line MiniLM states equal the live extractor's (realtime.features.text.TextEncoder)."""

import numpy as np
import pytest

from dmd_model.feature_spec import Word


@pytest.mark.slow
def test_line_states_equal_live_text_encoder():
    from realtime.features.text import TextEncoder

    from dmd_model.recipes.text_states import LineEncoder

    lines = [
        "I can't believe you did that, it's wonderful!",
        "Oh no.",
        "[NAME] is the worst referee I have ever seen in my whole life, honestly unbelievable",
    ]
    live = TextEncoder().start()
    enc = LineEncoder(threads=1)  # the extractor's TextConfig.torch_threads
    batched = enc.encode_lines(lines, batch_size=8, progress=False)
    for line, b in zip(lines, batched):
        words = [Word(w, float(i), float(i) + 0.5) for i, w in enumerate(line.split())]
        ref = live.encode(words).x
        single = enc.encode(line.split())
        assert ref.shape == single.shape == b.shape
        np.testing.assert_array_equal(single, ref)  # same computation, same threads: bit-identical
        np.testing.assert_allclose(b, ref, atol=1e-4)  # batched with padding: float rounding only
