"""Training losses for disparity, on valid ground-truth pixels only.

- smooth L1 between the regressed disparity and the ground truth (pixels);
- sub-pixel cross-entropy (Tulyakov et al. 2018): the network's distribution over the
  integer disparity candidates against a Laplace-shaped target centred on the
  ground truth, ``q(d) ~ exp(-|d - gt| / b)``, which keeps the sub-pixel information.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = ["smooth_l1_disparity", "subpixel_cross_entropy", "disparity_loss"]


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``valid``; zero (still differentiable) when nothing is valid."""
    valid = valid.to(values.dtype)
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def smooth_l1_disparity(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Smooth L1 (beta 1 pixel) between ``pred`` and ``gt`` [B, H, W] (pixels) over ``valid``."""
    return _masked_mean(F.smooth_l1_loss(pred, gt, reduction="none", beta=1.0), valid)


def subpixel_cross_entropy(
    log_prob: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, b: float = 1.0
) -> torch.Tensor:
    """Cross-entropy between ``log_prob`` [B, D, H, W] over disparities 0..D-1 and a Laplace
    target of scale ``b`` pixels centred on ``gt`` [B, H, W], averaged over ``valid`` pixels."""
    if b <= 0:
        raise ConfigError(f"train.subpixel_b must be > 0, not {b}")
    d = torch.arange(log_prob.shape[1], device=log_prob.device, dtype=log_prob.dtype).view(1, -1, 1, 1)
    target = torch.softmax(-(d - gt.unsqueeze(1)).abs() / b, dim=1)
    ce = -(target * log_prob).sum(dim=1)
    return _masked_mean(ce, valid)


def disparity_loss(
    output: Mapping[str, torch.Tensor],
    batch: Mapping[str, Any],
    kind: str = "smooth_l1",
    subpixel_b: float = 1.0,
    coarse_weight: float = 0.5,
    fine_reach: float | None = None,
    max_disparity: float | None = None,
) -> torch.Tensor:
    """The training loss of a network output (``disparity`` [B,H,W], ``log_prob`` [B,D,H,W],
    and for the pyramid network ``coarse`` [B,H,W]) against a collated batch (``disparity``,
    ``valid``). A ``coarse`` output adds ``coarse_weight`` x its smooth L1 (deep supervision).

    With a full-resolution refinement (``fine_base`` + ``fine_residual`` outputs) and a
    ``fine_reach`` (its radius, the residual's largest magnitude; ``train.fine_loss: reach``),
    the refinement learns only from the pixels it can correct: the disparity's smooth L1 sends
    its gradient to the network before the refinement on every valid pixel, and to the
    refinement only where ``|fine_base - gt| <= fine_reach`` (a second term, summed over those
    pixels and divided by the valid ones, as in the first). ``max_disparity``: the output's
    clamp (default none). Without ``fine_reach``, one term on every valid pixel.
    """
    gt = batch["disparity"].to(output["disparity"].device)
    valid = batch["valid"].to(output["disparity"].device)
    if kind == "smooth_l1":
        if fine_reach is not None and "fine_residual" in output:
            base, residual = output["fine_base"], output["fine_residual"]
            hi = float("inf") if max_disparity is None else float(max_disparity)
            reach = valid & ((base.detach() - gt).abs() <= float(fine_reach))
            loss = smooth_l1_disparity((base + residual.detach()).clamp(0.0, hi), gt, valid)
            loss = loss + smooth_l1_disparity((base.detach() + residual).clamp(0.0, hi), gt, reach) * (
                reach.sum() / valid.sum().clamp(min=1)
            )
        else:
            loss = smooth_l1_disparity(output["disparity"], gt, valid)
        if "coarse" in output and coarse_weight > 0:
            loss = loss + coarse_weight * smooth_l1_disparity(output["coarse"], gt, valid)
        return loss
    if kind == "subpixel_ce":
        return subpixel_cross_entropy(output["log_prob"], gt, valid, subpixel_b)
    raise ConfigError(f"train.loss {kind!r}: expected 'smooth_l1' or 'subpixel_ce'")
