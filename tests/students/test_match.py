"""Pair students that see what the two texts share (`match`): the shared marks, what each student does
with them, and model folders written before the setting existed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from datadistill.config import ConfigError
from datadistill.modelio import load_folder
from datadistill.student import load_run_config, train_student
from datadistill.students import build_student
from datadistill.students.base import Dims, shared_with
from datadistill.students.bow import SIMILARITY_SCALE
from datadistill.text import Vocab
from datadistill.text.features import FeatureConfig, Featurizer

SMALL = {
    "bow": {"emb_dim": 16},
    "cnn": {"emb_dim": 16, "filters": 8, "widths": [2, 3]},
    "lstm": {"emb_dim": 16, "hidden": 8},
}


def _featurizer(ngrams=(2,)) -> Featurizer:
    vocab = Vocab.build([list("北京上海天气怎么样今天明天")])
    return Featurizer(FeatureConfig(tokenizer="char", max_len=64, ngrams=list(ngrams), ngram_buckets=97), vocab)


def test_shared_marks_ids_found_in_the_other_row_never_padding_or_unknown():
    x = torch.tensor([[5, 6, 7, 0], [3, 3, 1, 0]])
    y = torch.tensor([[7, 9, 0], [1, 3, 0]])
    assert shared_with(x, y).tolist() == [[False, False, True, False], [True, True, True, False]]
    assert shared_with(x, y, first_known=2).tolist() == [[False, False, True, False], [True, True, False, False]]
    assert shared_with(y, x, 2).tolist() == [[True, False, False], [False, True, False]]
    assert shared_with(None, y) is None and shared_with(x, None) is None


def test_an_unknown_char_or_its_bigram_is_not_marked_shared():
    f = _featurizer()
    model = build_student("cnn", SMALL["cnn"], Dims(len(f.vocab), 2, 97, pair=True)).eval()
    seen = {}
    model.shared_emb.register_forward_pre_hook(lambda _m, args: seen.setdefault("state", args[0].tolist()) and None)
    with torch.no_grad():
        model(f.batch(["北京龘"], ["龘北京"]))  # 龘 is not in the vocabulary: [UNK] on both sides
    # 北: char shared (+1), bigram 北京 shared (+2); 京: char shared, bigram 京[UNK] not; [UNK]: nothing
    assert seen["state"][0] == [4, 2, 1]


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_match_is_on_for_pairs_by_default_and_refused_for_single_texts(arch):
    dims = Dims(vocab_size=20, num_labels=2, ngram_buckets=97, pair=True)
    assert build_student(arch, SMALL[arch], dims).cfg.match is True
    assert build_student(arch, {**SMALL[arch], "match": False}, dims).cfg.match is False
    single = Dims(vocab_size=20, num_labels=2, ngram_buckets=97)
    assert build_student(arch, SMALL[arch], single).cfg.match is False
    with pytest.raises(ConfigError) as e:
        build_student(arch, {**SMALL[arch], "match": True}, single)
    assert str(e.value) == (
        "match marks the words a text shares with its pair, and this data has single texts: "
        "remove match from the student's model settings or set it to false"
    )


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_a_pair_gets_the_same_logits_alone_and_in_a_padded_batch(arch):
    f = _featurizer((2, 3) if arch == "bow" else (2,))
    model = build_student(arch, SMALL[arch], Dims(len(f.vocab), 2, 97, pair=True)).eval()
    with torch.no_grad():
        if arch != "bow":  # shared states far from zero, so one at a padded position would show
            model.shared_emb.weight[1:].normal_()
        alone = model(f.batch(["北京天气"], ["上海天气怎么样"]))
        padded = model(f.batch(["北京天气", "今天明天北京上海天气怎么样"], ["上海天气怎么样", "明天"]))[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_the_matched_bow_adds_a_bag_of_what_is_not_shared():
    f = _featurizer(())
    model = build_student("bow", {"emb_dim": 4, "dropout": 0.0}, Dims(len(f.vocab), 2, 0, pair=True)).eval()
    a = f.batch(["北京天气", "北京天气"])
    ids, lengths = a["ids_a"], a["len_a"]
    emb = model.tok.weight.detach()
    nothing = torch.zeros_like(ids, dtype=torch.bool)
    out = model.encode(ids, lengths, None, (nothing, None))
    mean = emb[ids[0]].mean(0)
    assert torch.allclose(out[0, :4], mean) and torch.allclose(out[0, 4:], mean)  # nothing shared: both bags equal
    weather = torch.tensor([[False, False, True, True]] * 2)  # "天气" shared with the other text
    out = model.encode(ids, lengths, None, (weather, None))
    assert torch.allclose(out[0, :4], mean)
    assert torch.allclose(out[0, 4:], emb[ids[0, :2]].sum(0) / 4)  # 北京 only, over the 4 positions
    assert model.out_dim == 8 and model.head[-1].in_features == 32  # [u, v, |u-v|, u*v] of 8 each


def test_the_linear_pair_bag_weighs_shared_ngrams_by_both_sides_and_the_rest_by_their_own():
    f = _featurizer(())
    model = build_student("bow", {}, Dims(len(f.vocab), 2, 0, pair=True)).eval()
    assert (model.cfg.emb_dim, model.cfg.weighting, model.cfg.match) == (0, "tfidf", True)
    with torch.no_grad():
        for t in (model.tok, model.tok_both):
            t.weight.normal_()
        model.idf_tok.uniform_(1.0, 3.0)
        model.head.bias.normal_()
    batch = f.batch(["北京天气天气", "今天"], ["上海天气", "明天怎么样"])
    idf, apart, both = model.idf_tok, model.tok.weight, model.tok_both.weight
    v = f.vocab.stoi

    def weights(chars: str) -> dict:  # each distinct char once: IDF over the L2 norm of the distinct IDFs
        norm = sum(float(idf[v[c]]) ** 2 for c in set(chars)) ** 0.5
        return {c: float(idf[v[c]]) / norm for c in set(chars)}

    wa, wb = weights("北京天气天气"), weights("上海天气")
    want = model.head.bias + wa["天"] * wb["天"] * both[v["天"]] + wa["气"] * wb["气"] * both[v["气"]]
    want = want + wa["北"] * apart[v["北"]] + wa["京"] * apart[v["京"]] + wb["上"] * apart[v["上"]]
    want = want + wb["海"] * apart[v["海"]]
    with torch.no_grad():
        got = model(batch)
        swapped = model(f.batch(["上海天气", "明天怎么样"], ["北京天气天气", "今天"]))
        alone = model(f.batch(["今天"], ["明天怎么样"]))
        once, often = model(f.batch(["北京天气"] * 2, ["北京天气", "北京天气" * 50]))
    assert torch.allclose(got[0], want, atol=1e-5)
    assert torch.allclose(got, swapped, atol=1e-6)  # the same for (a, b) and (b, a)
    assert torch.allclose(alone, got[1:], atol=1e-5)  # padding adds nothing
    assert torch.allclose(once, often, atol=1e-5)  # a text said 50 times holds the same words


def test_a_linear_pair_bag_needs_match():
    with pytest.raises(ConfigError) as e:
        build_student("bow", {"match": False}, Dims(30, 2, 97, pair=True))
    assert str(e.value) == (
        "a linear pair bag (emb_dim 0) compares two texts by the words they share, and match is false: "
        "remove match from the student's model settings (it is on for pairs), or set emb_dim above 0, e.g. 64"
    )
    assert build_student("bow", {"match": False, "emb_dim": 8}, Dims(30, 2, 97, pair=True)).cfg.emb_dim == 8


def test_a_pair_folder_written_before_match_loads_without_it(tmp_path, write_tsv):
    rows = [("1", "北京天气", "北京的天气"), ("0", "北京天气", "上海天气"), ("1", "今天怎么样", "今天如何")] * 12
    header = ("label", "text_a", "text_b")
    train, dev = write_tsv(tmp_path / "train.tsv", rows, header), write_tsv(tmp_path / "dev.tsv", rows[:9], header)
    overrides = [
        f"data.train={train}",
        f"data.dev={dev}",
        "student.arch=cnn",
        'student.model={"emb_dim": 8, "filters": 4, "widths": [2], "match": false}',
        "train.epochs=1",
        "student.features.ngram_buckets=5000",  # the default 100k embeddings only slow the test
        f"output={tmp_path / 'cnn'}",
    ]
    train_student(load_run_config(None, overrides))
    folder = tmp_path / "cnn"
    model, featurizer, _, config = load_folder(folder)
    assert config["model"]["match"] is False
    batch = featurizer.batch(["北京天气"], ["上海天气"])
    want = model(batch)
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    del config["model"]["match"]  # what the folders of earlier versions hold
    (old / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    model, _, _, _ = load_folder(old)
    assert model.cfg.match is False and model.shared_emb is None
    np.testing.assert_allclose(model(batch).detach().numpy(), want.detach().numpy(), atol=1e-6)


def test_the_linear_pair_bag_weighs_the_cosine_overlap_and_length_difference_of_the_texts():
    f = _featurizer(())
    model = build_student("bow", {}, Dims(len(f.vocab), 2, 0, pair=True)).eval()
    assert model.cfg.similarity is True and model.similar.in_features == 3  # tokens: cosine, Jaccard; lengths
    with torch.no_grad():
        model.idf_tok.uniform_(1.0, 3.0)
        model.similar.weight.normal_()
    seen = []
    model.similar.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()) and None)
    idf, v = model.idf_tok, f.vocab.stoi
    with torch.no_grad():
        got = model(f.batch(["北京天气天气", "今天"], ["上海天气", "今天"]))
        swapped = model(f.batch(["上海天气", "今天"], ["北京天气天气", "今天"]))
    sq = {c: float(idf[v[c]]) ** 2 for c in "北京天气上海"}
    cosine = (sq["天"] + sq["气"]) / (
        (sq["北"] + sq["京"] + sq["天"] + sq["气"]) * (sq["上"] + sq["海"] + sq["天"] + sq["气"])
    ) ** 0.5
    # distinct chars: 4 and 4, 2 shared -> Jaccard 2 / 6; lengths 6 and 4 -> 2 / 6
    np.testing.assert_allclose(seen[0].numpy() / SIMILARITY_SCALE, [[cosine, 2 / 6, 2 / 6], [1.0, 1.0, 0.0]], rtol=1e-5)
    assert torch.allclose(got, swapped, atol=1e-6)
    with_ngrams = build_student("bow", {}, Dims(len(f.vocab), 2, 97, pair=True))
    assert with_ngrams.similar.in_features == 5  # tokens and n-grams: cosine, Jaccard each; lengths


def test_similarity_is_refused_where_there_is_no_linear_pair_bag():
    for params, dims, why in [
        ({"similarity": True}, Dims(30, 2, 97), "this data has single texts"),
        ({"similarity": True, "emb_dim": 8}, Dims(30, 2, 97, pair=True), "emb_dim is 8"),
    ]:
        with pytest.raises(ConfigError) as e:
            build_student("bow", params, dims)
        assert str(e.value) == (
            f"similarity compares the two texts of a pair in a linear bag (emb_dim 0), and {why}: "
            "remove similarity from the student's model settings"
        )
    assert build_student("bow", {}, Dims(30, 2, 97)).cfg.similarity is False
    assert build_student("bow", {"similarity": False}, Dims(30, 2, 97, pair=True)).cfg.similarity is False


@pytest.mark.slow
def test_a_linear_pair_bag_folder_written_before_similarity_loads_without_it(tmp_path, write_tsv):
    rows = [("1", "北京天气", "北京的天气"), ("0", "北京天气", "上海天气"), ("1", "今天怎么样", "今天如何")] * 12
    header = ("label", "text_a", "text_b")
    train, dev = write_tsv(tmp_path / "train.tsv", rows, header), write_tsv(tmp_path / "dev.tsv", rows[:9], header)
    overrides = [f"data.train={train}", f"data.dev={dev}", "student.arch=bow", 'student.model={"similarity": false}']
    overrides.append("student.features.ngram_buckets=5000")  # the default 1M buckets only slow the test
    train_student(load_run_config(None, [*overrides, "train.epochs=2", f"output={tmp_path / 'bow'}"]))
    folder, old = tmp_path / "bow", tmp_path / "old"
    model, featurizer, _, config = load_folder(folder)
    assert config["model"]["similarity"] is False and not hasattr(model, "similar")
    batch = featurizer.batch(["北京天气"], ["上海天气"])
    want = model(batch)
    shutil.copytree(folder, old)
    del config["model"]["similarity"]  # what the folders of earlier versions hold
    (old / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    model, _, _, _ = load_folder(old)
    assert model.cfg.similarity is False
    np.testing.assert_allclose(model(batch).detach().numpy(), want.detach().numpy(), atol=1e-6)
