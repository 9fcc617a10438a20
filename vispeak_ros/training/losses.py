"""Losses of ViSpeak's streaming training: LM cross-entropy on answer tokens + sigmoid focal loss on the
informative head (alpha 0.25, gamma 2, mean over labelled positions), added with weight 1 (spec, Training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vispeak_ros.training.data import IGNORE

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> torch.Tensor:
    """Mean focal loss over positions whose target is 0 or 1 (IGNORE elsewhere); 0 when none is labelled.

    Per position: alpha_t * (1 - p_t)^gamma * BCE, p_t the probability of the true class, alpha_t = alpha for
    positives and 1 - alpha for negatives (the RetinaNet form the official code uses)."""
    mask = targets != IGNORE
    if not bool(mask.any()):
        return logits.sum() * 0.0
    x = logits[mask].float()
    y = targets[mask].float()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean()


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at labelled rows (label of row p = agent token of row p+1); 0 when none is labelled."""
    mask = labels != IGNORE
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask].float(), labels[mask])


def streaming_loss(
    logits: torch.Tensor,
    informative: torch.Tensor | None,
    lm_labels: torch.Tensor,
    info_labels: torch.Tensor,
    alpha: float = FOCAL_ALPHA,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, lm, focal): total = lm + 1.0 * focal."""
    lm = lm_loss(logits, lm_labels)
    focal = sigmoid_focal_loss(informative, info_labels, alpha) if informative is not None else lm * 0.0
    return lm + focal, lm, focal
