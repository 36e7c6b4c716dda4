"""The BOW student's two forms (a linear TF-IDF bag, the default for single texts; an embedding mean
for pairs) and the n-gram hash both read text with."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datadistill.modelio import load_folder
from datadistill.student import evaluate_folder, load_run_config, train_student
from datadistill.students import build_student
from datadistill.students.base import Dims
from datadistill.students.bow import BOW
from datadistill.text import Vocab
from datadistill.text.features import FeatureConfig, Featurizer, hash_ngrams

FIXTURES = Path(__file__).parent.parent / "fixtures" / "models_v0"


def _all_bigrams(n: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(np.arange(1, n + 1), np.arange(1, n + 1))
    return np.stack([a.ravel(), b.ravel()], 1).astype(np.int64), np.full(n * n, 2)


def test_the_mix_hash_spreads_bigrams_over_every_bucket():
    ids, lengths = _all_bigrams(300)  # 90,000 distinct bigrams
    mix = hash_ngrams(ids, lengths, [2], 10_000, "mix")
    assert mix.min() >= 1 and mix.max() <= 9_999
    assert len(np.unique(mix)) >= 9_990  # a uniform hash leaves ~1 of 9,999 buckets empty
    # the first versions' hash: 1,000,003 = 13 mod 99,999, so bigram (a, b) lands on 1 + 13a + b
    poly = hash_ngrams(ids, lengths, [2], 100_000, "poly")
    assert len(np.unique(poly)) < 4_300
    assert hash_ngrams(np.array([[5, 7]]), np.array([2]), [2], 100, "poly")[0, 0] == 1 + (5 * 1_000_003 + 7) % 99


def test_the_mix_hash_tells_orders_apart_and_pads_with_zero():
    out = hash_ngrams(np.array([[3, 4, 5, 0]]), np.array([3]), [2, 3], 1_000_000, "mix")
    bigrams, trigrams = out[0, :3], out[0, 3:]
    assert bigrams[2] == 0 and list(trigrams[1:]) == [0]  # n-grams past the text's end are padding
    assert len({*bigrams[:2], trigrams[0]}) == 3
    again = hash_ngrams(np.array([[9, 3, 4]]), np.array([3]), [2], 1_000_000, "mix")
    assert again[0, 1] == bigrams[0]  # an n-gram's id does not depend on where it stands


def _featurizer(texts, ngrams=()) -> Featurizer:
    vocab = Vocab.build([list(t) for t in texts])
    return Featurizer(FeatureConfig(max_len=64, ngrams=list(ngrams), ngram_buckets=101 if ngrams else 0), vocab)


def test_fit_idf_counts_documents_not_occurrences():
    f = _featurizer(["好好好", "好差"], ngrams=(2,))
    bow = build_student("bow", {}, Dims(len(f.vocab), 2, 101))
    batch = f.arrays(f.encode_many(["好好好", "好差"]))
    bow.fit_idf([(batch["ids_a"], batch["ngr_a"])])
    good, bad = f.vocab.encode(["好", "差"])
    assert bow.idf_tok[good].item() == pytest.approx(1.0)  # in both texts: ln(3/3) + 1
    assert bow.idf_tok[bad].item() == pytest.approx(math.log(3 / 2) + 1)
    goodgood = batch["ngr_a"][0, 0]  # "好好" twice in text 1, never in text 2
    assert bow.idf_ngr[goodgood].item() == pytest.approx(math.log(3 / 2) + 1)


def test_a_linear_tfidf_bag_gives_idf_weighted_logits_over_the_l2_norm():
    f = _featurizer(["好差酒店"])
    bow = build_student("bow", {}, Dims(len(f.vocab), 2, 0)).eval()
    assert bow.cfg.emb_dim == 0 and bow.cfg.weighting == "tfidf"
    torch.manual_seed(0)
    with torch.no_grad():
        bow.tok.weight.normal_()
        bow.idf_tok.uniform_(1, 3)
        bow.head.bias.copy_(torch.tensor([0.5, -0.5]))
    ids = f.vocab.encode(list("好好差"))
    idf = bow.idf_tok[ids]
    want = (bow.tok.weight[ids] * idf[:, None]).sum(0) / idf.pow(2).sum().sqrt() + bow.head.bias
    assert torch.allclose(bow(f.batch(["好好差"]))[0], want, atol=1e-6)
    assert torch.allclose(bow(f.batch(["好好差", "酒店酒店酒店"]))[0], want, atol=1e-6)  # padding adds nothing


def test_defaults_resolve_for_single_texts_and_pairs():
    single = build_student("bow", {}, Dims(30, 2, 1_000_000))
    assert (single.cfg.emb_dim, single.cfg.weighting) == (0, "tfidf")
    assert single.tok.weight.shape == (30, 2) and not single.tok.weight.any()  # unseen n-grams add nothing
    pair = build_student("bow", {}, Dims(30, 2, 1_000_000, pair=True))
    assert (pair.cfg.emb_dim, pair.cfg.weighting, pair.cfg.match) == (0, "tfidf", True)  # a linear pair bag
    assert build_student("bow", {"emb_dim": 64}, Dims(30, 2, 97)).cfg.weighting == "mean"
    assert build_student("bow", {"emb_dim": 64, "weighting": "tfidf"}, Dims(30, 2, 97)).cfg.weighting == "tfidf"
    assert BOW.default_buckets({}, pair=False) == 1_000_000 and BOW.default_buckets({}, pair=True) == 1_000_000
    assert BOW.default_buckets({"emb_dim": 64}, pair=True) == 100_000
    assert BOW.default_buckets({"emb_dim": 64}, pair=False) == 100_000
    hidden = build_student("bow", {"hidden": 16}, Dims(30, 2, 97))  # a hidden layer needs a vector to read
    assert (hidden.cfg.emb_dim, hidden.cfg.weighting) == (64, "mean") and BOW.default_buckets(
        {"hidden": 16}, False
    ) == 100_000


def test_a_folder_from_before_the_mix_hash_reads_text_as_it_was_trained(tmp_path):
    folder = tmp_path / "bow"
    shutil.copytree(FIXTURES / "bow", folder)
    model, featurizer, _, _ = load_folder(folder)
    assert featurizer.cfg.ngram_hash == "poly" and model.cfg.weighting == "mean" and model.cfg.emb_dim == 8


@pytest.mark.slow
def test_the_default_bow_trains_saves_and_reloads_as_a_linear_tfidf_bag(senti_files, tmp_path):
    cfg = load_run_config(
        None,
        [
            f"data.train={senti_files['train']}",
            f"data.dev={senti_files['dev']}",
            f"data.test={senti_files['test']}",
            f"output={tmp_path / 'bow'}",
            "train.epochs=4",
            "train.batch_size=16",
        ],
    )
    metrics = train_student(cfg, progress=False)
    assert metrics["test"]["accuracy"] >= 0.9
    model, featurizer, _, config = load_folder(tmp_path / "bow")
    assert config["model"]["emb_dim"] == 0 and config["model"]["weighting"] == "tfidf"
    assert config["features"]["ngram_buckets"] == 1_000_000 and config["features"]["ngram_hash"] == "mix"
    assert model.idf_tok.min() >= 1.0 and model.idf_tok.max() > 1.5  # fitted, saved and read back
    again = evaluate_folder(tmp_path / "bow", senti_files["test"])
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])  # the folder alone gives the same


@pytest.mark.slow
def test_prediction_through_the_scored_tables_equals_training_and_follows_each_step():
    f = _featurizer(["好差酒店服务很一般"], ngrams=(2, 3))
    torch.manual_seed(0)
    bow = build_student("bow", {}, Dims(len(f.vocab), 2, 101))
    batch = f.batch(["好好差", "酒店服务很一般", "好"])
    bow.fit_idf([(batch["ids_a"].numpy(), batch["ngr_a"].numpy())])
    # the training loop's optimiser: its fused step changes the weights without bumping their version
    opt = torch.optim.AdamW(bow.parameters(), lr=0.5, fused=True)
    for _ in range(3):  # train, then evaluate as the dev check does: the prediction tables must follow
        bow.train()
        loss = torch.nn.functional.cross_entropy(bow(batch), torch.tensor([1, 0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        want = bow(batch).detach()
        bow.eval()
        with torch.no_grad():
            fast = bow(batch)
        assert torch.allclose(fast, want, atol=1e-6) and fast.abs().max() > 0


def test_prediction_tables_follow_weights_replaced_in_eval_mode():
    f = _featurizer(["好差酒店服务很一般"], ngrams=(2,))
    torch.manual_seed(0)
    bow = build_student("bow", {}, Dims(len(f.vocab), 2, 101)).eval()
    batch = f.batch(["好好差", "酒店服务很一般"])
    with torch.no_grad():
        bow(batch)  # builds the tables
        for _ in range(2):  # a fresh state each time (as torch.func.functional_call swaps tensors in)
            state = {k: torch.randn_like(v) if k.endswith("weight") else v for k, v in bow.state_dict().items()}
            bow.load_state_dict(state, assign=True)
            fast = bow(batch)
            with torch.enable_grad():
                want = bow(batch)
            assert torch.allclose(fast, want, atol=1e-5)


@pytest.mark.slow
def test_training_leaves_the_callers_config_as_it_was(tmp_path, write_tsv):
    """The pipeline's baseline and distilled students share one features object and record its settings
    in their fingerprints: training one must not write the buckets it chose into it (it did, and the
    distilled BOW of a finished run was trained again whenever its baseline was up to date)."""
    rows = [("1", "很好很好"), ("0", "很差很差"), ("1", "不错"), ("0", "太差")] * 10
    train, dev = write_tsv(tmp_path / "train.tsv", rows), write_tsv(tmp_path / "dev.tsv", rows[:8])
    cfg = load_run_config(None, [f"data.train={train}", f"data.dev={dev}", "student.arch=bow", "train.epochs=1"])
    cfg.output = str(tmp_path / "bow")
    assert cfg.student.features.ngram_buckets is None
    train_student(cfg)
    assert cfg.student.features.ngram_buckets is None
    _, featurizer, _, config = load_folder(tmp_path / "bow")
    assert featurizer.cfg.ngram_buckets == 1_000_000 and config["features"]["ngram_buckets"] == 1_000_000
