from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from datadistill.losses import LOSSES


def targets(b=6, c=3):
    g = torch.Generator().manual_seed(0)
    logits_T = torch.randn(b, c, generator=g) * 3
    has_T = torch.tensor([True, True, True, True, False, False])
    return dict(
        labels=torch.randint(0, c, (b,), generator=g),
        probs_T=logits_T.softmax(-1),
        logits_T=logits_T,
        has_T=has_T,
        has_logits=torch.tensor([True, False, True, False, False, False]),
    )


@pytest.mark.parametrize("name", ["hard", "kl", "mse", "mix"])
def test_every_loss_gives_finite_gradients(name):
    logits_S = torch.randn(6, 3, requires_grad=True)
    loss = LOSSES.get(name)(logits_S, alpha=0.3, temperature=2.0, **targets())
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    assert logits_S.grad.abs().sum() > 0


def test_soft_losses_vanish_when_student_copies_teacher():
    t = targets()
    t["has_T"] = torch.ones(6, dtype=torch.bool)
    t["has_logits"] = torch.ones(6, dtype=torch.bool)
    student = t["logits_T"] + 5.0  # a shift of every logit changes no probability
    assert LOSSES.get("kl")(student, temperature=3.0, **t).item() == pytest.approx(0.0, abs=1e-5)
    assert LOSSES.get("mse")(student, **t).item() == pytest.approx(0.0, abs=1e-5)


def test_rows_without_teacher_scores_use_cross_entropy_and_mix_combines():
    t = targets()
    t["has_T"] = torch.zeros(6, dtype=torch.bool)
    z = torch.randn(6, 3)
    ce = F.cross_entropy(z, t["labels"])
    assert LOSSES.get("kl")(z, **t).item() == pytest.approx(ce.item(), rel=1e-5)
    t2 = targets()
    mix = LOSSES.get("mix")(z, alpha=0.25, **t2)
    expect = 0.25 * F.cross_entropy(z, t2["labels"]) + 0.75 * LOSSES.get("kl")(z, **t2)
    assert mix.item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["kl", "mse", "mix"])
def test_a_batch_without_teacher_rows_is_plain_cross_entropy(name):
    # the training loop leaves probs_T/logits_T out of a batch that has only part.0 rows
    z, labels = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    loss = LOSSES.get(name)(
        z, labels, probs_T=None, logits_T=None, has_T=torch.zeros(4, dtype=torch.bool), has_logits=None, alpha=0.5
    )
    assert loss.item() == pytest.approx(F.cross_entropy(z, labels).item(), rel=1e-6)
