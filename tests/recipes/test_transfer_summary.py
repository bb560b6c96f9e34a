"""`recipes.transfer_summary`: several runs' held-out heads beside the probe, read from crosscorpus.json files."""

import json

from recipes import transfer_summary as ts


def fold(held, seen, probe, fused, homo, hetero, same_probe=None):
    probes = [{"features": "x", "norm": "global", "acc": probe}]
    if same_probe is not None:
        probes.append({"features": "x", "norm": "global", "as_checkpoint": True, "acc": same_probe})
    rows = [{"head": h, "items": "all", "seen_in_training": seen, "acc": v}
            for h, v in (("fused", fused), ("homo_acoustic", homo), ("hetero_acoustic", hetero))]
    # rows the summary must skip: a baseline variant, and a seen corpus's test split
    rows.append({"head": "fused, calibrated", "items": "all", "seen_in_training": seen, "acc": 0.99})
    rows.append({"head": "fused", "items": "test split", "seen_in_training": seen, "acc": 0.98})
    return {"modality": "voice", "held_out": held, "probes": probes, "checkpoint": rows}


def write_run(folder, folds):
    (folder / "cc_voice").mkdir(parents=True)
    (folder / "cc_voice" / "crosscorpus.json").write_text(json.dumps({"folds": folds}))
    return folder


def test_two_runs_against_the_same_corpora_probe(tmp_path, capsys):
    a = write_run(tmp_path / "a", [fold("ravdess", False, 0.4, 0.2, 0.3, 0.35, same_probe=0.33),
                                   fold("tess", True, 0.3, 0.9, 0.9, 0.9)])
    b = write_run(tmp_path / "b", [fold("ravdess", False, 0.4, 0.25, 0.34, 0.31, same_probe=0.33),
                                   fold("tess", True, 0.3, 0.9, 0.9, 0.9)])
    assert ts.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    # only the unseen corpus, probed on the checkpoint's own corpora (0.33, not the fold's usual 0.4)
    assert out[2] == "| voice: ravdess | 0.33 | fused | 0.2 | 0.25 | 0.225 | 0.2 | 0.25 | 0 of 2 |"
    assert out[3] == "| voice: ravdess | 0.33 | homo | 0.3 | 0.34 | 0.32 | 0.3 | 0.34 | 1 of 2 |"
    assert out[4] == "| voice: ravdess | 0.33 | hetero | 0.35 | 0.31 | 0.33 | 0.31 | 0.35 | 1 of 2 |"
    assert len(out) == 7
    assert out[6] == (f"mean acc of each run's held-out heads: {a} 0.283333 (3 heads); {b} 0.3 (3 heads)")


def test_a_run_that_saw_every_corpus_is_an_error(tmp_path, capsys):
    a = write_run(tmp_path / "a", [fold("tess", True, 0.3, 0.9, 0.9, 0.9)])
    assert ts.main([str(a)]) == 1
    assert "no held-out corpus" in capsys.readouterr().err
