"""`datadistill split`: fixed, stratified or grouped splits that keep each row's bytes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datadistill.cli import main
from datadistill.data import read_examples


@pytest.fixture
def labelled(tmp_path):
    """300 rows: class a 200, b 80, c 20; with a qid column and queries of 3 candidates."""
    lines = ["qid\ttext_a\ttext_b\tcategory"]
    for i in range(300):
        cat = "a" if i % 15 < 10 else "b" if i % 15 < 14 else "c"
        lines.append(f"q{i // 3}\t问题{i // 3}\t候选{i}\t{cat}")
    path = tmp_path / "all.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_stratified_split_keeps_every_class_share_and_every_row_once(labelled, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["split", str(labelled), "--out", str(out), "--dev", "30", "--test", "60", "--stratify", "category"]
    assert main(args + ["--train", "150"]) == 0
    parts = {n: read_examples(out / f"{n}.tsv", label_column="category") for n in ("train", "dev", "test")}
    assert {n: len(p) for n, p in parts.items()} == {"train": 150, "dev": 30, "test": 60}
    for name, rows in parts.items():
        share = Counter(e.label for e in rows)
        for cat, total in (("a", 200), ("b", 80), ("c", 20)):
            assert abs(share[cat] - total * len(rows) / 300) <= 1, (name, share)
    unl = (out / "unlabelled.tsv").read_text(encoding="utf-8").splitlines()
    assert unl[0] == "text_a\ttext_b" and len(unl) == 1 + 60  # the 60 rows left, without their labels
    source = labelled.read_text(encoding="utf-8").splitlines()
    kept = [line for n in ("train", "dev", "test") for line in (out / f"{n}.tsv").read_text("utf-8").splitlines()[1:]]
    assert len(set(kept)) == 240 and set(kept) <= set(source[1:])  # rows unchanged, none twice
    record = json.loads((out / "split.json").read_text())
    assert record["parts"]["test"]["labels"] == dict(Counter(e.label for e in parts["test"]))
    first = {n: (out / f"{n}.tsv").read_bytes() for n in ("train", "dev", "test")}
    assert main(args + ["--train", "150"]) == 0  # the same seed: the same bytes
    assert first == {n: (out / f"{n}.tsv").read_bytes() for n in ("train", "dev", "test")}
    assert "s/test.tsv: 60 rows (a 40, b 16, c 4)" in capsys.readouterr().out


def test_a_grouped_split_never_puts_one_query_in_two_parts(labelled, tmp_path):
    out = tmp_path / "g"
    assert main(["split", str(labelled), "--out", str(out), "--dev", "31", "--test", "0", "--group", "qid",
                 "--label-column", "category"]) == 0  # fmt: skip
    train = read_examples(out / "train.tsv", label_column="category")
    dev = read_examples(out / "dev.tsv", label_column="category")
    assert not (out / "test.tsv").exists()  # --test 0: the test set is another file
    assert len(dev) == 33 and len(train) == 300 - 33  # whole queries: 31 rows round up to 11 queries
    assert not {e.qid for e in dev} & {e.qid for e in train}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dev", "200", "--test", "100"], "300 rows cannot give dev 200 + test 100 and a training part"),
        (["--dev", "10", "--test", "10", "--train", "290"], "300 rows cannot give dev 10 + test 10 + train 290"),
        (["--dev", "10", "--test", "10", "--group", "label"], "--group must be one of text_a, text_b, qid"),
        (["--dev", "-1", "--test", "10"], "--dev must be 0 or more, got -1"),
        (["--dev", "10", "--test", "10", "--stratify", "label"], "missing required column 'label'"),
    ],
)
def test_a_split_that_cannot_be_made_is_refused_in_one_line(labelled, tmp_path, capsys, extra, message):
    assert main(["split", str(labelled), "--out", str(tmp_path / "x"), "--label-column", "category"] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x" / "train.tsv").exists()


def test_split_refuses_its_own_output_as_input_and_replaces_an_earlier_split(labelled, tmp_path, capsys):
    out, lab = tmp_path / "s", ["--label-column", "category"]
    assert main(["split", str(labelled), "--out", str(out), "--dev", "30", "--test", "30", "--train", "100"] + lab) == 0
    before = (out / "train.tsv").read_bytes()
    assert main(["split", str(out / "train.tsv"), "--out", str(out), "--dev", "5", "--test", "5"] + lab) == 2
    assert "is one of split's outputs" in capsys.readouterr().err and (out / "train.tsv").read_bytes() == before
    assert main(["split", str(labelled), "--out", str(out), "--dev", "0", "--test", "0"] + lab) == 0
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".")) == ["split.json", "train.tsv"]
    assert main(["split", str(labelled), "--out", str(labelled), "--dev", "1", "--test", "1"] + lab) == 2
    assert "is a file, expected a folder" in capsys.readouterr().err


def test_a_grouped_split_with_too_few_groups_is_refused(tmp_path, capsys):
    path = tmp_path / "g.tsv"
    path.write_text("qid\ttext_a\tlabel\n" + "".join(f"q{i // 10}\tt{i}\t{i % 2}\n" for i in range(20)), "utf-8")
    assert main(["split", str(path), "--out", str(tmp_path / "o"), "--dev", "1", "--test", "1", "--group", "qid"]) == 2
    assert "2 groups of qid cannot give dev 1, test 1 and a training part" in capsys.readouterr().err
