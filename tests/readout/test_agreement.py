from realtime.agreement import modality_votes, votes_json, votes_text

HEADS = {
    "homo": {"L": {"valence": 0.1, "emotion": "happy"}, "V": {"valence": 0.5, "emotion": "happy"},
             "A": {"valence": -0.4, "emotion": "angry"}},
    "hetero": {"L": {"valence": 0.0, "emotion": "neutral"}, "V": {"valence": 0.4, "emotion": "happy"},
               "A": {"valence": -0.5, "emotion": "sad"}},
}


def test_votes_of_present_modalities():
    votes = modality_votes(HEADS, {"language": True, "visual": True, "acoustic": True}, "happy")
    assert [(v.short, v.verdict) for v in votes] == [("L", "partly"), ("V", "agrees"), ("A", "disagrees")]
    assert votes_text(votes) == "words ½ happy/neutral · face ✓ happy · voice ✗ angry/sad"
    assert votes_json(votes)["A"] == {"homo": "angry", "hetero": "sad", "verdict": "disagrees"}


def test_absent_modalities_are_not_judged():
    votes = modality_votes(HEADS, {"language": False, "visual": True, "acoustic": False}, "sad")
    assert [(v.short, v.verdict) for v in votes] == [("V", "disagrees")]
    assert modality_votes(HEADS, {"language": False, "visual": False, "acoustic": False}, "sad") == []
