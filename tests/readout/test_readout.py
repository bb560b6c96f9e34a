"""The page's readout: smoothing, hysteresis, uncertain and no signal, each with hand-computed expectations."""

import math

import pytest

from realtime.readout import NO_SIGNAL, UNCERTAIN, Readout, ReadoutConfig

CFG = ReadoutConfig(tau_s=1.0, switch_margin=0.15, min_dwell_s=1.0, lead_hold_s=1e9, uncertain_prob=0.35,
                    uncertain_margin=0.05)  # held-lead rule off: the margin alone


def test_exponential_smoothing_over_irregular_hops():
    r = Readout(CFG)
    s0 = r.push(0.0, {"a": 1.0, "b": 0.0})
    assert s0.probs == {"a": 1.0, "b": 0.0}  # the first window is taken as is
    s1 = r.push(1.0, {"a": 0.0, "b": 1.0})  # dt = 1 s = tau: a = 1 - e^-1
    assert s1.probs["a"] == pytest.approx(math.exp(-1.0), abs=1e-12)
    assert s1.probs["b"] == pytest.approx(1.0 - math.exp(-1.0), abs=1e-12)
    s2 = r.push(1.5, {"a": 0.0, "b": 1.0})  # dt = 0.5 s: the old mass decays by e^-0.5 more
    assert s2.probs["a"] == pytest.approx(math.exp(-1.5), abs=1e-12)
    # four hops of 0.25 s equal one hop of 1 s
    r4, r1 = Readout(CFG), Readout(CFG)
    r4.push(0.0, {"a": 1.0, "b": 0.0})
    r1.push(0.0, {"a": 1.0, "b": 0.0})
    for t in (0.25, 0.5, 0.75, 1.0):
        last = r4.push(t, {"a": 0.0, "b": 1.0})
    assert last.probs["a"] == pytest.approx(r1.push(1.0, {"a": 0.0, "b": 1.0}).probs["a"], abs=1e-12)


def test_the_time_constant_follows_the_fastest_input_present():
    """2 s after a swap, the old class keeps exp(-2 / tau): tau 1 with a face, 2 with a voice, 4 with words alone."""
    cfg = ReadoutConfig(tau_s=1.0, tau_voice_s=2.0, tau_words_s=4.0)
    kept = {}
    for name, present in (("face", {"visual": True, "acoustic": True, "language": True}),
                          ("voice", {"visual": False, "acoustic": True, "language": True}),
                          ("words", {"visual": False, "acoustic": False, "language": True}),
                          ("bool", True)):
        r = Readout(cfg)
        r.push(0.0, {"a": 1.0, "b": 0.0}, present)
        kept[name] = r.push(2.0, {"a": 0.0, "b": 1.0}, present).probs["a"]
    assert kept["face"] == pytest.approx(math.exp(-2.0), abs=1e-12)
    assert kept["voice"] == pytest.approx(math.exp(-1.0), abs=1e-12)
    assert kept["words"] == pytest.approx(math.exp(-0.5), abs=1e-12)
    assert kept["bool"] == kept["face"]  # a bare "something present" smooths as with a face
    r = Readout(cfg)
    none = {"visual": False, "acoustic": False, "language": False}
    assert r.push(0.0, {"a": 1.0, "b": 0.0}, none).label == NO_SIGNAL


def test_label_switches_when_the_new_class_leads_by_the_margin():
    """a 0.8 / b 0.2 until t = 5, then swapped. s_b - s_a = 0.6 - 1.2 exp(-(t - 5)): it first reaches 0.15 at
    t - 5 >= ln(1.2 / 0.45) = 0.981 s, i.e. at the window t = 6.0 (t = 5.75 gives 0.033)."""
    r = Readout(CFG)
    labels = {}
    for k in range(1, 41):  # t = 0.25 .. 10.0
        t = 0.25 * k
        p = {"a": 0.8, "b": 0.2} if t <= 5.0 else {"a": 0.2, "b": 0.8}
        labels[t] = r.push(t, p).label
    assert {t for t, lab in labels.items() if lab == "a"} == {0.25 * k for k in range(1, 24)}  # up to 5.75
    assert labels[6.0] == "b" and all(labels[t] == "b" for t in labels if t >= 6.0)
    assert r.changes == 1


def test_a_challenger_below_the_margin_does_not_switch():
    r = Readout(CFG)
    r.push(0.0, {"a": 0.5, "b": 0.4, "c": 0.1})
    for k in range(1, 40):  # b now leads a by 0.1 < 0.15: the shown label stays a
        st = r.push(0.25 * k, {"a": 0.42, "b": 0.52, "c": 0.06})
    assert st.label == "a" and st.top == "b" and r.changes == 0


def test_a_held_clear_lead_below_the_margin_switches_after_lead_hold():
    """b leads a by 0.10 (< 0.15) from 0.25 s on, clearly (0.52 >= 0.35, lead >= 0.05): shown after 1.0 s on top."""
    r = Readout(ReadoutConfig(tau_s=1e-6, switch_margin=0.15, min_dwell_s=0.0, lead_hold_s=1.0))
    labels = [r.push(0.0, {"a": 0.5, "b": 0.4, "c": 0.1}).label]
    labels += [r.push(0.25 * k, {"a": 0.42, "b": 0.52, "c": 0.06}).label for k in range(1, 7)]
    assert labels == ["a", "a", "a", "a", "a", "b", "b"] and r.changes == 1


def test_a_lead_traded_back_and_forth_never_counts_as_held():
    r = Readout(ReadoutConfig(tau_s=1e-6, switch_margin=0.15, min_dwell_s=0.0, lead_hold_s=0.5))
    r.push(0.0, {"a": 0.5, "b": 0.4, "c": 0.1})
    for k in range(1, 40):  # b on top at odd windows, a at even ones: the top never holds for 0.5 s
        p = {"a": 0.42, "b": 0.52, "c": 0.06} if k % 2 else {"a": 0.5, "b": 0.44, "c": 0.06}
        st = r.push(0.25 * k, p)
    assert st.label == "a" and r.changes == 0
    # a held lead that is not clear (0.02 < uncertain_margin) does not switch either
    r = Readout(ReadoutConfig(tau_s=1e-6, switch_margin=0.15, min_dwell_s=0.0, lead_hold_s=0.5))
    r.push(0.0, {"a": 0.5, "b": 0.4, "c": 0.1})
    labels = {r.push(0.25 * k, {"a": 0.36, "b": 0.38, "c": 0.26}).label for k in range(1, 12)}
    assert labels == {"a"} and r.changes == 0


def test_minimum_dwell():
    """With almost no smoothing the raw leader moves to b at 0.25 s, but a was shown at 0.0: b waits until 1.0 s."""
    r = Readout(ReadoutConfig(tau_s=1e-6, min_dwell_s=1.0))
    labels = [r.push(0.25 * k, {"a": 0.9, "b": 0.1} if k == 0 else {"a": 0.1, "b": 0.9}).label for k in range(6)]
    assert labels == ["a", "a", "a", "a", "b", "b"]


def test_uncertain_when_no_class_leads():
    r = Readout(CFG)
    assert r.push(0.0, {"a": 0.34, "b": 0.33, "c": 0.33}).label == UNCERTAIN  # top below 0.35
    r = Readout(CFG)
    assert r.push(0.0, {"a": 0.45, "b": 0.42, "c": 0.13}).label == UNCERTAIN  # top two within 0.05
    r = Readout(CFG)
    assert r.push(0.0, {"a": 0.45, "b": 0.39, "c": 0.16}).label == "a"  # 0.06 lead, above 0.35
    # a shown class that loses its support becomes uncertain (after the dwell), and a clear class ends it
    r = Readout(ReadoutConfig(tau_s=1e-6, min_dwell_s=1.0, lead_hold_s=1e9))
    r.push(0.0, {"a": 0.8, "b": 0.1, "c": 0.1})
    assert r.push(0.5, {"a": 0.29, "b": 0.36, "c": 0.35}).label == "a"  # dwell
    assert r.push(1.0, {"a": 0.29, "b": 0.36, "c": 0.35}).label == UNCERTAIN  # a below 0.35 - 0.05
    assert r.push(1.5, {"a": 0.1, "b": 0.8, "c": 0.1}).label == UNCERTAIN  # dwell again
    assert r.push(2.0, {"a": 0.1, "b": 0.8, "c": 0.1}).label == "b"
    assert r.changes == 2


def test_a_shown_class_holds_inside_the_uncertainty_band():
    """Entered at 0.35, left below 0.30: a class wandering between 0.30 and 0.37 stays shown (no smoothing; the
    other three classes share the rest, so a always leads)."""

    def probs(p):
        return {"a": p, "b": (1 - p) / 3, "c": (1 - p) / 3, "d": (1 - p) / 3}

    r = Readout(ReadoutConfig(tau_s=1e-6, min_dwell_s=0.0))
    wander = [0.37, 0.31, 0.36, 0.32, 0.34, 0.30, 0.36]
    labels = [r.push(0.25 * k, probs(p)).label for k, p in enumerate(wander)]
    assert labels == ["a"] * 7 and r.changes == 0
    assert r.push(2.0, probs(0.299)).label == UNCERTAIN  # below 0.30
    assert r.push(2.25, probs(0.34)).label == UNCERTAIN  # from uncertain, 0.34 does not enter
    assert r.push(2.5, probs(0.36)).label == "a"  # 0.36 does
    # without the hold (0) the same wander flips at 0.31, 0.32 and back at the next 0.36
    r0 = Readout(ReadoutConfig(tau_s=1e-6, min_dwell_s=0.0, uncertain_hold=0.0))
    labels0 = [r0.push(0.25 * k, probs(p)).label for k, p in enumerate(wander)]
    assert labels0 == ["a", UNCERTAIN, "a", UNCERTAIN, UNCERTAIN, UNCERTAIN, "a"] and r0.changes == 4


def test_no_signal_and_restart():
    r = Readout(CFG)
    r.push(0.0, {"a": 0.9, "b": 0.1})
    st = r.push(0.25, {"a": 0.9, "b": 0.1}, present=False)
    assert (st.label, st.probs, st.valence, st.top, st.changed) == (NO_SIGNAL, {}, None, "", True)
    assert r.push(0.5, {}, present=True).label == NO_SIGNAL  # a window without classes is no signal too
    st = r.push(0.75, {"a": 0.1, "b": 0.9})  # the smoothing starts afresh, no dwell, no blend with the past
    assert st.label == "b" and st.probs == {"a": 0.1, "b": 0.9} and st.changed
    assert r.changes == 2


def test_valence_follows_the_smoothed_probabilities():
    r = Readout(CFG)
    st = r.push(0.0, {"happy": 0.5, "sad": 0.5, "neutral": 0.0})
    assert st.valence == pytest.approx(0.5 * 0.8 + 0.5 * -0.7, abs=1e-12)
    st = r.push(1.0, {"happy": 1.0, "sad": 0.0, "neutral": 0.0})
    happy = 0.5 + 0.5 * (1 - math.exp(-1.0))
    assert st.valence == pytest.approx(happy * 0.8 + (1 - happy) * -0.7, abs=1e-12)
    assert ReadoutConfig(class_valence={"x": 1.0}).class_valence == {"x": 1.0}


def test_gap_restarts_and_bad_config():
    r = Readout(CFG)
    r.push(0.0, {"a": 0.9, "b": 0.1})
    st = r.push(10.0, {"a": 0.1, "b": 0.9})  # 10 s > reset_gap_s: no blending across the gap
    assert st.probs == {"a": 0.1, "b": 0.9} and st.label == "b"
    for bad in ({"tau_s": 0.0}, {"tau_s": float("nan")}, {"switch_margin": -0.1}, {"uncertain_prob": 1.5},
                {"lead_hold_s": -1.0}, {"lead_hold_s": float("inf")}, {"tau_voice_s": 0.0},
                {"tau_words_s": float("nan")}):
        with pytest.raises(ValueError):
            ReadoutConfig(**bad)
