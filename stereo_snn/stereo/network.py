"""The stereo network: spiking feature net -> cost volume -> matching net -> soft-argmin.

Shapes (multi-step): input representations ``[T, B, C, H, W]`` per view; features
``[T, B, F, H/3, W/3]``; cost volume ``[T, B, 2F, D/3, H/3, W/3]``; the matching net's
cost ``[B, D/3, H/3, W/3]`` (averaged over T) is upsampled trilinearly to
``[B, D, H, W]``; a softmin over the D disparity candidates gives probabilities and the
disparity is their expectation (soft-argmin), in full-resolution pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, GenotypeError
from .config import StereoConfig

__all__ = [
    "concat_cost_volume", "soft_argmin", "StereoNet", "trellis_configs", "build_supernet",
    "build_network", "load_state_checked", "LoadedModel", "read_checkpoint", "load_model", "make_dgs",
    "BUNDLED_MODEL",
]


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
    Returns ``disparity`` [B, H, W] (pixels) and ``log_prob`` [B, max_disparity, H, W].
    """
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


class StereoNet(nn.Module):
    """Feature trellis (2D, spiking, shared by both views) -> concatenation cost volume ->
    matching trellis (3D, spiking or ANN per cell) -> per-step 3D conv head -> soft-argmin.

    forward(left, right): representations [T, B, C, H, W] (real-valued) of both views ->
    ``{"disparity": [B, H, W] pixels, "log_prob": [B, max_disparity, H, W]}``.
    The neuron states are reset at the start of every forward (one batch = one sequence).
    """

    def __init__(self, feature: nn.Module, matching: nn.Module, max_disparity: int, levels: int):
        super().__init__()
        self.feature = feature
        self.matching = matching
        self.max_disparity = int(max_disparity)
        self.levels = int(levels)
        self.head = nn.Conv3d(matching.out_channels, 1, kernel_size=3, padding=1)

    def components(self) -> dict[str, nn.Module]:
        """The searched parts by genotype component name (``feature``, ``matching``)."""
        return {"feature": self.feature, "matching": self.matching}

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
        from ..spiking import reset

        if left.shape != right.shape:
            from ..errors import DatasetError

            raise DatasetError(f"left input {tuple(left.shape)} and right input {tuple(right.shape)} differ in size")
        if left.dim() != 5:
            raise ValueError(f"expected inputs [T, B, C, H, W], got {tuple(left.shape)}")
        reset(self)
        t, b = left.shape[:2]
        feats = self.feature(torch.cat([left, right], dim=1))
        volume = concat_cost_volume(feats[:, :b], feats[:, b:], self.levels)
        match = self.matching(volume)
        cost = self.head(match.flatten(0, 1))
        cost = cost.view(t, b, *cost.shape[2:]).mean(0).squeeze(1)
        return soft_argmin(cost, self.max_disparity, (left.shape[-2], left.shape[-1]))


def trellis_configs(cfg: StereoConfig, in_channels: int) -> tuple[Any, Any]:
    """Engine TrellisConfig of the feature (2D, stride-3 stem, spiking) and matching (3D) nets."""
    from ..search import TrellisConfig
    from ..spiking import NeuronConfig

    n = cfg.network
    try:
        neuron = NeuronConfig(**dict(n.neuron))
    except TypeError as exc:
        raise ConfigError(f"network.neuron: {exc}") from exc
    extra: dict[str, Any] = {"candidates": tuple(n.ops)} if n.ops else {}
    if n.max_skip is not None:
        extra["max_skip"] = n.max_skip
    feature = TrellisConfig(dim=2, in_channels=int(in_channels), channels=n.feature_channels,
                            layers=n.feature_layers, steps=n.steps, levels=n.levels, out_level=0,
                            stem_stride=3, hybrid=False, neuron=neuron, **extra)
    feat_out = n.steps * n.feature_channels
    matching = TrellisConfig(dim=3, in_channels=2 * feat_out, channels=n.matching_channels,
                             layers=n.matching_layers, steps=n.steps, levels=n.levels, out_level=0,
                             stem_stride=1, hybrid=n.hybrid, neuron=neuron, **extra)
    return feature, matching


def input_channels(cfg: StereoConfig) -> int:
    """Channels per time step of the representation (representation channels / T)."""
    from .data import Representer

    return Representer(cfg).channels


def build_supernet(cfg: StereoConfig) -> StereoNet:
    """The search supernet: every candidate op, every trellis path, neuron-type/hybrid mixtures."""
    from ..search import SpikingTrellis

    fcfg, mcfg = trellis_configs(cfg, input_channels(cfg))
    return StereoNet(SpikingTrellis(fcfg), SpikingTrellis(mcfg), cfg.max_disparity, cfg.disparity_levels)


def build_network(cfg: StereoConfig, genotype: Any) -> StereoNet:
    """The fixed network of ``genotype`` (components "feature" and "matching").

    Raises GenotypeError when the genotype does not fit the config (input channels).
    """
    from ..search import SpikingTrellis

    comps = getattr(genotype, "components", None)
    if not comps or "feature" not in comps or "matching" not in comps:
        raise GenotypeError("stereo genotype: needs components 'feature' and 'matching'")
    want = input_channels(cfg)
    have = comps["feature"].config.in_channels
    if have != want:
        raise GenotypeError(
            f"stereo genotype: components.feature.config.in_channels is {have} but the representation "
            f"{dict(cfg.representation)} with time_steps={cfg.time_steps} gives {want} channels per step")
    feature = SpikingTrellis.from_genotype(comps["feature"])
    matching = SpikingTrellis.from_genotype(comps["matching"])
    if comps["matching"].config.in_channels != 2 * feature.out_channels:
        raise GenotypeError(
            f"stereo genotype: components.matching.config.in_channels is {comps['matching'].config.in_channels}, "
            f"but the cost volume of the feature net has {2 * feature.out_channels} channels")
    return StereoNet(feature, matching, cfg.max_disparity, cfg.disparity_levels)


def load_state_checked(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; CheckpointError naming missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append("shape mismatch: " + few([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shapes]))
        raise CheckpointError(f"{source}: checkpoint does not fit the genotype's network; " + "; ".join(parts))
    model.load_state_dict(state)


BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "data" / "model" / "model.pt"


@dataclass
class LoadedModel:
    """A trained stereo network with what it was built from.

    model: the network in eval mode; config: its StereoConfig; genotype: its Genotype;
    info: extra entries of the checkpoint (``data_size`` [H, W] trained on, ``epoch``, ``best``).
    """

    model: StereoNet
    config: StereoConfig
    genotype: Any
    info: dict[str, Any]


def read_checkpoint(path: str | Path, keys: Sequence[str], what: str) -> tuple[dict[str, Any], StereoConfig]:
    """A stereo run's checkpoint (``weights_only`` load) and its StereoConfig; CheckpointError
    "not a <what>" naming the first of ``keys`` it lacks."""
    from ..runtime import load_checkpoint

    state = load_checkpoint(path)
    for key in keys:
        if key not in state:
            raise CheckpointError(f"{path}: not a {what} (no {key!r} entry)")
    return state, StereoConfig.from_dict(state["config"], f"{path}: config")


def load_model(checkpoint: str | Path | None = None, device: str | torch.device | None = None,
               genotype_path: str | Path | None = None) -> LoadedModel:
    """Load a trained stereo model (the bundled one when ``checkpoint`` is None).

    The checkpoint carries its config and genotype; ``genotype_path`` builds the network
    from another genotype file instead (CheckpointError naming keys if the weights do not fit).
    """
    from ..runtime import resolve_device
    from ..search import genotype_from_dict, load_genotype

    path = Path(checkpoint) if checkpoint is not None else BUNDLED_MODEL
    if checkpoint is None and not path.is_file():
        raise CheckpointError(f"{path}: the bundled model is missing from this installation")
    state, cfg = read_checkpoint(path, ("model", "config", "genotype"), "stereo checkpoint")
    genotype = load_genotype(genotype_path) if genotype_path else genotype_from_dict(state["genotype"], f"{path}: genotype")
    model = build_network(cfg, genotype)
    load_state_checked(model, state["model"], str(path))
    dev = resolve_device(device)
    info = {k: state[k] for k in ("data_size", "epoch", "best", "seed") if k in state}
    return LoadedModel(model.to(dev).eval(), cfg, genotype, info)


def make_dgs(model: nn.Module, cfg: StereoConfig, every: int | None = None, max_batches: int | None = None) -> Any:
    """The engine's DGS controller for ``model`` (rounds every ``train.dgs_every`` epochs)."""
    from ..search import DGSConfig, SurrogateSearch

    return SurrogateSearch(model, DGSConfig(every=every or cfg.train.dgs_every,
                                            max_batches=max_batches or cfg.train.dgs_batches))
