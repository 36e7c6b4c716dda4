"""The pipeline on other tasks than two-class sentiment: text pairs grouped by query (the pair-order
ratio in the report), and three classes with string labels (per-class F1 and macro-F1)."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("transformers")

from datadistill.cli import main  # noqa: E402
from datadistill.data import read_examples  # noqa: E402

GROUPS = {
    "hotel": ["酒店", "房间", "前台"],
    "tech": ["电脑", "屏幕", "键盘"],
    "book": ["这本书", "服务", "位置", "早餐"],
}


def _pairs(n_queries: int, seed: int, words) -> list[tuple[str, str, str]]:
    """(text_a, text_b, label): each query has one candidate on its topic (1) and two off it (0)."""
    rng = random.Random(seed)
    topics, fill = words["topics"], words["fillers"]
    rows = []
    for _ in range(n_queries):
        topic = rng.choice(topics)
        query = f"{rng.choice(fill)}{topic}{rng.choice(words['pos'] + words['neg'])}"
        rows.append((query, f"{rng.choice(fill)}{topic}{rng.choice(words['pos'])}", "1"))
        for other in rng.sample([t for t in topics if t != topic], 2):
            rows.append((query, f"{rng.choice(fill)}{other}{rng.choice(words['pos'])}", "0"))
    return rows


def _three_class(n: int, seed: int, words) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(GROUPS)[i % 3]
        text = f"{rng.choice(words['fillers'])}{rng.choice(GROUPS[label])}{rng.choice(words['pos'] + words['neg'])}。"
        rows.append((label, text))
    return rows


def _run(tmp_path, tiny_checkpoint, files: dict, students: list[str], label: dict | None = None, **data) -> dict:
    base = tmp_path / "base"
    cfg = {
        "work": str(tmp_path / "work"),
        "data": {k: str(v) for k, v in files.items()} | data,
        "teacher": {
            "model": str(base if base.exists() else tiny_checkpoint(base, "bert")),  # a second run: the same model
            "epochs": 8,
            "lr": 3e-3,
            "batch_size": 16,
            "max_len": 32,
            "patience": 8,
        },
        "augment": {"n_iter": 2, "seed": 1},
        "label": {"batch_size": 32, "chunk_size": 64, "classical_weight": 0} | (label or {}),
        "students": {
            s: {"arch": s, "features": {"ngram_buckets": 5000, "max_len": 32}, "model": {"emb_dim": 16}}
            for s in students
        },
        "train": {"epochs": 4, "batch_size": 16, "lr": 0.01},
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(cfg))
    assert main(["run", str(path), "--quiet"]) == 0
    return json.loads((tmp_path / "work" / "report" / "report.json").read_text())


@pytest.mark.slow
def test_a_pair_task_runs_end_to_end_with_the_pair_order_ratio_in_the_report(tmp_path, tiny_checkpoint, words):
    header = ("text_a", "text_b", "label")
    files = {}
    for name, n, seed in (("train", 60, 1), ("dev", 15, 2), ("test", 20, 3)):
        files[name] = tmp_path / f"{name}.tsv"
        files[name].write_text(
            "\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in _pairs(n, seed, words)), encoding="utf-8"
        )
    report = _run(tmp_path, tiny_checkpoint, files, ["bow", "cnn"])
    assert report["pairs"] and [r["model"] for r in report["rows"]] == [
        "teacher",
        "classical",
        "bow_base",
        "bow",
        "cnn_base",
        "cnn",
    ]
    for r in report["rows"]:
        k = r["ranking"]
        # 20 queries of 1 positive + 2 negatives: 40 positive-negative pairs, counted within each query
        assert k["grouping"] == "within groups of the same text_a" and k["groups"] == 20 and k["pairs"] == 40
        assert k["correct"] + k["reversed"] + k["ties"] == 40 and 0 <= k["auc"] <= 1
    classical = report["rows"][1]
    assert classical["ranking"]["auc"] >= 0.9, classical  # the sides' shared n-grams decide this task
    md = (tmp_path / "work" / "report" / "report.md").read_text(encoding="utf-8")
    assert "| pair-order |" in md and "counted within groups of the same text_a (20 groups), 40 pairs" in md
    part1 = read_examples(tmp_path / "work" / "student" / "train" / "part.1")
    assert part1 and all(e.text_b for e in part1)  # augmentation kept both sides
    # the distilled pair student answers pairs from the command line too
    out = tmp_path / "eval.json"
    bow = str(tmp_path / "work" / "student" / "bow")
    assert main(["eval", "--model", bow, "--data", str(files["test"]), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ranking"]["groups"] == 20
    assert "Infinity" not in out.read_text() and "NaN" not in out.read_text()  # standard JSON
    single = tmp_path / "single.tsv"
    single.write_text("label\ttext_a\n1\t酒店很好\n", encoding="utf-8")
    assert main(["eval", "--model", bow, "--data", str(single)]) == 2
    assert main(["eval", "--model", bow, "--data", str(files["test"]), "--json", str(tmp_path)]) == 2


@pytest.mark.slow
def test_a_three_class_task_with_string_labels_reports_per_class_f1(tmp_path, tiny_checkpoint, words, write_tsv):
    files = {
        name: write_tsv(tmp_path / f"{name}.tsv", _three_class(n, seed, words), ("category", "text_a"))
        for name, n, seed in (("train", 120, 1), ("dev", 30, 2), ("test", 30, 3))
    }
    report = _run(tmp_path, tiny_checkpoint, files, ["bow"], label_column="category")
    assert report["labels"] == ["book", "hotel", "tech"] and not report["pairs"]
    for r in report["rows"]:
        assert set(r["test_f1"]) == {"book", "hotel", "tech"} and "ranking" not in r
        assert r["test_macro_f1"] == pytest.approx(sum(r["test_f1"].values()) / 3)
    assert report["rows"][1]["test_accuracy"] >= 0.9  # the classical model knows the topic words
    md = (tmp_path / "work" / "report" / "report.md").read_text(encoding="utf-8")
    assert "Test F1 per class:" in md and "| hotel |" in md and "| **macro-F1** |" in md
    part1 = read_examples(tmp_path / "work" / "student" / "train" / "part.1", label_column="label")
    assert {e.label for e in part1} <= {"book", "hotel", "tech"}


@pytest.mark.slow
def test_an_ensemble_teacher_labels_part1_and_has_its_row_in_the_report(tmp_path, tiny_checkpoint, words, write_tsv):
    files = {
        name: write_tsv(tmp_path / f"{name}.tsv", _three_class(n, seed, words), ("category", "text_a"))
        for name, n, seed in (("train", 120, 1), ("dev", 30, 2), ("test", 30, 3))
    }
    work = tmp_path / "work" / "student"
    report = _run(tmp_path, tiny_checkpoint, files, ["bow"], label={"classical_weight": 0.5}, label_column="category")
    assert [(r["model"], r["kind"]) for r in report["rows"][:3]] == [
        ("teacher", "teacher"),
        ("ensemble", "teacher"),
        ("classical", "classical"),
    ]
    assert report["rows"][1]["classical_weight"] == 0.5
    record = json.loads((work / "ensemble.json").read_text())
    assert record["weight"] == 0.5 and set(record["dev"]) == {"teacher", "classical_calibrated", "ensemble"}
    own = read_examples(work / "teacher_scores.tsv", label_column="label")
    part1 = read_examples(work / "train" / "part.1", label_column="label")
    assert [e.text_a for e in own] == [e.text_a for e in part1]
    for t, e in zip(own, part1):  # the blend: half the teacher's probabilities plus half the classical's
        assert (
            abs(sum(e.probs) - 1) < 1e-4
            and e.label == ["book", "hotel", "tech"][max(range(3), key=e.probs.__getitem__)]
        )
        assert all(p >= 0.5 * q - 1e-5 for p, q in zip(e.probs, t.probs))
    # the teacher alone again: its scores come from the cache, the ensemble's files and row are gone
    report = _run(tmp_path, tiny_checkpoint, files, ["bow"], label={"classical_weight": 0}, label_column="category")
    assert "ensemble" not in [r["model"] for r in report["rows"]]
    assert not (work / "ensemble.json").exists() and not (work / "teacher_scores.tsv").exists()
    assert [e.probs for e in read_examples(work / "train" / "part.1", label_column="label")] == [e.probs for e in own]
