import numpy as np
import pytest

from dmd_model.feature_spec import Word
from realtime.features.specs import minilm_dir
from realtime.features.text import TextConfig, TextEncoder

WORDS = [Word("Congressional", 0.0, 0.5), Word("district,", 0.5, 1.0), Word("orientation.", 1.0, 1.6)]


@pytest.fixture(scope="module")
def enc():
    return TextEncoder().start()


def test_tokens_carry_their_word_times(enc):
    s = enc.encode(WORDS)
    assert s.tokens == ["congressional", "district", ",", "orientation", "."]
    assert s.x.shape == (5, 384) and s.x.dtype == np.float32
    np.testing.assert_array_equal(s.word_index, [0, 1, 1, 2, 2])
    np.testing.assert_allclose(s.t, [0.25, 0.75, 0.75, 1.3, 1.3])


def test_states_are_minilm_last_hidden_state_without_specials(enc):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    model = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True).eval()
    with torch.inference_mode():
        ref = model(**tok("Congressional district, orientation.", return_tensors="pt")).last_hidden_state[0]
    np.testing.assert_allclose(enc.encode(WORDS).x, ref[1:-1].numpy(), atol=1e-5)


def test_long_word_lists_are_split_between_words():
    small = TextEncoder(TextConfig(max_tokens=6)).start()
    s = small.encode(WORDS * 3)
    np.testing.assert_array_equal(s.word_index, [0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8])


def test_no_words_gives_zero_rows_and_encoding_is_deterministic(enc):
    assert enc.encode([]).x.shape == (0, 384)
    np.testing.assert_array_equal(enc.encode(WORDS).x, enc.encode(WORDS).x)
