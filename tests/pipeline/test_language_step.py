"""The language step: replay encodes a window's words before it is scored; live defers a new word list to
`catch_up`, scoring the window with the newest encoded words meanwhile."""

import numpy as np

from dmd_model.feature_spec import Word
from realtime.language import LanguageStep
from realtime.window import WindowSnapshot

DIM, SEQ = 4, 8


class CountingText:
    """One row per word whose values are the word's number: the states say which words they came from."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, words):
        from types import SimpleNamespace

        self.calls.append([w.text for w in words])
        return SimpleNamespace(x=np.stack([np.full(DIM, float(w.text[1:]), np.float32) for w in words]))


def snap(t, *names, probs=None):
    probs = probs or [1.0] * len(names)
    words = [Word(n, 0.1 * k, 0.1 * k + 0.05, p) for k, (n, p) in enumerate(zip(names, probs))]
    return WindowSnapshot(t=t, visual=np.zeros((0, 1), np.float32), acoustic=np.zeros((0, 1), np.float32),
                          words=words, present=(bool(words), False, True))


def rows(s):
    return s.language[:, 0].tolist()


def test_replay_encodes_each_new_word_list_before_scoring_and_reuses_it():
    enc = CountingText()
    step = LanguageStep(enc, SEQ, DIM)
    out = step.push([snap(0.25, "w1"), snap(0.5, "w1"), snap(0.75, "w1", "w2")])
    assert [rows(s) for s in out] == [[1.0], [1.0], [1.0, 2.0]]
    assert [[w.text for w in s.words] for s in out] == [["w1"], ["w1"], ["w1", "w2"]]
    assert enc.calls == [["w1"], ["w1", "w2"]] and not step.pending
    step.catch_up()  # nothing deferred: nothing encoded
    assert enc.calls == [["w1"], ["w1", "w2"]]


def test_live_scores_new_words_one_window_late_and_says_which_words_it_used():
    enc = CountingText()
    step = LanguageStep(enc, SEQ, DIM, defer=True)
    (a,) = step.push([snap(0.25, "w1")])  # nothing encoded yet: no words, language absent
    assert (rows(a), a.words, a.present) == ([], [], (False, False, True)) and enc.calls == [] and step.pending
    step.catch_up()
    assert enc.calls == [["w1"]] and not step.pending and step.last_catch_up_ms > 0.0
    (b,) = step.push([snap(0.5, "w1")])
    assert (rows(b), [w.text for w in b.words], b.present[0]) == ([1.0], ["w1"], True) and not step.pending
    # two new lists before a catch-up: both windows get w1's states, and only the newest list is encoded
    c, d = step.push([snap(0.75, "w1", "w2"), snap(1.0, "w1", "w2", "w3")])
    assert [rows(c), rows(d)] == [[1.0], [1.0]] and [w.text for w in d.words] == ["w1"]
    step.catch_up()
    assert enc.calls == [["w1"], ["w1", "w2", "w3"]] and (step.behind, step.caught_up) == (3, 2)
    (e,) = step.push([snap(1.25, "w1", "w2", "w3")])
    assert rows(e) == [1.0, 2.0, 3.0] and enc.calls == [["w1"], ["w1", "w2", "w3"]]
    (f,) = step.push([snap(1.5)])  # the words left the window: empty at once, nothing to encode
    assert (rows(f), f.present[0], step.pending) == ([], False, False)


def test_reset_forgets_the_encoded_words():
    enc = CountingText()
    step = LanguageStep(enc, SEQ, DIM, defer=True)
    step.push([snap(0.25, "w1")])
    step.catch_up()
    step.reset()
    (a,) = step.push([snap(0.5, "w1")])
    assert rows(a) == [] and step.pending and enc.calls == [["w1"]]


def test_words_whisper_is_unsure_of_are_heard_but_not_read():
    """A window whose words' mean probability is below the floor is scored without language and encodes nothing;
    its words stay (the transcript shows what was heard). The mean decides, not one unsure word."""
    enc = CountingText()
    step = LanguageStep(enc, SEQ, DIM, min_word_prob=0.5)
    sure = snap(0.25, "w1", "w2", probs=[0.2, 0.9])  # mean 0.55: read
    unsure = snap(0.5, "w3", "w4", probs=[0.6, 0.3])  # mean 0.45: not read
    a, b = step.push([sure, unsure])
    assert (rows(a), a.present[0]) == ([1.0, 2.0], True)
    assert (rows(b), b.present, [w.text for w in b.words]) == ([], (False, False, True), ["w3", "w4"])
    assert enc.calls == [["w1", "w2"]] and step.unsure == 1
    live = LanguageStep(enc, SEQ, DIM, defer=True, min_word_prob=0.5)
    (c,) = live.push([unsure])
    assert (rows(c), c.present[0], live.pending, live.unsure) == ([], False, False, 1)
    assert LanguageStep(enc, SEQ, DIM).push([unsure])[0].present[0]  # 0 (no floor) reads every word list


def test_the_floor_on_word_probability_is_checked():
    import pytest

    from realtime.checks import SettingError

    with pytest.raises(SettingError, match="min_word_prob"):
        LanguageStep(CountingText(), SEQ, DIM, min_word_prob=1.5)
