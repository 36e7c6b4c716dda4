"""Full-batch solving of a linear bag (solve.py): its design matrix gives the network's own logits, the
solver reaches scikit-learn's logistic regression on the same inputs, and the student step uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datadistill.config import ConfigError
from datadistill.modelio import load_folder
from datadistill.solve import design_matrix, solve_linear
from datadistill.student import load_run_config, solver_for, train_student
from datadistill.students import build_student
from datadistill.students.base import Dims
from datadistill.text import Vocab
from datadistill.text.features import FeatureConfig, Featurizer

PAIRS = [("北京天气怎么样", "北京的天气如何"), ("上海明天下雨吗", "今天北京天气"), ("你好", "你好啊啊"), ("天气", "")]


def _featurizer(texts) -> Featurizer:
    vocab = Vocab.build([list(t) for t in texts])
    return Featurizer(FeatureConfig(tokenizer="char", max_len=64, ngrams=[2, 3], ngram_buckets=101), vocab)


@pytest.mark.parametrize(
    ("pair", "params"),
    [(True, {}), (True, {"similarity": False}), (False, {}), (False, {"weighting": "mean"})],
)
def test_the_design_matrix_times_the_weights_is_the_networks_logits(pair, params):
    texts = [t for p in PAIRS for t in p]
    f = _featurizer(texts[:5])  # the rest holds unknown characters
    dims = Dims(len(f.vocab), 3, 101, pair=pair)
    model = build_student("bow", params, dims)
    model.fit_idf([(f.batch(texts)["ids_a"].numpy(), f.batch(texts)["ngr_a"].numpy())])
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    batch = f.batch([a for a, _ in PAIRS], [b for _, b in PAIRS] if pair else None)
    x = design_matrix(model, [batch], len(PAIRS))
    blocks = model.linear_tables()
    assert x.shape == (len(PAIRS), sum(n for _, n in blocks))
    params_ = dict(model.named_parameters())
    weight = torch.cat([params_[n].T if n == "similar.weight" else params_[n] for n, _ in blocks])  # [D, C]
    want = model.train()(batch)  # the training path
    got = torch.sparse.mm(x, weight) + model.head.bias
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5)
    model.set_linear(weight.detach() * 2, model.head.bias.detach() * 2)  # set_linear puts each block back
    np.testing.assert_allclose(model(batch).detach().numpy(), 2 * want.detach().numpy(), rtol=1e-5, atol=1e-5)
    w, b = model.linear_weights()  # and linear_weights reads them out again
    torch.testing.assert_close(w, weight.detach() * 2)
    torch.testing.assert_close(b, model.head.bias.detach())


class _Linear(torch.nn.Module):  # what the solver needs of a model: a bias, set_linear and linear_weights
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(1, 2)

    def set_linear(self, weight, bias):
        self.weight, self.bias = weight.clone(), bias.clone()

    def linear_weights(self):
        return self.weight.clone(), self.bias.clone()


def _separable(n=300, d=40, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.random((n, d)) * (rng.random((n, d)) < 0.2)
    y = (xs[:, :5].sum(1) > np.median(xs[:, :5].sum(1))).astype(int)
    return xs, y


def test_the_solver_reaches_scikit_learns_logistic_regression_on_the_same_inputs():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    n, d = 300, 40
    xs = rng.random((n, d)) * (rng.random((n, d)) < 0.2)
    y = (xs[:, :5].sum(1) > np.median(xs[:, :5].sum(1))).astype(int)

    model = _Linear()
    x = torch.from_numpy(xs).float().to_sparse_csr()
    labels = torch.from_numpy(y)
    result = solve_linear(
        model,
        x,
        lambda z: torch.nn.functional.cross_entropy(z, labels),
        lambda: 1.0,
        n,
        c=2.0,
        iterations=200,
        progress=False,
    )
    sk = linear_model.LogisticRegression(C=2.0 * 2, tol=1e-8, max_iter=5000).fit(xs, y)
    ours = (model.weight[:, 1] - model.weight[:, 0]).numpy()
    # two-class softmax: w = W[:, 1] - W[:, 0] with W[:, 0] = -W[:, 1] at the optimum, so ||W||^2 = ||w||^2 / 2
    # and our mean loss + ||W||^2 / (2 c n) is scikit-learn's 0.5 ||w||^2 + C sum of losses at C = 2 c
    np.testing.assert_allclose(ours, sk.coef_[0], atol=2e-3)
    assert result.steps <= 200 and result.best_step == result.steps


def _pair_files(tmp_path, write_tsv):
    same = [("北京天气怎么样", "北京天气如何"), ("今天下雨吗", "今天会下雨吗"), ("你叫什么名字", "你的名字是什么")]
    diff = [("北京天气怎么样", "上海房价多少"), ("今天下雨吗", "明天吃什么"), ("你叫什么名字", "他住在哪里")]
    rows = [("1", a, b) for a, b in same] * 8 + [("0", a, b) for a, b in diff] * 8
    header = ("label", "text_a", "text_b")
    return write_tsv(tmp_path / "train.tsv", rows, header), write_tsv(tmp_path / "dev.tsv", rows[::4], header)


def test_the_student_step_solves_a_linear_bag_and_the_folder_predicts_alike(tmp_path, write_tsv):
    train, dev = _pair_files(tmp_path, write_tsv)
    out = tmp_path / "bow"
    overrides = [f"data.train={train}", f"data.dev={dev}", "student.arch=bow", "student.features.ngram_buckets=4096"]
    metrics = train_student(load_run_config(None, [*overrides, f"output={out}"]), progress=False)
    assert metrics["dev"]["accuracy"] == 1.0
    assert metrics["chosen"]["l2_c"] in (1.0, 4.0, 16.0, 64.0)  # l2_c "auto", the default
    assert metrics["history"] and "epoch" not in metrics["history"][0]  # L-BFGS iterations, not epochs
    model, featurizer, _, _ = load_folder(out)
    probs = torch.softmax(model(featurizer.batch(["北京天气怎么样"], ["北京天气如何"])), -1)
    assert probs[0, 1] > 0.5


def test_lbfgs_is_refused_for_a_student_that_is_not_linear(tmp_path, write_tsv):
    train, dev = _pair_files(tmp_path, write_tsv)
    want = (
        "solver lbfgs solves a student linear in its weights (a bow with emb_dim 0), and this {} is not: "
        "set train.solver to auto or adamw"
    )
    for arch, model in (("cnn", "{}"), ("bow", '{"emb_dim": 8}')):
        overrides = [f"data.train={train}", f"data.dev={dev}", f"student.arch={arch}", f"student.model={model}"]
        cfg = load_run_config(None, [*overrides, "train.solver=lbfgs", f"output={tmp_path / arch}"])
        with pytest.raises(ConfigError) as e:
            train_student(cfg, progress=False)
        assert str(e.value) == want.format(arch)


def test_auto_solves_only_a_linear_bag():
    assert solver_for("bow", {}, "auto") == "lbfgs"
    assert solver_for("bow", {"emb_dim": 0}, "auto") == "lbfgs"
    assert solver_for("bow", {"hidden": 16}, "auto") == "adamw"  # a 64-wide bag with a hidden layer
    assert solver_for("bow", {"emb_dim": 0}, "adamw") == "adamw"
    assert solver_for("cnn", {}, "auto") == "adamw"


def test_an_unknown_solver_is_named():
    with pytest.raises(ConfigError) as e:
        load_run_config(None, ["train.solver=sgd"])
    assert "solver must be one of auto, adamw, lbfgs, got 'sgd'" in str(e.value)


def test_rows_with_teacher_logits_only_are_distilled_as_rows_with_their_probabilities():
    from datadistill.losses import LOSSES
    from datadistill.rows import RowTable
    from datadistill.solve import targets

    z = np.array([[2.0, -1.0], [0.5, 0.3], [np.nan, np.nan]], dtype=np.float32)  # the last row: gold
    p = torch.softmax(torch.from_numpy(np.nan_to_num(z)), -1).numpy()
    p[2] = np.nan
    n = len(z)
    empty = np.zeros((n, 1), dtype=np.int64)
    label, gold = np.array([0, 0, 1]), np.array([False, False, True])

    def table(probs, logits):
        return RowTable(np.zeros(0, np.int32), empty, empty, label, gold, probs, logits, pair=False)

    nan = np.full_like(z, np.nan)
    logits_S = torch.tensor([[0.1, 0.4], [1.0, -1.0], [0.0, 0.3]])
    loss = LOSSES.get("kl")
    only_logits = targets(table(nan, z), 2)
    assert only_logits["has_T"].tolist() == [True, True, False]
    with_probs = loss(logits_S, **targets(table(p, nan), 2)).item()
    assert loss(logits_S, **only_logits).item() == pytest.approx(with_probs, rel=1e-5)
    assert loss(logits_S, **targets(table(nan, nan), 2)).item() != pytest.approx(with_probs, rel=1e-3)


def test_the_history_fits_its_memory_and_a_bag_too_wide_for_it_goes_to_the_loop(
    tmp_path, write_tsv, monkeypatch, caplog
):
    from datadistill import solve

    assert solve.history_for(1_000_000 * 2) == 20  # ChnSentiCorp's bag: 2 labels, 1M inputs
    assert solve.history_for(30_000_000) == 8  # 2 GB / (2 vectors x 4 bytes x 30M)
    assert solve.history_for(119_000_000) is None  # 119 classes over 1M inputs: 2 x 5 vectors would be ~4.4 GB
    train, dev = _pair_files(tmp_path, write_tsv)
    monkeypatch.setattr(solve, "HISTORY_BYTES", 1000)  # the tiny bag is now "too wide"
    overrides = [f"data.train={train}", f"data.dev={dev}", "student.arch=bow", "train.epochs=1"]
    with caplog.at_level("WARNING", logger="datadistill"):
        metrics = train_student(load_run_config(None, [*overrides, f"output={tmp_path / 'a'}"]), progress=False)
    assert "too many for L-BFGS to keep 5 steps of history" in caplog.text
    assert "epoch" in metrics["history"][0]  # the loop's history
    with pytest.raises(ConfigError, match=r"^train.solver lbfgs: the linear bag has [\d,]+ weights \(2 labels\)"):
        train_student(load_run_config(None, [*overrides, "train.solver=lbfgs", f"output={tmp_path / 'b'}"]))


def test_l2_c_auto_keeps_the_c_whose_weights_score_best_on_dev():
    from datadistill.solve import solve_path

    xs, y = _separable()
    x, labels = torch.from_numpy(xs).float().to_sparse_csr(), torch.from_numpy(y)

    def loss_of(z):
        return torch.nn.functional.cross_entropy(z, labels)

    norms = {}
    for c in (1.0, 4.0, 16.0):  # each C solved alone, from zero: its optimum's weight norm
        m = _Linear()
        solve_linear(m, x, loss_of, lambda: 1.0, len(y), c, 300, progress=False)
        norms[c] = m.weight.norm().item()
    assert norms[1.0] < norms[4.0] < norms[16.0]
    model = _Linear()
    # "dev" peaks at C 4's optimum, so the path must keep C 4, reached from C 1's weights
    result = solve_path(
        model,
        x,
        loss_of,
        lambda: 1 / (1 + abs(model.weight.norm().item() - norms[4.0])),
        len(y),
        (16, 1, 4),
        300,
        False,
    )
    c = result.chosen["l2_c"]
    assert c == 4.0 and result.chosen == {"l2_c": 4.0}
    assert model.weight.norm().item() == pytest.approx(norms[4.0], rel=1e-3)
    assert [h["l2_c"] for h in result.history][0] == 1.0 and {h["l2_c"] for h in result.history} == {1.0, 4.0, 16.0}
    # a tie goes to the C nearest 16
    assert solve_path(_Linear(), x, loss_of, lambda: 0.5, len(y), (1, 4, 64), 300, False).chosen["l2_c"] == 4.0
    assert solve_path(_Linear(), x, loss_of, lambda: 0.5, len(y), (1, 4, 16, 64), 300, False).chosen["l2_c"] == 16.0


def test_l2_c_is_a_number_or_auto():
    assert load_run_config(None, []).train.l2_c == "auto"
    assert load_run_config(None, ["train.l2_c=4"]).train.l2_c == 4.0
    with pytest.raises(ConfigError, match="l2_c must be a number or 'auto', got 'big'"):
        load_run_config(None, ["train.l2_c=big"])
    with pytest.raises(ConfigError, match=r"train.l2_c: expected a number or a string, got \[1, 4\]"):
        load_run_config(None, ["train.l2_c=[1,4]"])


def test_nb_scale_is_the_naive_bayes_log_count_ratio_of_each_input():
    from datadistill.solve import label_mass, nb_scale

    # 4 rows; column 0 only in class 1 rows, column 1 in both classes, column 2 in no row, column 3 a
    # similarity-like input left unscaled; the value of an input does not count, only that the row holds it
    x = torch.tensor([[0.5, 0.2, 0, 1.0], [0.1, 0.3, 0, 1.0], [0, 0.7, 0, 1.0], [0, 0.4, 0, 1.0]]).to_sparse_csr()
    labels = torch.tensor([1, 1, 0, 0])
    t = {"labels": labels, "probs_T": None, "has_T": torch.zeros(4, dtype=torch.bool)}
    mass = label_mass(t, torch.arange(4), 4, 2)
    torch.testing.assert_close(mass, torch.tensor([[0.0, 1], [0, 1], [1, 0], [1, 0]]))
    s = nb_scale(x, mass, torch.tensor([True, True, True, False]))
    # class 1: p = 1 + [2, 2, 0 (unseen), 2] over the seen inputs, |p|_1 = 9; q = 1 + [0, 2, -, 2], |q|_1 = 7
    r0 = abs(np.log((3 / 9) / (1 / 7)))
    r1 = abs(np.log((3 / 9) / (3 / 7)))
    np.testing.assert_allclose(s.numpy(), [r0, r1, 0.0, 1.0], rtol=1e-6)
    # no row holds any input, or no label mass: nothing is scaled up, and nothing is NaN
    assert nb_scale(torch.zeros(4, 3).to_sparse_csr(), mass, torch.ones(3, dtype=torch.bool)).tolist() == [0, 0, 0]
    assert nb_scale(x, torch.zeros(4, 2), torch.ones(4, dtype=torch.bool)).isfinite().all()
    # an epoch that repeats row 0 and a teacher row with probabilities counts them as mass
    t2 = {
        "labels": torch.tensor([1, 1, 0]),
        "probs_T": torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.25, 0.75]]),
        "logits_T": torch.zeros(3, 2),
        "has_T": torch.tensor([False, False, True]),
    }
    torch.testing.assert_close(
        label_mass(t2, torch.tensor([0, 0, 2]), 3, 2), torch.tensor([[0.0, 2], [0, 0], [0.25, 0.75]])
    )


def test_a_scaled_solve_is_logistic_regression_on_the_scaled_inputs():
    linear_model = pytest.importorskip("sklearn.linear_model")
    xs, y = _separable()
    scale = np.random.default_rng(1).random(xs.shape[1]) * 2
    scale[3] = 0.0  # an input scaled to nothing gets no weight
    model = _Linear()
    labels = torch.from_numpy(y)
    x = torch.from_numpy(xs).float().to_sparse_csr()
    solve_linear(
        model,
        x,
        lambda z: torch.nn.functional.cross_entropy(z, labels),
        lambda: 1.0,
        len(y),
        c=2.0,
        iterations=300,
        progress=False,
        scale=torch.from_numpy(scale).float(),
    )
    sk = linear_model.LogisticRegression(C=4.0, tol=1e-8, max_iter=5000).fit(xs * scale, y)
    w = (model.weight[:, 1] - model.weight[:, 0]).numpy()  # the model holds W = scale * V
    np.testing.assert_allclose(w, sk.coef_[0] * scale, rtol=2e-3, atol=5e-3)  # L-BFGS stops within its tolerance
    assert w[3] == 0.0


@pytest.mark.slow  # two solved students
def test_nb_scale_needs_the_solver_and_by_default_scales_single_texts_not_pairs(
    tmp_path, write_tsv, senti_files, caplog
):
    with pytest.raises(ConfigError) as e:
        load_run_config(None, ["train.nb_scale=true", "train.solver=adamw"])
    assert str(e.value).endswith(
        "nb_scale scales a solved linear bag's inputs, and solver is adamw: set solver to auto, or remove nb_scale"
    )
    (tmp_path / "pair_data").mkdir()
    train, dev = _pair_files(tmp_path / "pair_data", write_tsv)  # beside senti_files' train.tsv, not over it
    runs = {
        "pairs": [f"data.train={train}", f"data.dev={dev}", "train.nb_scale=null"],
        "single": [f"data.train={senti_files['train']}", f"data.dev={senti_files['dev']}", "train.nb_scale=null"],
    }
    scaled = {}
    for name, overrides in runs.items():
        caplog.clear()
        cfg = [*overrides, "student.arch=bow", "student.features.ngram_buckets=4096", f"output={tmp_path / name}"]
        with caplog.at_level("INFO", logger="datadistill"):
            metrics = train_student(load_run_config(None, cfg), progress=False)
        assert metrics["dev"]["accuracy"] >= 0.9
        scaled[name] = "naive-Bayes log-count ratio" in caplog.text
        assert metrics["chosen"]["nb_scale"] == scaled[name]  # what null became, on record
    assert scaled == {"pairs": False, "single": True}
    cnn = [*runs["single"], "student.arch=cnn", "train.nb_scale=true", "train.epochs=1", f"output={tmp_path / 'cnn'}"]
    with pytest.raises(ConfigError) as e:
        train_student(load_run_config(None, cnn), progress=False)
    assert str(e.value) == (
        "train.nb_scale scales a solved linear bag's inputs, and this cnn is trained by the mini-batch loop: "
        "remove nb_scale (or set it to null) for this student"
    )
