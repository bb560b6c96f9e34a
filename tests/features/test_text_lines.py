"""``python -m realtime.extract --text-lines FILE``: one language-only feature file per text row."""

import contextlib
import io

import numpy as np
import pytest

from dmd_model.feature_file import ItemFeatures
from realtime import extract

TSV = (
    "id\ttext\temotion7\tvalence\n"
    "a1\tI can't believe you did that, it's \"wonderful\"!\thappy\t2.5\n"
    "a2\t   \tsad\t-1\n"  # empty text
    "a3\tOh no.\tsad\n"  # a missing column
    "a4\tThe referee was honestly unbelievable today\tangry\t-2\n"
    "a1\tA repeated id\tneutral\t0\n"
)


def test_rows_are_read_with_ids_labels_and_skip_reasons(tmp_path):
    tsv = tmp_path / "lines.tsv"
    tsv.write_text(TSV + "a/5\tbad id\tneutral\t0\n")
    rows = extract.read_text_lines(tsv)
    assert [(r.id, r.skip) for r in rows] == [
        ("a1", ""), ("", "empty text"), ("", "missing column valence"), ("a4", ""), ("a1", ""),
        ("", "id 'a/5' cannot be a file name"),
    ]
    assert rows[0].text == "I can't believe you did that, it's \"wonderful\"!"  # TSV: quotes are text
    assert rows[0].labels == {"emotion7": "happy", "valence": 2.5}
    assert rows[3].labels == {"emotion7": "angry", "valence": -2}
    assert rows[1].source == f"{tsv}:row 2"

    csv = tmp_path / "lines.csv"
    csv.write_text('text,emotion7\n"Well, fine.",neutral\ntoo,many,fields\n')
    rows = extract.read_text_lines(csv)
    assert [(r.id, r.text, r.labels, r.skip) for r in rows] == [
        ("1", "Well, fine.", {"emotion7": "neutral"}, ""), ("", "", {}, "3 fields for 2 header columns"),
    ]

    txt = tmp_path / "lines.txt"
    txt.write_text("first line\n\nthird  line \n")
    assert [(r.id, r.text, r.skip) for r in extract.read_text_lines(txt)] == [
        ("1", "first line", ""), ("", "", "empty text"), ("3", "third  line", ""),
    ]


def run_cli(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = extract.main([str(a) for a in argv])
    return code, err.getvalue()


def test_unusable_text_file_is_a_usage_error(tmp_path):
    out = tmp_path / "out"
    code, err = run_cli("--text-lines", tmp_path / "missing.tsv", "--out", out)
    assert code == 2 and "cannot read text lines" in err and "missing.tsv" in err
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("id,sentence\n1,hello\n")
    code, err = run_cli("--text-lines", no_text, "--out", out)
    assert code == 2 and "needs a 'text' column" in err
    odd = tmp_path / "lines.json"
    odd.write_text("[]")
    code, err = run_cli("--text-lines", odd, "--out", out)
    assert code == 2 and "use .csv, .tsv or .txt" in err
    code, err = run_cli("--out", out)
    assert code == 2 and "nothing to extract" in err
    assert not out.exists()  # refused before any work


def test_help_documents_text_lines(capsys):
    with pytest.raises(SystemExit):
        extract.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--text-lines FILE" in text and "[0.3 i, 0.3 i + 0.3) s" in text and "text line: no audio" in text


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("text_lines")
    (d / "lines.tsv").write_text(TSV)
    (d / "more.txt").write_text("Congressional district, orientation.\n")
    (d / "labels.csv").write_text("stem,split,emotion7\na1,train,neutral\n1,test,\n")
    out = d / "out"
    code, err = run_cli("--text-lines", d / "lines.tsv", "--text-lines", d / "more.txt", "--out", out,
                        "--labels", d / "labels.csv")
    return code, out, err, d


@pytest.mark.slow
def test_text_lines_write_language_only_feature_files(text_run):
    from realtime.features.text import TextEncoder

    code, out, _, d = text_run
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["1.feat.npz", "a1.feat.npz", "a4.feat.npz"]
    live = TextEncoder().start()
    for name, text in [("a1", "I can't believe you did that, it's \"wonderful\"!"),
                       ("a4", "The referee was honestly unbelievable today"),
                       ("1", "Congressional district, orientation.")]:
        item = ItemFeatures.load(out / f"{name}.feat.npz")
        words = text.split()
        assert [w.text for w in item.words] == words
        np.testing.assert_allclose([(w.start, w.end) for w in item.words],
                                   [(0.3 * i, 0.3 * i + 0.3) for i in range(len(words))])
        ref = live.encode(item.words)
        assert item.language.shape == ref.x.shape and item.language.shape[0] >= len(words)
        np.testing.assert_allclose(item.language, ref.x, atol=1e-4)  # batched: float rounding only
        np.testing.assert_array_equal(item.language_t, ref.t)
        assert item.duration_s == pytest.approx(0.3 * len(words))
        assert item.absent == {"visual": "text line: no video", "acoustic": "text line: no audio"}
        assert item.visual.shape == (0, 321) and item.acoustic.shape == (0, 25) and item.face_present.shape == (0,)
        assert item.spec == extract.Extractor().spec  # stamped exactly as the media path stamps it
    assert ItemFeatures.load(out / "a1.feat.npz").labels == {"emotion7": "happy", "valence": 2.5, "split": "train"}
    assert ItemFeatures.load(out / "a4.feat.npz").labels == {"emotion7": "angry", "valence": -2}
    assert ItemFeatures.load(out / "1.feat.npz").labels == {"split": "test"}
    assert ItemFeatures.load(out / "1.feat.npz").source == f"{d / 'more.txt'}:row 1"


@pytest.mark.slow
def test_bad_rows_are_skipped_with_reasons(text_run):
    _, out, err, d = text_run
    tsv = d / "lines.tsv"
    assert f"SKIP {tsv}:row 2: empty text" in err
    assert f"SKIP {tsv}:row 3: missing column valence" in err
    assert f"SKIP {tsv}:row 5: another input already wrote a1.feat.npz" in err
    assert f"note: {tsv}:row 4: no row for id a4" in err
    assert err.rstrip().endswith(f"3 written to {out}, 3 skipped")
