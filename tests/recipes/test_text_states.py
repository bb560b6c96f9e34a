"""The recipes' text-line MiniLM states equal the live extractor's: one shared code path, two entry points."""

import numpy as np
import pytest

from dmd_model.feature_spec import Word


@pytest.mark.slow
def test_line_states_equal_live_text_encoder():
    from dmd_model.text_encoder import TokenStateEncoder
    from realtime.features.text import TextEncoder

    lines = [
        "I can't believe you did that, it's wonderful!",
        "Oh no.",
        "[NAME] is the worst referee I have ever seen in my whole life, honestly unbelievable",
        "",
    ]
    live = TextEncoder().start()
    enc = TokenStateEncoder(threads=1)  # the extractor's TextConfig.torch_threads
    batched = enc.encode_lines(lines, batch_size=8, progress=False)
    assert len(batched) == len(lines) and batched[-1].states.shape == (0, 384)
    for line, b in zip(lines, batched):
        words = [Word(w, float(i), float(i) + 0.5) for i, w in enumerate(line.split())]
        ref = live.encode(words)
        single = enc.encode(line.split())
        assert ref.x.shape == single.states.shape == b.states.shape
        np.testing.assert_array_equal(single.states, ref.x)  # same computation, same threads: bit-identical
        np.testing.assert_allclose(b.states, ref.x, atol=1e-4)  # batched with padding: float rounding only
        assert single.tokens == b.tokens == ref.tokens
        np.testing.assert_array_equal(b.word_index, ref.word_index)


@pytest.mark.slow
def test_lines_over_the_token_budget_take_the_unbatched_path_in_pieces():
    from dmd_model.text_encoder import TokenStateEncoder

    enc = TokenStateEncoder(max_tokens=6, threads=1)
    long_line = "Congressional district, orientation. " * 3  # 15 tokens: pieces of <= 4 word tokens
    short = "Oh no."  # 3 tokens: fits, batched
    out = enc.encode_lines([long_line, short], batch_size=8, progress=False)
    np.testing.assert_array_equal(out[0].word_index, [0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8])
    np.testing.assert_array_equal(out[0].states, enc.encode(long_line.split()).states)
    assert out[1].tokens == ["oh", "no", "."]


def test_live_preset_reads_the_blendshape_scores_the_face_spec_declares():
    """dmd_model cannot import realtime, so its `live` preset states the score layout itself; the face spec
    (`realtime.features.specs.SCORE_DIMS`, which the recipes use) is the fact it must agree with."""
    from dmd_model.config import preset
    from realtime.features.specs import BLENDSHAPE_NAMES, SCORE_DIMS, VISUAL_NAMES

    assert preset("live").score_dims == SCORE_DIMS == (0, len(BLENDSHAPE_NAMES), 0)
    assert VISUAL_NAMES[: SCORE_DIMS[1]] == BLENDSHAPE_NAMES and preset("live").input_dims[1] == len(VISUAL_NAMES)
