"""Distillation losses. Each maps (logits_S [B, C], targets) to a scalar.

targets: labels [B] (hard label ids: gold for part.0, the teacher's argmax for part.1),
probs_T [B, C] and logits_T [B, C] (teacher scores; rows without them have has_T [B] False).
Rows without teacher scores always fall back to cross-entropy on their label.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .registry import Registry

LossFn = Callable[..., torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")
register_loss = LOSSES.register


def _split(loss_T: torch.Tensor, logits_S: torch.Tensor, labels: torch.Tensor, has_T: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of loss_T [B] where has_T, cross-entropy elsewhere."""
    ce = F.cross_entropy(logits_S, labels, reduction="none")  # [B]
    return torch.where(has_T, loss_T, ce).mean()


def _teacher_logits(probs_T: torch.Tensor, logits_T: torch.Tensor, has_logits: torch.Tensor) -> torch.Tensor:
    """Teacher logits, or log-probabilities where only probabilities were kept (same softmax)."""
    return torch.where(has_logits[:, None], logits_T, probs_T.clamp(min=1e-8).log())


@register_loss("hard")
def hard_loss(logits_S, labels, **_) -> torch.Tensor:
    """Cross-entropy on hard labels (the seed's method)."""
    return F.cross_entropy(logits_S, labels)


@register_loss("kl")
def kl_loss(
    logits_S, labels, probs_T=None, logits_T=None, has_T=None, has_logits=None, temperature: float = 1.0, **_
) -> torch.Tensor:
    """T^2 * KL(softmax(z_T / T) || softmax(z_S / T)) (Hinton et al. 2015)."""
    if probs_T is None:  # a batch of gold rows only
        return F.cross_entropy(logits_S, labels)
    z_T = _teacher_logits(probs_T, logits_T, has_logits)
    log_p_S = F.log_softmax(logits_S / temperature, dim=-1)
    log_p_T = F.log_softmax(z_T / temperature, dim=-1)
    kl = (log_p_T.exp() * (log_p_T - log_p_S)).sum(-1) * temperature**2  # [B]
    return _split(kl, logits_S, labels, has_T)


@register_loss("mse")
def mse_loss(logits_S, labels, probs_T=None, logits_T=None, has_T=None, has_logits=None, **_) -> torch.Tensor:
    """Mean squared error between logits (Tang et al. 2019); both centred, so a shift of all logits is free."""
    if probs_T is None:  # a batch of gold rows only
        return F.cross_entropy(logits_S, labels)
    z_T = _teacher_logits(probs_T, logits_T, has_logits)
    z_T = z_T - z_T.mean(-1, keepdim=True)
    z_S = logits_S - logits_S.mean(-1, keepdim=True)
    return _split(((z_S - z_T) ** 2).mean(-1), logits_S, labels, has_T)


@register_loss("mix")
def mix_loss(logits_S, labels, alpha: float = 0.5, **kw) -> torch.Tensor:
    """alpha * hard + (1 - alpha) * kl."""
    return alpha * hard_loss(logits_S, labels) + (1 - alpha) * kl_loss(logits_S, labels, **kw)
