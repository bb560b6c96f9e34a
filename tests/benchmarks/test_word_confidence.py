"""benchmarks.word_confidence: the windows' mean word probabilities and the rule that picks the floor."""

import pytest

from benchmarks.word_confidence import choose, unread_share, window_means
from dmd_model.feature_spec import Word


def test_each_window_reads_the_words_committed_by_its_end_within_its_span():
    words = [Word("a", 0.0, 0.2, 0.2), Word("b", 0.3, 0.5, 0.8), Word("c", 1.6, 1.8, 0.5)]
    commits = [0.5, 0.5, 2.0]
    # windows every 0.25 s over 2.5 s with a 1 s text window: none before 0.5 s (nothing committed), a+b at 0.5 to
    # 1.0, b alone at 1.25 (a ended more than 1 s before), none at 1.5 and 1.75 (b gone, c not committed), c from 2.0
    assert window_means(words, commits, 2.5, 1.0) == pytest.approx([0.5, 0.5, 0.5, 0.8, 0.5, 0.5, 0.5])


def test_the_rule_takes_the_largest_floor_within_the_english_bound():
    english = [0.9] * 198 + [0.55, 0.65]  # 200 windows
    assert unread_share(english, 0.6) == 0.005 and unread_share(english, 0.7) == 0.01
    assert choose([0.4, 0.5, 0.6, 0.7, 0.95], english) == 0.7  # 2 of 200 unread is the 1 % bound
    assert choose([0.95], english) == 0.0  # no floor keeps the bound: no gate
