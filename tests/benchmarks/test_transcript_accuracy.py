from benchmarks.transcript_accuracy import norm, word_error_rate


def test_norm_ignores_case_and_punctuation_and_drops_empty_words():
    assert norm(["Kids", "are", "door.", "—", "they're,"]) == ["kids", "are", "door", "they're"]


def test_word_error_rate_counts_substitutions_deletions_and_insertions():
    ref = "kids are talking by the door".split()
    assert word_error_rate(ref, ref) == 0.0
    assert word_error_rate(ref, "kids are walking by the door".split()) == 1 / 6  # one substitution
    assert word_error_rate(ref, "kids are by the door".split()) == 1 / 6  # one deletion
    assert word_error_rate(ref, ref + ref) == 1.0  # six insertions: a copied sentence
    assert word_error_rate(ref, []) == 1.0
