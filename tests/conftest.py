"""Shared fixtures: seeds, the real data in ../shared/data, small synthetic data sets, a tiny teacher
checkpoint and a small student config. Test modules use these fixtures and import no other test module.

Markers: `@pytest.mark.shared("chnsenticorp")` skips a test, with the reason, when that folder of
../shared/data is not beside the checkout; `@pytest.mark.slow` marks the end-to-end tests
(`pytest -m "not slow"` runs the rest in under a minute).
"""

from __future__ import annotations

import inspect
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest

# A report measures each model's speed for 2 s; the suite writes dozens of reports whose speeds no test
# judges (bench/ measures speed), so 0.2 s each (the CLI subprocesses of the tests inherit it)
os.environ.setdefault("DATADISTILL_MEASURE_SECONDS", "0.2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

POS_WORDS = ["很好", "不错", "满意", "喜欢", "干净", "舒服", "推荐", "划算", "漂亮", "热情"]
NEG_WORDS = ["很差", "失望", "糟糕", "后悔", "脏", "难用", "退货", "吵", "贵", "冷漠"]
TOPICS = ["酒店", "房间", "服务", "早餐", "电脑", "屏幕", "这本书", "键盘", "前台", "位置"]
FILLERS = ["总的来说", "这次", "我觉得", "真的", "感觉", "整体", "其实", "老实说"]


def pytest_runtest_setup(item):
    for mark in item.iter_markers("shared"):
        path = SHARED / (mark.args[0] if mark.args else "")
        if not path.exists():
            pytest.skip(f"real data not found at {path} (needs ../shared beside the repo)")


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(autouse=True)
def _datadistill_logs_reach_caplog():
    """The CLI's handler stops propagation; tests read every message through caplog."""
    logger = logging.getLogger("datadistill")
    logger.setLevel(logging.INFO)
    yield
    logger.propagate = True


@pytest.fixture
def shared_data() -> Path:
    return SHARED


def synthetic_sentiment(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) pairs: positive texts use POS_WORDS, negative ones NEG_WORDS, with shared fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = POS_WORDS if label else NEG_WORDS
        parts = [
            rng.choice(FILLERS),
            rng.choice(TOPICS),
            rng.choice(words),
            "，",
            rng.choice(TOPICS),
            rng.choice(FILLERS),
            rng.choice(words),
            "。",
        ]
        rows.append((str(label), "".join(parts)))
    return rows


def _write_tsv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("label", "text_a")) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def sentiment():
    """synthetic_sentiment(n, seed) -> [(label, text)]: a keyword sentiment task any student learns."""
    return synthetic_sentiment


@pytest.fixture
def words():
    """The word lists the synthetic task is made of."""
    return {"pos": POS_WORDS, "neg": NEG_WORDS, "topics": TOPICS, "fillers": FILLERS}


@pytest.fixture
def write_tsv():
    """write_tsv(path, rows, header=("label", "text_a")) -> path."""
    return _write_tsv


@pytest.fixture
def senti_files(tmp_path: Path) -> dict[str, Path]:
    """train/dev/test TSVs of the synthetic sentiment task (400/100/100 rows)."""
    return {
        "train": _write_tsv(tmp_path / "train.tsv", synthetic_sentiment(400, seed=1)),
        "dev": _write_tsv(tmp_path / "dev.tsv", synthetic_sentiment(100, seed=2)),
        "test": _write_tsv(tmp_path / "test.tsv", synthetic_sentiment(100, seed=3)),
    }


def _small_config(files, tmp_path, arch, **train):
    model = {
        "bow": {"emb_dim": 32, "hidden": 0},
        "cnn": {"emb_dim": 32, "filters": 32, "widths": [2, 3]},
        "lstm": {"emb_dim": 32, "hidden": 32},
    }[arch]
    return {
        "data": {"train": str(files["train"]), "dev": str(files["dev"]), "test": str(files["test"])},
        "student": {
            "arch": arch,
            "features": {"tokenizer": "char", "ngrams": [2] if arch != "bow" else [2, 3], "ngram_buckets": 5000},
            "model": model,
        },
        "train": {"epochs": 6, "batch_size": 16, "lr": 0.005, "patience": 10, **train},
        "output": str(tmp_path / arch),
    }


@pytest.fixture
def student_config():
    """student_config(files, tmp_path, arch, **train) -> a small student run config (a dict)."""
    return _small_config


def _tiny_checkpoint(folder: Path, kind: str) -> Path:
    """A 2-layer BERT or ERNIE with a character vocabulary written here: no download."""
    transformers = pytest.importorskip("transformers")
    chars = sorted({c for _, t in synthetic_sentiment(400) for c in t} | set("好差"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if "vocab" in inspect.signature(transformers.BertTokenizerFast.__init__).parameters:  # transformers >= 5
        tok = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)})
    else:
        tok = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    assert tok.tokenize("酒店很好") == list("酒店很好")
    kw = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    if kind == "bert":
        model = transformers.BertForSequenceClassification(transformers.BertConfig(**kw))
    else:
        model = transformers.ErnieForSequenceClassification(transformers.ErnieConfig(**kw))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_checkpoint():
    """tiny_checkpoint(folder, "bert" | "ernie") -> a 2-layer transformers checkpoint folder."""
    return _tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint_module():
    return _tiny_checkpoint


@pytest.fixture(scope="module")
def sentiment_module():
    return synthetic_sentiment


@pytest.fixture(scope="module")
def write_tsv_module():
    return _write_tsv


@pytest.fixture(scope="module")
def student_config_module():
    return _small_config
