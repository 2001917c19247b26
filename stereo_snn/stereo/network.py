"""The stereo network: spiking feature net -> cost volume -> matching net -> soft-argmin.

Shapes (multi-step): input representations ``[T, B, C, H, W]`` per view; features
``[T, B, F, H/3, W/3]``; cost volume ``[T, B, 2F, D/3, H/3, W/3]``; the matching net's
cost ``[B, D/3, H/3, W/3]`` (averaged over T) is upsampled trilinearly to
``[B, D, H, W]``; a softmin over the D disparity candidates gives probabilities and the
disparity is their expectation (soft-argmin), in full-resolution pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..atomic import check_output_path
from ..errors import CheckpointError, ConfigError, DatasetError, GenotypeError, OutputError
from ..runtime import load_checkpoint, resolve_device, save_checkpoint
from ..search import (
    ComponentGenotype,
    DGSConfig,
    MemoryConfig,
    SpikingTrellis,
    SurrogateSearch,
    TrellisConfig,
    genotype_from_dict,
    load_genotype,
)
from ..spiking import NeuronConfig, carried_state, carrying, reset
from .config import StereoConfig

__all__ = [
    "RUNS_PER_FRAME",
    "concat_cost_volume",
    "soft_argmin",
    "coincidence_volume",
    "local_coincidence",
    "shift_columns",
    "StereoNet",
    "PyramidStereoNet",
    "coarse_levels",
    "coarse_step",
    "event_spikes",
    "expected_candidate",
    "trellis_configs",
    "build_supernet",
    "borrowed_fine",
    "build_network",
    "load_state_checked",
    "WEIGHT_FREE_SETTINGS",
    "reconfigure_checkpoint",
    "LoadedModel",
    "read_checkpoint",
    "load_model",
    "make_dgs",
]


#: how often each searched component runs per stereo frame: the feature net once per view (both
#: designs stack the two views along the batch), the others once; the search's expected energy
#: per frame counts each component that many times, as the measured report does
RUNS_PER_FRAME: dict[str, int] = {"feature": 2}


def concat_cost_volume(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """Concatenation cost volume over ``levels`` disparity candidates (feature pixels).

    left, right: [..., C, H, W] features of the two views (any leading dims, e.g. T, B).
    Returns [..., 2C, levels, H, W]: candidate d holds left(x) and right(x - d); columns
    x < d (no right pixel) are zero in both halves.
    """
    if left.shape != right.shape:
        raise ValueError(f"left features {tuple(left.shape)} and right {tuple(right.shape)} differ")
    *lead, c, h, w = left.shape
    vol = left.new_zeros(*lead, 2 * c, levels, h, w)
    for d in range(levels):
        if d >= w:
            break
        vol[..., :c, d, :, d:] = left[..., :, :, d:]
        vol[..., c:, d, :, d:] = right[..., :, :, : w - d]
    return vol


def soft_argmin(cost: torch.Tensor, max_disparity: int, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Disparity regression from a 1/3-resolution matching cost.

    cost: [B, D3, H3, W3] (lower = better match); candidate k is a shift of k feature pixels,
    i.e. 3k full-resolution pixels. The cost is interpolated linearly along disparity onto
    every integer disparity (candidate k lands exactly on 3k) and bilinearly in space to
    ``size`` = (H, W) (separable trilinear upsampling), restricted to 0..max_disparity-1,
    then p = softmax(-cost) and disparity = sum_d d p(d) (soft-argmin).
    Returns ``disparity`` [B, H, W] (pixels) and ``log_prob`` [B, max_disparity, H, W], float32
    also under autocast (a half-precision expectation would be off by up to 0.5 px at 128 px).
    """
    cost = cost.float()
    b, d3, h3, w3 = cost.shape
    full = 3 * (d3 - 1) + 1
    if full < max_disparity:
        raise ValueError(f"{d3} cost candidates cover disparities < {full}, fewer than max_disparity={max_disparity}")
    up = F.interpolate(cost.unsqueeze(1), size=(full, h3, w3), mode="trilinear", align_corners=True).squeeze(1)
    up = F.interpolate(up[:, :max_disparity], size=tuple(size), mode="bilinear", align_corners=False)
    log_prob = F.log_softmax(-up, dim=1)
    d = torch.arange(max_disparity, device=cost.device, dtype=log_prob.dtype).view(1, -1, 1, 1)
    disparity = (log_prob.exp() * d).sum(dim=1)
    return {"disparity": disparity, "log_prob": log_prob}


def _grouped(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[..., C, H, W] -> [..., groups, C / groups, H, W]; ValueError when ``groups`` does not divide C."""
    *lead, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"{c} feature channels do not split into {groups} groups")
    return x.reshape(*lead, groups, c // groups, h, w)


def _coincide(lg: torch.Tensor, rg: torch.Tensor) -> torch.Tensor:
    """Per group, the OR over its channels of left AND right: ``1 - prod_c (1 - l_c r_c)`` over
    dim -3 of [..., groups, C / groups, H, W] (binary for spikes, differentiable)."""
    return 1.0 - torch.prod(1.0 - lg * rg, dim=-3)


def coincidence_volume(left: torch.Tensor, right: torch.Tensor, levels: int, groups: int) -> torch.Tensor:
    """Group-wise coincidence volume over ``levels`` integer shifts (feature pixels).

    left, right: [..., C, H, W] spikes (or values in [0, 1]) of the two views, C divisible by
    ``groups``. Returns [..., groups, levels, H, W]: candidate d holds, per group, the
    probabilistic OR over the group's channels of left(x) AND right(x - d), i.e.
    ``1 - prod_c (1 - l_c(x) r_c(x - d))``: binary for spike inputs (1 where some channel of
    the group fires in both views), so the matching net sees spikes; differentiable in both.
    Columns x < d (no right pixel) are zero.
    """
    if left.shape != right.shape:
        raise ValueError(f"left features {tuple(left.shape)} and right {tuple(right.shape)} differ")
    *lead, _, h, w = left.shape
    lg, rg = _grouped(left, groups), _grouped(right, groups)
    vol = left.new_zeros(*lead, groups, levels, h, w)
    for d in range(min(levels, w)):
        vol[..., d, :, d:] = _coincide(lg[..., d:], rg[..., : w - d])
    return vol


def shift_columns(right: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """right(x - shift(x)) for integer ``shift`` [N, H, W] (feature pixels); zero outside the image.

    right: [N, C, H, W]. Nearest-pixel sampling keeps spikes binary.
    """
    n, c, h, w = right.shape
    xs = torch.arange(w, device=right.device).view(1, 1, w)
    idx = xs - shift
    inside = (idx >= 0) & (idx < w)
    picked = torch.gather(right, 3, idx.clamp(0, w - 1).unsqueeze(1).expand(n, c, h, w))
    return picked * inside.unsqueeze(1).to(right.dtype)


def local_coincidence(
    left: torch.Tensor, right: torch.Tensor, disparity: torch.Tensor, radius: int, groups: int
) -> torch.Tensor:
    """Group-wise coincidence (see :func:`coincidence_volume`) of left(x) with right(x - D(x) - k),
    k = -radius..radius, D = ``disparity`` [N, H, W] rounded to whole feature pixels.

    left, right: [N, C, H, W]. Returns [N, groups * (2 * radius + 1), H, W] (group-major).
    """
    n, _, h, w = left.shape
    base = torch.round(disparity).long()
    lg = _grouped(left, groups)
    out = []
    for k in range(-radius, radius + 1):
        out.append(_coincide(lg, _grouped(shift_columns(right, base + k), groups)))
    return torch.stack(out, dim=2).reshape(n, groups * (2 * radius + 1), h, w)


def _check_inputs(left: torch.Tensor, right: torch.Tensor) -> None:
    if left.shape != right.shape:
        raise DatasetError(f"left input {tuple(left.shape)} and right input {tuple(right.shape)} differ in size")
    if left.dim() != 5:
        raise ValueError(f"expected inputs [T, B, C, H, W], got {tuple(left.shape)}")


class StereoNet(nn.Module):
    """Feature trellis (2D, spiking, shared by both views) -> concatenation cost volume ->
    matching trellis (3D, spiking or ANN per cell) -> per-step 3D conv head -> soft-argmin.

    forward(left, right): representations [T, B, C, H, W] (real-valued) of both views ->
    ``{"disparity": [B, H, W] pixels, "log_prob": [B, max_disparity, H, W]}``.
    The neuron states are reset at the start of every forward (one batch = one sequence),
    except under :func:`~stereo_snn.spiking.carried_state` (streaming windows).
    This is the ``network.design: concat`` network (small disparity ranges); see
    :class:`PyramidStereoNet` for full sensor scale.
    """

    def __init__(self, feature: nn.Module, matching: nn.Module, max_disparity: int, levels: int):
        super().__init__()
        self.feature = feature
        self.matching = matching
        self.max_disparity = int(max_disparity)
        self.levels = int(levels)
        self.head = nn.Conv3d(matching.out_channels, 1, kernel_size=3, padding=1)
        matching.read_by(self.head)  # priced in the search's expected energy

    def components(self) -> dict[str, nn.Module]:
        """The searched parts by genotype component name (``feature``, ``matching``)."""
        return {"feature": self.feature, "matching": self.matching}

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_inputs(left, right)
        if not carrying():  # streaming (carried_state): the caller resets at a sequence's start
            reset(self)
        t, b = left.shape[:2]
        feats = self.feature(torch.cat([left, right], dim=1))
        volume = concat_cost_volume(feats[:, :b], feats[:, b:], self.levels)
        match = self.matching(volume, spikes=self.feature.output_spikes())
        cost = self.head(match.flatten(0, 1))
        cost = cost.view(t, b, *cost.shape[2:]).mean(0).squeeze(1)
        return soft_argmin(cost, self.max_disparity, (left.shape[-2], left.shape[-1]))


class PyramidStereoNet(nn.Module):
    """Coarse-to-fine spiking stereo network for full sensor scale (``network.design: pyramid``).

    1. feature trellis (2D, spiking, shared by both views): [T, B, C, H, W] -> [T, B, F, H/3, W/3];
    2. features max-pooled by ``coarse_scale`` (s; spikes stay spikes) and a group-wise
       coincidence volume over every shift of the coarse grid: [T, B, G, D_c, H/3s, W/3s], D_c
       candidates 3s px apart covering 0..max_disparity (binary: the matching net sees spikes);
    3. matching trellis (3D, spiking or ANN per cell) -> per-step 3D conv head -> mean over T
       -> soft-argmin: the coarse disparity (with ``coarse_window`` k > 0, over the candidates
       within k of the most likely one);
    4. refinement trellis (2D, spiking or ANN per cell) at 1/3 resolution on the local group-wise
       coincidences of the left features with the right features shifted by the (detached,
       rounded) coarse disparity over offsets -R..R, plus the left features (all spikes) ->
       per-step conv head -> mean over T -> softmax over the 2R+1 offsets -> residual;
    5. upsampling x3 of the refined 1/3-resolution disparity: bilinear, or (``upsample:
       convex``) a convex combination of each pixel's 3x3 coarse neighbours with weights a
       per-step conv head predicts from the refinement's output (mean over T), which keeps
       depth edges sharp (:func:`convex_upsample`);
    6. optionally (``fine``: ``network.fine_channels`` > 0) a full-resolution refinement trellis
       (2D, spiking or ANN per cell; its stem may be strided, ``fine_stride``) on the events
       themselves: ON/OFF spikes of the left view and their coincidences with the right view's
       at offsets -r..r px around the (detached, rounded) upsampled disparity
       (:func:`event_spikes`, :func:`local_coincidence`) -> per-step conv head -> mean over T ->
       (bilinear to full resolution) -> softmax over the 2r+1 offsets -> a residual added to
       step 5's disparity. Its head starts at zero, so it starts as the identity.

    forward(left, right) -> ``{"disparity": [B, H, W], "coarse": [B, H, W], "coarse_cost": [B,
    D_c, Hc, Wc]}``, disparities in full-resolution pixels (``coarse`` is step 3 upsampled, for
    deep supervision; ``coarse_cost`` its cost over the candidates, 3s px apart, for
    ``train.coarse_loss: ce``; with step 6 also
    ``fine_base``, step 5's disparity, and ``fine_residual``, step 6's, for the loss). The cost volume's size grows
    with max_disparity only at 1/(3s) resolution, so 0-128 px at 640x480 stays cheap.
    """

    def __init__(
        self,
        feature: nn.Module,
        matching: nn.Module,
        refine: nn.Module,
        max_disparity: int,
        coarse_scale: int,
        groups: int,
        radius: int,
        upsample: str = "bilinear",
        fine: nn.Module | None = None,
        fine_radius: int = 2,
        coarse_window: int = 0,
    ):
        super().__init__()
        self.feature = feature
        self.matching = matching
        self.refine = refine
        self.fine = fine
        self.fine_radius = int(fine_radius)
        self.coarse_window = int(coarse_window)
        self.fine_head: nn.Conv2d | None = None
        if fine is not None:
            # zero weights: uniform over the symmetric offsets, a zero residual to start with
            self.fine_head = nn.Conv2d(fine.out_channels, 2 * self.fine_radius + 1, kernel_size=3, padding=1)
            with torch.no_grad():
                self.fine_head.weight.zero_()
                self.fine_head.bias.zero_()
        self.upsample_head: nn.Conv2d | None = None
        if upsample == "convex":
            # 9 neighbour weights for each of the 3x3 sub-pixels; zero weights and bilinear
            # log-weights as bias: it starts as bilinear upsampling
            self.upsample_head = nn.Conv2d(refine.out_channels, 81, kernel_size=3, padding=1)
            with torch.no_grad():
                self.upsample_head.weight.zero_()
                self.upsample_head.bias.copy_(bilinear_mask_logits().flatten())
        self.max_disparity = int(max_disparity)
        self.coarse_scale = int(coarse_scale)
        self.groups = int(groups)
        self.radius = int(radius)
        self.levels = coarse_levels(self.max_disparity, self.coarse_scale)
        self.head = nn.Conv3d(matching.out_channels, 1, kernel_size=3, padding=1)
        self.refine_head = nn.Conv2d(refine.out_channels, 2 * self.radius + 1, kernel_size=3, padding=1)
        # the heads read the searched parts' outputs: priced in the search's expected energy
        matching.read_by(self.head)
        refine.read_by(*(h for h in (self.refine_head, self.upsample_head) if h is not None))
        if fine is not None:
            fine.read_by(self.fine_head)

    def components(self) -> dict[str, nn.Module]:
        """The searched parts by genotype component name (``feature``, ``matching``, ``refine``
        and, when present, ``fine``)."""
        parts = {"feature": self.feature, "matching": self.matching, "refine": self.refine}
        if self.fine is not None:
            parts["fine"] = self.fine
        return parts

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_inputs(left, right)
        if not carrying():  # streaming (carried_state): the caller resets at a sequence's start
            reset(self)
        t, b = left.shape[:2]
        size = (left.shape[-2], left.shape[-1])
        feats = self.feature(torch.cat([left, right], dim=1))  # [T, 2B, F, H3, W3]
        h3, w3 = feats.shape[-2:]
        s = self.coarse_scale
        pooled = F.max_pool2d(feats.flatten(0, 1), s, ceil_mode=True) if s > 1 else feats.flatten(0, 1)
        pooled = pooled.view(t, 2 * b, *pooled.shape[1:])  # max-pooled spikes stay spikes
        volume = coincidence_volume(pooled[:, :b], pooled[:, b:], self.levels, self.groups)
        spikes = self.feature.output_spikes()  # the volumes are spikes when the features are
        match = self.matching(volume, spikes=spikes)
        cost = self.head(match.flatten(0, 1))
        # the regression in float32 also under autocast: a half-precision expectation is off by up to 0.5 px
        cost = cost.view(t, b, *cost.shape[2:]).float().mean(0).squeeze(1)  # [B, D_c, Hc, Wc]
        coarse = expected_candidate(cost, self.coarse_window)  # coarse pixels
        d3 = s * F.interpolate(coarse, size=(h3, w3), mode="bilinear", align_corners=False)  # 1/3 pixels
        guide = torch.round(d3.detach().squeeze(1))
        left_f, right_f = feats[:, :b].flatten(0, 1), feats[:, b:].flatten(0, 1)
        corr = local_coincidence(left_f, right_f, guide.repeat(t, 1, 1), self.radius, self.groups)
        ref_in = torch.cat([corr, left_f], dim=1).view(t, b, -1, h3, w3)
        refined = self.refine(ref_in, spikes=spikes).flatten(0, 1)
        logits = self.refine_head(refined)
        logits = logits.view(t, b, *logits.shape[1:]).float().mean(0)
        fine = guide + expected_offset(logits, self.radius)  # [B, H3, W3], 1/3 pixels
        if self.upsample_head is not None:
            mask = self.upsample_head(refined)
            mask = mask.view(t, b, 9, 9, h3, w3).float().mean(0)
            full = 3.0 * convex_upsample(fine, mask)[:, : size[0], : size[1]]
        else:
            full = 3.0 * F.interpolate(fine.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
        coarse_full = 3.0 * F.interpolate(d3, size=size, mode="bilinear", align_corners=False).squeeze(1)
        out = {"coarse": coarse_full, "coarse_cost": cost}
        if self.fine is not None:
            residual = self._fine_residual(left, right, full.detach())
            out.update(fine_base=full, fine_residual=residual)  # for the loss (train.fine_loss)
            full = full + residual
        out["disparity"] = full.clamp(0.0, float(self.max_disparity))
        return out

    def _fine_residual(self, left: torch.Tensor, right: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """Step 6: the full-resolution residual [B, H, W] (px) around ``estimate`` [B, H, W]."""
        t, b = left.shape[:2]
        h, w = left.shape[-2:]
        ls, rs = event_spikes(left).flatten(0, 1), event_spikes(right).flatten(0, 1)
        r = self.fine_radius
        corr = local_coincidence(ls, rs, estimate.repeat(t, 1, 1), r, ls.shape[1])
        out = self.fine(torch.cat([corr, ls], dim=1).view(t, b, -1, h, w)).flatten(0, 1)
        logits = self.fine_head(out)
        logits = logits.view(t, b, *logits.shape[1:]).float().mean(0)
        if logits.shape[-2:] != (h, w):  # a strided stem: offset logits back to full resolution
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return expected_offset(logits, r)


def expected_offset(logits: torch.Tensor, radius: int) -> torch.Tensor:
    """The expected offset [B, H, W] of softmax(``logits``) [B, 2R+1, H, W] over the offsets
    -R..R (the refinement steps' residual)."""
    offs = torch.arange(-radius, radius + 1, device=logits.device, dtype=logits.dtype).view(1, -1, 1, 1)
    return (torch.softmax(logits, dim=1) * offs).sum(1)


def expected_candidate(cost: torch.Tensor, window: int = 0) -> torch.Tensor:
    """Soft-argmin of ``cost`` [B, D, H, W] -> [B, 1, H, W] in candidate units: the expectation
    of softmax(-cost) over all D candidates, or (``window`` k > 0) over the candidates within k
    of the most likely one, renormalised (an ambiguous, two-mode match then gives one of its
    modes, not a disparity between them).

    >>> cost = torch.tensor([0.0, 9.0, 9.0, 9.0, 0.0]).view(1, 5, 1, 1)  # candidates 0 and 4
    >>> round(float(expected_candidate(cost)), 2), round(float(expected_candidate(cost, 1)), 2)
    (2.0, 0.0)
    """
    cand = torch.arange(cost.shape[1], device=cost.device, dtype=cost.dtype).view(1, -1, 1, 1)
    prob = torch.softmax(-cost, dim=1)
    if window > 0:
        near = (cand - prob.argmax(1, keepdim=True)).abs() <= window
        prob = prob * near
        prob = prob / prob.sum(1, keepdim=True).clamp_min(1e-12)
    return (prob * cand).sum(1, keepdim=True)


def event_spikes(x: torch.Tensor) -> torch.Tensor:
    """ON and OFF spikes of an event representation: [..., C, H, W] -> [..., 2C, H, W], channel
    c is ``x_c > 0`` and channel C + c is ``x_c < 0`` (the full-resolution refinement's input,
    binary, so it costs accumulates, not multiply-accumulates)."""
    return torch.cat([x > 0, x < 0], dim=-3).to(x.dtype)


def bilinear_mask_logits(eps: float = 1e-4) -> torch.Tensor:
    """Log-weights ``[9 sub-pixels, 9 neighbours]`` with which :func:`convex_upsample` equals
    bilinear x3 upsampling (align_corners=False): sub-pixel (i, j) of a coarse pixel sits at
    offsets ((i-1)/3, (j-1)/3) from its centre; ``eps`` stands in for the zero weights."""
    one_d = torch.tensor([[1 / 3, 2 / 3, 0.0], [0.0, 1.0, 0.0], [0.0, 2 / 3, 1 / 3]])  # [sub, neighbour]
    w = torch.einsum("ia,jb->ijab", one_d, one_d).reshape(9, 9)
    return torch.log(w + eps)


def convex_upsample(x: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """``x`` [B, h, w] upsampled x3 to [B, 3h, 3w]: each output pixel a convex combination
    (softmax of ``mask_logits`` [B, 9 sub-pixels, 9 neighbours, h, w]) of the 3x3 neighbours of
    its coarse pixel (edge pixels replicated). Hand-written: neither torch nor spikingjelly has it."""
    b, h, w = x.shape
    weights = torch.softmax(mask_logits, dim=2)
    neighbours = F.unfold(F.pad(x.unsqueeze(1), (1, 1, 1, 1), mode="replicate"), 3).view(b, 1, 9, h, w)
    return F.pixel_shuffle((weights * neighbours).sum(2), 3).squeeze(1)


def forward_batch(model: nn.Module, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """The network's output on a collated batch (inputs moved to ``device``). With history
    windows (``train.stream_windows``: ``history_left``/``history_right`` [K, T, B, C, H, W]) it
    starts from rest, runs them oldest first without gradients carrying its neuron states, then
    the batch's own window from those states (a streaming SNN, truncated after K windows)."""
    left, right = batch["left"].to(device), batch["right"].to(device)
    if "history_left" not in batch:
        return model(left, right)
    reset(model)
    with carried_state():
        with torch.no_grad():
            for hl, hr in zip(batch["history_left"], batch["history_right"]):
                model(hl.to(device), hr.to(device))
        return model(left, right)


def coarse_step(coarse_scale: int) -> int:
    """Full-resolution pixels between two candidates of the pyramid's coarse volume (one coarse
    pixel: the 1/3 features max-pooled by ``coarse_scale``)."""
    return 3 * coarse_scale


def coarse_levels(max_disparity: int, coarse_scale: int) -> int:
    """Candidates of the pyramid's coarse volume: shifts 0, 1, ... coarse pixels
    (``coarse_step`` full-resolution pixels each) up to the first one >= max_disparity - 1 px."""
    step = coarse_step(coarse_scale)
    return -(-(max_disparity - 1) // step) + 1


def trellis_configs(cfg: StereoConfig, in_channels: int) -> dict[str, Any]:
    """Engine TrellisConfig of each searched component by name: ``feature`` (2D, stride-3 stem,
    spiking), ``matching`` (3D) and, for the pyramid design, ``refine`` (2D, 1/3 resolution) and,
    with ``network.fine_channels``, ``fine`` (2D, full resolution, on ON/OFF event spikes: 2C
    left channels and 2C x (2r + 1) coincidences)."""
    n = cfg.network
    try:
        neuron = NeuronConfig(**dict(n.neuron))
    except TypeError as exc:
        raise ConfigError(f"network.neuron: {exc}") from exc
    extra: dict[str, Any] = {"candidates": tuple(n.ops)} if n.ops else {}
    if n.max_skip is not None:
        extra["max_skip"] = n.max_skip
    common = dict(
        steps=n.steps,
        out_level=0,
        neuron=neuron,
        alphas=n.alphas,
        tau_candidates=tuple(n.tau_candidates),
        neuron_kinds=tuple(n.neuron_kinds),
        **extra,
    )
    feature = TrellisConfig(
        dim=2,
        in_channels=int(in_channels),
        channels=n.feature_channels,
        layers=n.feature_layers,
        levels=n.levels,
        stem_stride=3,
        hybrid=False,
        **common,
    )
    feat_out = n.steps * n.feature_channels
    if n.design == "concat":
        matching = TrellisConfig(
            dim=3,
            in_channels=2 * feat_out,
            channels=n.matching_channels,
            layers=n.matching_layers,
            levels=n.levels,
            stem_stride=1,
            hybrid=n.hybrid,
            **common,
        )
        return {"feature": feature, "matching": matching}
    if feat_out % n.groups:
        raise ConfigError(
            f"network.groups {n.groups}: must divide the feature net's {feat_out} output channels "
            f"(steps x feature_channels)"
        )
    matching = TrellisConfig(
        dim=3,
        in_channels=n.groups,
        channels=n.matching_channels,
        layers=n.matching_layers,
        levels=n.levels,
        stem_stride=1,
        hybrid=n.hybrid,
        **common,
    )
    refine = TrellisConfig(
        dim=2,
        in_channels=n.groups * (2 * n.refine_radius + 1) + feat_out,
        channels=n.refine_channels,
        layers=n.refine_layers,
        levels=n.refine_levels,
        stem_stride=1,
        hybrid=n.hybrid,
        **common,
    )
    parts = {"feature": feature, "matching": matching, "refine": refine}
    if n.fine_channels:
        parts["fine"] = TrellisConfig(
            dim=2,
            in_channels=2 * int(in_channels) * (2 * n.fine_radius + 2),
            channels=n.fine_channels,
            layers=n.fine_layers,
            levels=n.fine_levels,
            stem_stride=n.fine_stride,
            hybrid=n.hybrid,
            **common,
        )
    return parts


def _assemble(cfg: StereoConfig, parts: Mapping[str, nn.Module]) -> nn.Module:
    n = cfg.network
    if n.design == "concat":
        return StereoNet(parts["feature"], parts["matching"], cfg.max_disparity, cfg.disparity_levels)
    return PyramidStereoNet(
        parts["feature"],
        parts["matching"],
        parts["refine"],
        cfg.max_disparity,
        n.coarse_scale,
        n.groups,
        n.refine_radius,
        n.upsample,
        parts.get("fine"),
        n.fine_radius,
        n.coarse_window,
    )


def build_supernet(cfg: StereoConfig) -> nn.Module:
    """The search supernet: every candidate op, every trellis path, neuron-type/hybrid mixtures;
    saving memory as the ``search`` settings say (:class:`~stereo_snn.search.MemoryConfig`)."""
    configs = trellis_configs(cfg, cfg.input_channels)
    memory = MemoryConfig.of(cfg.search)
    return _assemble(cfg, {name: SpikingTrellis(c, memory=memory) for name, c in configs.items()})


#: TrellisConfig settings that shape only the supernet, never the fixed network: a genotype
#: searched with per-node alphas builds under a config that says shared (and the other way round),
#: one searched over more neuron kinds or lif time constants under a config that lists fewer
SUPERNET_ONLY = frozenset({"alphas", "neuron_kinds", "tau_candidates"})


def borrowed_fine(refine: ComponentGenotype, config: TrellisConfig) -> ComponentGenotype:
    """The full-resolution refinement of a genotype searched without one (the bundled one):
    the 1/3-resolution refinement's searched cells and level path under ``config`` (its own
    channels and inputs), one refinement cell type at both scales. GenotypeError when that path
    uses more levels than ``config`` has."""
    if max(refine.path) >= config.levels:
        raise GenotypeError(
            f"stereo genotype: the full-resolution refinement borrows components.refine's path "
            f"{list(refine.path)}, which needs network.fine_levels >= {max(refine.path) + 1} (it is {config.levels})"
        )
    return ComponentGenotype(config=config, path=tuple(refine.path), cells=tuple(refine.cells))


def build_network(cfg: StereoConfig, genotype: Any) -> nn.Module:
    """The fixed network of ``genotype`` (one component per searched part of ``cfg``'s design;
    a ``fine`` stage the genotype lacks borrows its ``refine`` cells, :func:`borrowed_fine`).

    Raises GenotypeError when the genotype does not fit the config (components, input channels).
    """
    want = trellis_configs(cfg, cfg.input_channels)
    comps = dict(getattr(genotype, "components", None) or {})
    if "fine" in want and "fine" not in comps and "refine" in comps:
        comps["fine"] = borrowed_fine(comps["refine"], want["fine"])
    missing = [name for name in want if name not in comps]
    if missing:
        raise GenotypeError(
            f"stereo genotype: the {cfg.network.design!r} network needs components "
            f"{', '.join(repr(k) for k in want)}; missing {', '.join(repr(k) for k in missing)}"
        )
    for name, tc in want.items():
        have = comps[name].config.in_channels
        if have != tc.in_channels:
            raise GenotypeError(
                f"stereo genotype: components.{name}.config.in_channels is {have} but the config gives "
                f"{tc.in_channels} (representation {dict(cfg.representation)}, time_steps={cfg.time_steps}, "
                f"network settings)"
            )
        differ = [
            f.name
            for f in dataclasses.fields(tc)
            if f.name not in SUPERNET_ONLY and getattr(tc, f.name) != getattr(comps[name].config, f.name)
        ]
        if differ:
            raise GenotypeError(
                f"stereo genotype: components.{name} was searched with "
                + ", ".join(f"{k}={getattr(comps[name].config, k)!r}" for k in differ)
                + " but the config gives "
                + ", ".join(f"{k}={getattr(tc, k)!r}" for k in differ)
                + " (network.* settings): use the genotype's own "
                "settings (no --config) or a config that matches them"
            )
    return _assemble(cfg, {name: SpikingTrellis.from_genotype(comps[name]) for name in want})


def load_state_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, allow_missing: bool = False
) -> list[str]:
    """Load ``state`` into ``model``; CheckpointError naming missing, unexpected and mis-shaped keys.

    ``allow_missing`` (initialising a network that has parts the checkpoint lacks, e.g. a convex
    upsampling head): missing keys keep their initial values and are returned; unexpected or
    mis-shaped keys are still refused.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if (missing and not allow_missing) or unexpected or shapes:

        def few(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append(
                "shape mismatch: " + few([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shapes])
            )
        raise CheckpointError(f"{source}: checkpoint does not fit the genotype's network; " + "; ".join(parts))
    model.load_state_dict(state, strict=not allow_missing)
    return missing


@dataclass
class LoadedModel:
    """A trained stereo network with what it was built from.

    model: the network in eval mode; config: its StereoConfig; genotype: its Genotype;
    info: extra entries of the checkpoint (``data_size`` [H, W] trained on, ``epoch``, ``best``).
    """

    model: nn.Module
    config: StereoConfig
    genotype: Any
    info: dict[str, Any]


def read_checkpoint(path: str | Path, keys: Sequence[str], what: str) -> tuple[dict[str, Any], StereoConfig]:
    """A stereo run's checkpoint (``weights_only`` load) and its StereoConfig; CheckpointError
    "not a <what>" naming the first of ``keys`` (and ``config``) it lacks."""
    state = load_checkpoint(path)
    for key in dict.fromkeys((*keys, "config")):  # in order, each once
        if key not in state:
            raise CheckpointError(f"{path}: not a {what} (no {key!r} entry)")
    return state, StereoConfig.from_dict(state["config"], f"{path}: config")


def load_model(
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    genotype_path: str | Path | None = None,
) -> LoadedModel:
    """Load a trained stereo model (the bundled DSEC model when ``checkpoint`` is None; the
    commands choose by the recording's layout, :func:`~.models.choose_checkpoint`).

    The checkpoint carries its config and genotype; ``genotype_path`` builds the network
    from another genotype file instead (CheckpointError naming keys if the weights do not fit).

    Example (a checkpoint of an untrained tiny network with a genotype derived from a fresh
    supernet, in the layout training writes):

    >>> import tempfile
    >>> from stereo_snn.runtime import save_checkpoint
    >>> from stereo_snn.search import Genotype, genotype_to_dict
    >>> from stereo_snn.stereo.config import load_config
    >>> from stereo_snn.stereo.network import build_network, build_supernet, load_model
    >>> cfg = load_config("tiny")
    >>> supernet = build_supernet(cfg)
    >>> genotype = Genotype(components={"feature": supernet.feature.derive(), "matching": supernet.matching.derive()})
    >>> tmp = tempfile.TemporaryDirectory()
    >>> state = {"model": build_network(cfg, genotype).state_dict(), "config": cfg.to_dict(),
    ...          "genotype": genotype_to_dict(genotype)}
    >>> loaded = load_model(save_checkpoint(f"{tmp.name}/model.pt", state), device="cpu")
    >>> loaded.config.max_disparity, loaded.model.training
    (12, False)
    >>> tmp.cleanup()
    """
    if checkpoint is None:
        from .models import default_checkpoint

        path = default_checkpoint()
    else:
        path = Path(checkpoint)
    state, cfg = read_checkpoint(path, ("model", "config", "genotype"), "stereo checkpoint")
    genotype = (
        load_genotype(genotype_path) if genotype_path else genotype_from_dict(state["genotype"], f"{path}: genotype")
    )
    model = build_network(cfg, genotype)
    load_state_checked(model, state["model"], str(path))
    dev = resolve_device(device)
    info = {k: state[k] for k in ("data_size", "epoch", "best", "seed") if k in state}
    return LoadedModel(model.to(dev).eval(), cfg, genotype, info)


#: settings a trained model can change without retraining: how its output is read, not its
#: weights or its inputs (:func:`reconfigure_checkpoint`)
WEIGHT_FREE_SETTINGS = ("network.coarse_window",)


def reconfigure_checkpoint(checkpoint: str | Path, overrides: Mapping[str, Any], out: str | Path) -> StereoConfig:
    """Write ``checkpoint`` with ``overrides`` (settings of :data:`WEIGHT_FREE_SETTINGS`) to
    ``out`` (atomically; an existing ``out`` or the input itself is refused) and return the new
    config. The network is rebuilt under the new settings and its weights loaded strictly, so a
    checkpoint comes out only if it still loads. ConfigError naming a setting that is not weight
    free, or when nothing is given.
    """
    if not overrides:
        raise ConfigError(f"nothing to change: give --set KEY=VALUE ({', '.join(WEIGHT_FREE_SETTINGS)})")
    bad = [key for key in overrides if key not in WEIGHT_FREE_SETTINGS]
    if bad:
        raise ConfigError(
            f"{bad[0]}: a trained model cannot change it without retraining "
            f"(settings it can change: {', '.join(WEIGHT_FREE_SETTINGS)})"
        )
    target = check_output_path(out, [checkpoint], "--out")
    if target.exists():
        raise OutputError(f"--out {target}: exists; give a new file name")
    state, cfg = read_checkpoint(checkpoint, ("model", "config", "genotype"), "stereo checkpoint")
    new = cfg.replace(**dict(overrides))
    model = build_network(new, genotype_from_dict(state["genotype"], f"{checkpoint}: genotype"))
    load_state_checked(model, state["model"], str(checkpoint))
    save_checkpoint(target, {**state, "config": new.to_dict()})
    return new


def make_dgs(model: nn.Module, cfg: StereoConfig, section: str = "train") -> SurrogateSearch:
    """The engine's DGS controller for ``model`` from the ``train`` or ``search`` settings
    (``dgs_every``, ``dgs_start``, ``dgs_batches``)."""
    s = getattr(cfg, section)
    return SurrogateSearch(model, DGSConfig(every=s.dgs_every, start=s.dgs_start, max_batches=s.dgs_batches))
