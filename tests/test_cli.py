from __future__ import annotations

import json
import subprocess
import sys

import pytest

from datadistill.cli import main


def test_help_lists_the_steps(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for cmd in ("augment", "student", "eval", "predict"):
        assert cmd in out


def test_student_train_from_config_with_overrides(senti_files, tmp_path, capsys, student_config):
    cfg = student_config(senti_files, tmp_path, "bow", epochs=2)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    out_dir = tmp_path / "over"
    assert (
        main(
            [
                "student",
                "train",
                "--config",
                str(path),
                "--quiet",
                "--set",
                f"output={out_dir}",
                "--set",
                "train.epochs=1",
            ]
        )
        == 0
    )
    config = json.loads((out_dir / "config.json").read_text())
    assert (
        config["command"]
        == f"datadistill student train --config {path} --quiet --set output={out_dir} --set train.epochs=1"
    )
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["config"]["train"]["epochs"] == 1 and "test" in metrics
    capsys.readouterr()
    assert main(["student", "train", "--config", str(path), "--set", "train.lrr=1"]) == 2
    assert "unknown key 'lrr'; did you mean 'lr'?" in capsys.readouterr().err
    assert main(["student", "train", "--config", str(tmp_path / "missing.json")]) == 2
    assert "config file does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["augment", "--help"],
        ["teacher", "finetune", "--help"],
        ["teacher", "predict", "--help"],
        ["label", "--help"],
        ["student", "train", "--help"],
        ["eval", "--help"],
        ["predict", "--help"],
        ["export", "--help"],
        ["serve", "--help"],
    ],
)
def test_help_does_not_import_torch_or_transformers(argv):
    code = (
        "import sys\nfrom datadistill.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'jieba', 'onnx', 'onnxruntime', 'fastapi', 'uvicorn') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)" % argv
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "usage: datadistill" in r.stdout and "HEAVY []" in r.stdout


def test_quiet_twice_leaves_warnings_and_errors_only(senti_files, tmp_path, capsys, student_config):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(student_config(senti_files, tmp_path, "bow", epochs=1)))
    assert main(["student", "train", "--config", str(path), "-qq"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["student", "train", "--config", str(path), "-q"]) == 0
    assert "saved " in capsys.readouterr().err


def test_teacher_finetune_given_a_pipeline_config_names_the_command_that_fine_tunes_its_teacher(tmp_path, capsys):
    import dataclasses

    from datadistill.cli import PIPELINE_SECTIONS
    from datadistill.run_config import RunConfig

    assert PIPELINE_SECTIONS == {f.name for f in dataclasses.fields(RunConfig)} - {"data", "teacher"}
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps({"work": "w", "teacher": {"epochs": 4}, "students": {"bow": {"arch": "bow"}}}))
    assert main(["teacher", "finetune", "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"datadistill teacher: error: {path} is a pipeline config (it has 'students'): fine-tune its teacher with "
        f"`datadistill run {path} --steps teacher` (--set teacher.KEY=VALUE to change a setting); "
        "`teacher finetune --config` takes data, teacher and output only"
    )
