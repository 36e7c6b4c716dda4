from __future__ import annotations

import json
from pathlib import Path

import pytest

from datadistill.data import DataError, Example, ExampleReader, LabelMap, atomic_write, read_examples, write_examples
from datadistill.data.io import read_splits


def w(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_reads_columns_by_name_in_any_order_and_ignores_extras(tmp_path):
    p = w(tmp_path, "a.tsv", "text_a\tcategory\tlabel\n好\t书籍\t1\n差\t酒店\t0\n".encode())
    exs = read_examples(p)
    assert [(e.label, e.text_a, e.line) for e in exs] == [("1", "好", 2), ("0", "差", 3)]


def test_label_column_can_be_named(tmp_path):
    p = w(tmp_path, "a.tsv", "category\tlabel\ttext_a\n书籍\t1\t好\n".encode())
    assert read_examples(p, label_column="category")[0].label == "书籍"


def test_pairs(tmp_path):
    p = w(tmp_path, "p.tsv", "text_a\ttext_b\tlabel\n怎么办\t如何做\t1\n".encode())
    (ex,) = read_examples(p)
    assert (ex.text_a, ex.text_b, ex.label) == ("怎么办", "如何做", "1")


def test_missing_required_column(tmp_path):
    p = w(tmp_path, "a.tsv", "label\ttext\n1\t好\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 1: missing required column 'text_a' (header has: label, text)"


def test_too_few_and_too_many_fields(tmp_path):
    p = w(tmp_path, "a.tsv", "label\ttext_a\n1\t好\n0\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 3: too few fields: expected 2 (label, text_a), found 1"
    p = w(tmp_path, "b.tsv", "label\ttext_a\n1\t好\tx\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 2: too many fields: expected 2 (label, text_a), found 3"


def test_empty_text(tmp_path):
    p = w(tmp_path, "a.tsv", "label\ttext_a\n1\t好\n0\t  \n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 3: empty text_a"


def test_missing_label_column_names_the_option(tmp_path):
    p = w(tmp_path, "a.tsv", "category\ttext_a\n书籍\t好\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == (
        f"{p}, line 1: missing required column 'label' (header has: category, text_a); "
        "name the label column with --label-column (data.label_column in a config)"
    )


@pytest.mark.parametrize(
    "name,data",
    [
        ("q.tsv", "qid\ttext_a\ttext_b\tlabel\nq1\t怎么办\t如何做\t1\n \t怎么办\t为什么\t0\n"),
        (
            "q.jsonl",
            '{"qid": "q1", "text_a": "a", "text_b": "b", "label": "1"}\n'
            '{"qid": null, "text_a": "a", "text_b": "c", "label": "0"}\n',
        ),
    ],
)
def test_an_empty_qid_is_refused(tmp_path, name, data):
    p = w(tmp_path, name, data.encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line {2 if name.endswith('jsonl') else 3}: empty qid"


def test_training_needs_two_labels_and_case_twins_are_named(tmp_path, caplog):
    one = w(tmp_path, "one.tsv", "label\ttext_a\n1\t好\n1\t差\n".encode())
    with pytest.raises(DataError) as e:
        read_splits(one)
    assert str(e.value) == f"{one}: every example has label '1': a classifier needs at least two labels"
    twins = w(tmp_path, "twins.tsv", "label\ttext_a\nHotel\t好\nhotel\t差\nbook\t书\n".encode())
    _, _, _, lm = read_splits(twins)
    assert lm.labels == ["Hotel", "book", "hotel"]
    assert f"{twins}: labels 'Hotel', 'hotel' differ only in case; they are separate classes" in caplog.text


def test_label_not_in_label_map(tmp_path):
    p = w(tmp_path, "dev.tsv", "label\ttext_a\n1\t好\n2\t差\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p, label_map=LabelMap(["0", "1"]))
    assert str(e.value) == f"{p}, line 3: label '2' is not in the label map (known: 0, 1)"


def test_invalid_utf8(tmp_path):
    p = w(tmp_path, "a.tsv", b"label\ttext_a\n1\t\xe5\xa5\xbd\n0\tab\xffc\n")
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 3: invalid UTF-8 (byte 0xff at byte 5)"


def test_bom_and_crlf(tmp_path):
    p = w(tmp_path, "a.tsv", "\ufefflabel\ttext_a\r\n1\t好\r\n0\t差\r\n".encode())
    assert [(e.label, e.text_a) for e in read_examples(p)] == [("1", "好"), ("0", "差")]


def test_missing_final_newline(tmp_path):
    p = w(tmp_path, "a.tsv", "label\ttext_a\n1\t好\n0\t差".encode())
    assert [e.text_a for e in read_examples(p)] == ["好", "差"]


@pytest.mark.shared("chnsenticorp")
def test_chnsenticorp_dev_test_load_all_rows(shared_data):
    CHNSENTI = shared_data / "chnsenticorp"
    for part in ("dev", "test"):
        assert len(read_examples(CHNSENTI / f"{part}.tsv")) == 1200
    assert len(read_examples(CHNSENTI / "train.tsv")) == 9600


@pytest.mark.shared("online_shopping_10_cats")
def test_multiclass_label_column(shared_data):
    SHARED = shared_data
    exs = ExampleReader(SHARED / "online_shopping_10_cats" / "reviews.tsv", label_column="category")
    lm = LabelMap.from_labels(e.label for e in exs)
    assert len(lm) == 10 and "书籍" in lm


def test_empty_file(tmp_path):
    p = w(tmp_path, "a.tsv", b"")
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}: file is empty (expected a header row such as 'label<TAB>text_a')"
    p = w(tmp_path, "a.txt", b"")
    with pytest.raises(DataError, match="file is empty"):
        read_examples(p, require_label=False)


def test_path_does_not_exist(tmp_path):
    p = tmp_path / "nope.tsv"
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}: file does not exist"


def test_lenient_mode_skips_counts_and_reports(tmp_path):
    p = w(tmp_path, "a.tsv", "label\ttext_a\n1\t好\n0\n1\t\n0\t差\n1\tx\ty\n".encode())
    r = ExampleReader(p, skip_bad_lines=True)
    assert [e.text_a for e in r] == ["好", "差"]
    assert (r.stats.rows, r.stats.skipped) == (2, 3)
    assert [n for n, _ in r.stats.problems] == [3, 4, 6]
    assert r.stats.summary().startswith(f"{p}: read 2 rows, skipped 3 bad lines (line 3: too few fields")


def test_jsonl_and_plain_text(tmp_path):
    p = w(tmp_path, "a.jsonl", (json.dumps({"label": 1, "text_a": "好"}, ensure_ascii=False) + "\n{bad\n").encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value).startswith(f"{p}, line 2: invalid JSON")
    assert read_examples(p, skip_bad_lines=True)[0].label == "1"
    p = w(tmp_path, "b.jsonl", b'{"text_a": "x"}\n')
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 1: missing field 'label'"
    p = w(tmp_path, "u.txt", "一\n二\n".encode())
    assert [e.text_a for e in read_examples(p, require_label=False)] == ["一", "二"]
    with pytest.raises(DataError, match="plain-text files carry no labels"):
        read_examples(p)


def test_write_read_round_trip_with_tokens_and_scores(tmp_path):
    exs = [Example(text_a="好\t的", label="1", tokens_a=["好", "的"], probs=[0.25, 0.75], logits=[-1.0, 1.0])]
    p = tmp_path / "part.1"
    write_examples(p, exs, ["label", "text_a", "tokens_a", "probs", "logits"])
    (back,) = read_examples(p)
    assert (back.text_a, back.tokens_a, back.probs, back.logits) == ("好 的", ["好", "的"], [0.25, 0.75], [-1.0, 1.0])


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "out.tsv"
    p.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("new, half written")
            raise RuntimeError("killed")
    assert p.read_text() == "old\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.tsv"]


def test_label_map_order_and_round_trip(tmp_path):
    lm = LabelMap.from_labels(["10", "2", "1", "2"])
    assert lm.labels == ["1", "2", "10"] and lm.id("10") == 2
    lm.save(tmp_path / "labels.json")
    assert LabelMap.load(tmp_path / "labels.json") == lm
    with pytest.raises(KeyError, match="label 'x' is not in the label map"):
        lm.id("x")


@pytest.mark.parametrize(
    ("header", "row", "problem"),
    [
        ("logits", "inf -inf", "logits must be finite numbers, got 'inf -inf'"),
        ("logits", "nan 1", "logits must be finite numbers, got 'nan 1'"),
        ("probs", "0.9 0.9", "probs must be probabilities in [0, 1] adding up to 1, got '0.9 0.9'"),
        ("probs", "-0.5 1.5", "probs must be probabilities in [0, 1] adding up to 1, got '-0.5 1.5'"),
    ],
)
def test_teacher_scores_a_student_cannot_learn_from_are_named(tmp_path, header, row, problem):
    p = w(tmp_path, "part.1", f"label\ttext_a\t{header}\n0\t好\t0.2 0.8\n1\t差\t{row}\n".encode())
    with pytest.raises(DataError) as e:
        read_examples(p)
    assert str(e.value) == f"{p}, line 3: {problem}"
    assert len(read_examples(p, skip_bad_lines=True)) == 1  # lenient reading skips the row and counts it
    # JSON Lines alike (json writes inf and nan as Infinity and NaN, and reads them back)
    scores = [float(v) for v in row.split()]
    q = w(tmp_path, "part.1.jsonl", (json.dumps({"label": 1, "text_a": "差", header: scores}) + "\n").encode())
    with pytest.raises(DataError) as e:
        read_examples(q)
    assert str(e.value) == f"{q}, line 1: {problem}"
