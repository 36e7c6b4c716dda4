"""The configs under examples/ stay valid as the code changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from datadistill.config import from_dict, load_json
from datadistill.pipeline import load_config
from datadistill.student import StudentRunConfig
from datadistill.teacher.hf import TeacherTrainConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("pipeline_*.json")), ids=lambda p: p.name)
def test_pipeline_configs_load(path):
    cfg = load_config(path)
    assert cfg.students and cfg.data.test


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_student_configs_load(arch):
    cfg = from_dict(StudentRunConfig, load_json(EXAMPLES / f"cls_{arch}_ch.json"))
    assert cfg.student.arch == arch


@pytest.mark.parametrize("name", ["cls_ernie_fc_ch.json", "cls_e5_bundled_ch.json"])
def test_teacher_configs_load(name):
    raw = load_json(EXAMPLES / name)
    assert set(raw) == {"data", "teacher", "output"}
    from_dict(TeacherTrainConfig, raw["teacher"])
