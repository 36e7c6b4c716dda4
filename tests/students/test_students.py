from __future__ import annotations

import pytest
import torch

from datadistill.config import ConfigError, from_dict
from datadistill.student import StudentConfig
from datadistill.students import STUDENTS, build_student
from datadistill.students.base import Dims
from datadistill.text import Vocab
from datadistill.text.features import FeatureConfig, Featurizer

SMALL = {
    "bow": {"emb_dim": 16, "hidden": 8},
    "cnn": {"emb_dim": 16, "filters": 8, "widths": [2, 3]},
    "lstm": {"emb_dim": 16, "hidden": 8},
}


def featurizer(ngrams=(2,)):
    vocab = Vocab.build([list("酒店很好服务差")])
    return Featurizer(FeatureConfig(tokenizer="char", max_len=256, ngrams=list(ngrams), ngram_buckets=97), vocab)


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
@pytest.mark.parametrize("pair", [False, True])
def test_output_shape_single_and_pair(arch, pair):
    f = featurizer()
    model = build_student(arch, SMALL[arch], Dims(vocab_size=len(f.vocab), num_labels=3, ngram_buckets=97, pair=pair))
    texts = ["酒店很好", "服务差", "好", "x"]
    batch = f.batch(texts, ["服务很好", "差", "好好", "酒店"] if pair else None)
    logits = model(batch)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_padding_does_not_change_outputs(arch):
    f = featurizer((2, 3) if arch == "bow" else (2,))
    model = build_student(arch, SMALL[arch], Dims(len(f.vocab), 2, 97)).eval()
    alone = model(f.batch(["酒店很好"]))
    padded = model(f.batch(["酒店很好", "酒店很好服务差酒店很好服务差"]))[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_unknown_student_and_bad_hyperparameter():
    with pytest.raises(ConfigError, match="unknown student 'cnm'; did you mean 'cnn'"):
        from_dict(StudentConfig, {"arch": "cnm"})
    with pytest.raises(ConfigError, match=r"model \(cnn\): unknown key 'filter'; did you mean 'filters'"):
        from_dict(StudentConfig, {"arch": "cnn", "model": {"filter": 3}})
    with pytest.raises(ConfigError, match="features.ngrams must be"):
        from_dict(StudentConfig, {"arch": "lstm", "features": {"ngrams": [2, 3]}})
    assert STUDENTS.names() == ["bow", "cnn", "lstm"]


def test_bow_bag_sum_matches_embedding_bag_with_padding_including_gradients():
    from datadistill.students.bow import bag_sum

    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 8, mode="sum", padding_idx=0)
    ids = torch.randint(1, 50, (6, 9))
    ids[1, 4:] = 0
    ids[3, :] = 0  # an empty row sums to zero
    ours = bag_sum(bag, ids)
    ref = bag(ids)
    assert ours.shape == (6, 8) and torch.allclose(ours, ref, atol=1e-6) and ours[3].abs().sum() == 0
    g_ours = torch.autograd.grad(ours.square().sum(), bag.weight)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), bag.weight)[0]
    assert torch.allclose(g_ours.to_dense() if g_ours.is_sparse else g_ours, g_ref, atol=1e-5)
    assert g_ours[0].abs().sum() == 0  # the padding row never learns


def test_bow_bag_sum_without_gradients_gives_the_training_path_sums_exactly():
    from datadistill.students.bow import bag_sum

    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 8, mode="sum", padding_idx=0)
    with torch.no_grad():
        bag.weight[0] = torch.randn(8)  # even a padding row that is not zero must not leak in
    ids = torch.randint(1, 50, (6, 9))
    ids[1, 4:] = 0
    ids[3, :] = 0
    with_grad = bag_sum(bag, ids)
    assert with_grad.requires_grad
    with torch.inference_mode():
        fast = bag_sum(bag, ids)
    assert torch.equal(fast, with_grad.detach()) and fast[3].abs().sum() == 0
