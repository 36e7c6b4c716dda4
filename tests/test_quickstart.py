"""First contact: the README's main command runs from a bare clone (built-in data, no ../shared), and
`datadistill run --train --dev --test` needs no config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from datadistill.cli import main
from datadistill.datasets import listing, resolve

REPO = Path(__file__).resolve().parents[1]
MAIN_CONFIG = REPO / "examples" / "pipeline_quick.json"


def test_built_in_data_sets_are_listed_with_row_counts(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name, rows in (
        ("chnsenticorp:train", "9,600"),
        ("chnsenticorp:dev", "1,200"),
        ("chnsenticorp:test", "1,200"),
        ("chnsenticorp:train_500", "500"),
        ("chnsenticorp:unlabelled", "9,100"),
    ):
        assert any(line.startswith(name + " ") and f" {rows} " in line for line in out.splitlines()), name
    assert "source: ChnSentiCorp" in out
    assert {r["name"] for r in listing()} >= {"chnsenticorp:train", "chnsenticorp:unlabelled"}


def test_the_label_scarce_split_is_fixed_balanced_and_disjoint():
    gold = resolve("chnsenticorp:train_500").read_text(encoding="utf-8").splitlines()[1:]
    unl = resolve("chnsenticorp:unlabelled").read_text(encoding="utf-8").splitlines()
    train = resolve("chnsenticorp:train").read_text(encoding="utf-8").splitlines()[1:]
    assert len(gold) == 500 and sum(r.startswith("1\t") for r in gold) == 250
    assert len(unl) == 9100 and sorted([r.split("\t", 1)[1] for r in gold] + unl) == sorted(
        r.split("\t", 1)[1] for r in train
    )


def test_an_unknown_part_of_a_built_in_set_names_the_known_ones(capsys, tmp_path):
    assert main(["augment", "--input", "chnsenticorp:tset", "--output", str(tmp_path / "a.tsv")]) == 2
    assert (
        "chnsenticorp:tset: no such part of the built-in data set 'chnsenticorp' (known: chnsenticorp:train"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_main_command_runs_without_shared_data_on_a_tiny_budget(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    """The README's main config, every data path a built-in name; the teacher swapped for a 2-layer one and
    every step cut short, so the whole pipeline runs here in seconds, with ../shared out of reach."""
    cfg = json.loads(MAIN_CONFIG.read_text())
    assert all(not str(v).startswith("..") for v in json.dumps(cfg["data"]).split('"'))
    monkeypatch.setenv("DATADISTILL_CACHE", str(tmp_path / "cache"))  # the built-in data is unpacked afresh
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    assert not (tmp_path.parent / "shared").exists()
    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    tiny = [
        "--set",
        f"teacher.model={ckpt}",
        "--set",
        "teacher.max_steps=2",
        "--set",
        "teacher.max_len=32",
        "--set",
        "data.max_label_rows=100",
        "--set",
        "train.max_steps=3",
        "--set",
        "distill.max_steps=3",
        "--set",
        "work=w",
        "-q",
    ]
    assert main(["run", str(MAIN_CONFIG), *tiny]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "w" / "report" / "report.json").read_text())
    # a 2-step teacher is far below the classical model on dev, so the default ("auto") blends the two
    assert [r["model"] for r in report["rows"]] == ["teacher", "ensemble", "classical"] + [
        n for s in cfg["students"] for n in (f"{s}_base", s)
    ]
    assert report["rows"][0]["test_accuracy"] > 0 and os.path.exists(tmp_path / "cache" / "datasets" / "chnsenticorp")


@pytest.mark.slow
def test_own_data_runs_with_no_config_and_prints_its_effective_config(tmp_path, senti_files, tiny_checkpoint, capsys):
    files = ["--train", str(senti_files["train"]), "--dev", str(senti_files["dev"]), "--test", str(senti_files["test"])]
    assert main(["run", *files, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["train"] == str(senti_files["train"]) and set(printed["students"]) == {"bow", "cnn"}
    assert printed["students"]["bow"]["features"]["ngrams"] == [2, 3] and printed["train"]["lr"] == 0.005
    saved = tmp_path / "effective.json"
    saved.write_text(json.dumps(printed))
    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    small = [
        "--work",
        str(tmp_path / "w"),
        "--set",
        f"teacher.model={ckpt}",
        "--set",
        "teacher.max_len=32",
        "--set",
        "teacher.epochs=3",
        "--set",
        "teacher.lr=2e-3",
        "--set",
        "augment.n_iter=2",
        "--students",
        "bow",
        "-q",
    ]
    assert main(["run", *files, *small]) == 0
    report = json.loads((tmp_path / "w" / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["teacher", "classical", "bow_base", "bow"]
    assert report["rows"][2]["test_accuracy"] >= 0.9  # the synthetic task is learned with the default settings
    # the printed config, saved and run, is the same run: every step is up to date
    capsys.readouterr()
    assert main(["run", str(saved), *small]) == 0
    err = capsys.readouterr().err
    assert all(f"[{s}] up to date, skipped" in err for s in ("teacher", "augment", "label")), err


def test_run_without_a_config_needs_the_three_files(capsys):
    assert main(["run", "--train", "a.tsv"]) == 2
    assert "give a config file, or --train, --dev and --test" in capsys.readouterr().err


def test_partial_sections_keep_the_defaults_and_inputs_are_checked_before_any_step(tmp_path, senti_files, capsys):
    files = ["--train", str(senti_files["train"]), "--dev", str(senti_files["dev"])]
    argv = ["run", *files, "--test", str(senti_files["test"]), "--set", "teacher.max_len=32", "--students", "bow, cnn"]
    assert main([*argv, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["teacher"]["model"] == "bundled:multilingual-e5-small" and printed["teacher"]["max_len"] == 32
    assert list(printed["students"]) == ["bow", "cnn"] and printed["students"]["cnn"]["model"]["filters"] == 64
    only_data = tmp_path / "only_data.json"
    only_data.write_text(json.dumps({"data": printed["data"]}))
    assert main(["run", str(only_data), "--print-config"]) == 0
    assert list(json.loads(capsys.readouterr().out)["students"]) == ["bow", "cnn"]
    assert main(["run", *files, "--test", str(tmp_path / "tset.tsv"), "--work", str(tmp_path / "w")]) == 2
    assert f"{tmp_path / 'tset.tsv'}: file does not exist (data.test)" in capsys.readouterr().err
    assert not (tmp_path / "w" / "teacher").exists()  # refused before the teacher step
