"""Shared fixtures: seeds, paths to ../shared/data, and small synthetic data sets written per test."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CHNSENTI = SHARED / "chnsenticorp"

POS_WORDS = ["很好", "不错", "满意", "喜欢", "干净", "舒服", "推荐", "划算", "漂亮", "热情"]
NEG_WORDS = ["很差", "失望", "糟糕", "后悔", "脏", "难用", "退货", "吵", "贵", "冷漠"]
TOPICS = ["酒店", "房间", "服务", "早餐", "电脑", "屏幕", "这本书", "键盘", "前台", "位置"]
FILLERS = ["总的来说", "这次", "我觉得", "真的", "感觉", "整体", "其实", "老实说"]


def needs_shared(path: Path = CHNSENTI):
    """Skip a test when ../shared/data is not beside the checkout."""
    return pytest.mark.skipif(not path.exists(), reason=f"real data not found at {path} (needs ../shared beside the repo)")


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass


def synthetic_sentiment(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) pairs: positive texts use POS_WORDS, negative ones NEG_WORDS, with shared fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = POS_WORDS if label else NEG_WORDS
        parts = [rng.choice(FILLERS), rng.choice(TOPICS), rng.choice(words), "，", rng.choice(TOPICS),
                 rng.choice(FILLERS), rng.choice(words), "。"]
        rows.append((str(label), "".join(parts)))
    return rows


def write_tsv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("label", "text_a")) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def senti_files(tmp_path: Path) -> dict[str, Path]:
    """train/dev/test TSVs of the synthetic sentiment task (400/100/100 rows)."""
    return {
        "train": write_tsv(tmp_path / "train.tsv", synthetic_sentiment(400, seed=1)),
        "dev": write_tsv(tmp_path / "dev.tsv", synthetic_sentiment(100, seed=2)),
        "test": write_tsv(tmp_path / "test.tsv", synthetic_sentiment(100, seed=3)),
    }
