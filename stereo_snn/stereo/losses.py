"""Training losses for disparity, on valid ground-truth pixels only.

- smooth L1 between the regressed disparity and the ground truth (pixels);
- sub-pixel cross-entropy (Tulyakov et al. 2018): the network's distribution over the
  integer disparity candidates against a Laplace-shaped target centred on the
  ground truth, ``q(d) ~ exp(-|d - gt| / b)``, which keeps the sub-pixel information;
- for the pyramid network's coarse volume, either the smooth L1 of its expected disparity or
  a cross-entropy of its candidate distribution against the ground truth's two nearest
  candidates (``coarse_cross_entropy``), which trains the choice of the right candidate
  directly instead of only the expectation.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = ["smooth_l1_disparity", "subpixel_cross_entropy", "coarse_target", "coarse_cross_entropy", "disparity_loss"]


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


def coarse_target(
    gt: torch.Tensor, valid: torch.Tensor, size: tuple[int, int], step: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ground truth of a coarse grid: ``gt``, ``valid`` [B, H, W] (pixels) -> the mean valid
    disparity of each coarse cell in candidate units (``step`` px apart) and its mask [B, *size].

    A cell is supervised when at least three quarters of its pixels are valid and their
    disparities spread (standard deviation) by at most one candidate step: a cell across a
    depth edge has no single match, and its mean would be a disparity of neither side.
    """
    v = valid.to(gt.dtype).unsqueeze(1)
    g = gt.unsqueeze(1) * v
    frac = F.interpolate(v, size=size, mode="area")
    mean = F.interpolate(g, size=size, mode="area") / frac.clamp_min(1e-6)
    mean_sq = F.interpolate(g * gt.unsqueeze(1), size=size, mode="area") / frac.clamp_min(1e-6)
    spread = (mean_sq - mean.square()).clamp_min(0.0).sqrt()
    mask = (frac >= 0.75) & (spread <= step)
    return (mean / step).squeeze(1), mask.squeeze(1)


def coarse_cross_entropy(cost: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, step: float) -> torch.Tensor:
    """Cross-entropy of softmax(-``cost``) [B, D_c, Hc, Wc] over candidates 0, step, 2 step, ...
    px against the ground truth's two nearest candidates, weighted so that the target's
    expectation is the cell's ground truth (``coarse_target``), averaged over supervised cells.
    Ground truth beyond the last candidate puts all its weight on the last one."""
    levels = cost.shape[1]
    target_c, mask = coarse_target(gt.to(cost.dtype), valid, tuple(cost.shape[-2:]), step)
    target_c = target_c.clamp(0.0, levels - 1)
    lo = target_c.floor().long()  # <= levels - 1 after the clamp above
    hi = (lo + 1).clamp(max=levels - 1)
    w_hi = target_c - lo.to(cost.dtype)
    log_prob = F.log_softmax(-cost, dim=1)
    picked = (1.0 - w_hi) * log_prob.gather(1, lo.unsqueeze(1)).squeeze(1)
    picked = picked + w_hi * log_prob.gather(1, hi.unsqueeze(1)).squeeze(1)
    return _masked_mean(-picked, mask)


def disparity_loss(
    output: Mapping[str, torch.Tensor],
    batch: Mapping[str, Any],
    kind: str = "smooth_l1",
    subpixel_b: float = 1.0,
    coarse_weight: float = 0.5,
    fine_reach: float | None = None,
    max_disparity: float | None = None,
    coarse_loss: str = "smooth_l1",
    coarse_step: float | None = None,
) -> torch.Tensor:
    """The training loss of a network output (``disparity`` [B,H,W], ``log_prob`` [B,D,H,W],
    and for the pyramid network ``coarse`` [B,H,W]) against a collated batch (``disparity``,
    ``valid``). A ``coarse`` output adds ``coarse_weight`` x its smooth L1 (deep supervision),
    or with ``coarse_loss="ce"`` x the cross-entropy of ``coarse_cost`` (``coarse_cross_entropy``;
    ``coarse_step``: its candidates' spacing in px).

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
            if coarse_loss == "ce":
                if coarse_step is None or "coarse_cost" not in output:
                    raise ConfigError("train.coarse_loss 'ce' needs the pyramid network's coarse cost volume")
                term = coarse_cross_entropy(output["coarse_cost"], gt, valid, coarse_step)
            elif coarse_loss == "smooth_l1":
                term = smooth_l1_disparity(output["coarse"], gt, valid)
            else:
                raise ConfigError(f"train.coarse_loss {coarse_loss!r}: expected 'smooth_l1' or 'ce'")
            loss = loss + coarse_weight * term
        return loss
    if kind == "subpixel_ce":
        return subpixel_cross_entropy(output["log_prob"], gt, valid, subpixel_b)
    raise ConfigError(f"train.loss {kind!r}: expected 'smooth_l1' or 'subpixel_ce'")
