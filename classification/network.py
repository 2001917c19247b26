"""The spiking image classifier on the engine's trellis.

``SpikingClassifier`` = the engine's :class:`~stereo_snn.search.SpikingTrellis` (its stem
takes the real-valued image: conv + BN + neuron; then searched cells over a {down, same}
layer trellis ending at the deepest level) + global average pooling + a linear readout,
applied at every time step and averaged over the ``T`` steps. The image is repeated over
``T`` steps (direct encoding). An optional auxiliary head reads the output of one cell
during training. The class count always comes from the dataset.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from stereo_snn.errors import ConfigError, GenotypeError
from stereo_snn.search import ComponentGenotype, Genotype, MemoryConfig, SpikingTrellis, TrellisConfig
from stereo_snn.spiking import NeuronConfig

if TYPE_CHECKING:
    from .config import ModelConfig

__all__ = [
    "COMPONENT",
    "SpikingClassifier",
    "AuxiliaryHead",
    "trellis_config",
    "build_supernet",
    "build_from_genotype",
    "model_meta",
    "build_from_meta",
]

COMPONENT = "backbone"  # the genotype component a classifier is built from


class AuxiliaryHead(nn.Module):
    """Real-valued auxiliary classifier on a multi-step feature map [T, B, C, H, W].

    Average-pools to 2x2 pixels, 1x1 conv to 128 channels + BN + ReLU, linear readout per
    time step, averaged over T. Used for its loss during training only.
    """

    def __init__(self, channels: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        self.readout = nn.Linear(hidden * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, H, W] -> logits [B, num_classes]."""
        t, b = x.shape[:2]
        return self.readout(self.features(x.flatten(0, 1))).unflatten(0, (t, b)).mean(0)


class SpikingClassifier(nn.Module):
    """Trellis backbone + global average pooling + linear readout averaged over time steps.

    ``forward(x)`` takes images [B, C, H, W] (repeated over ``time_steps``) or an already
    multi-step input [T, B, C, H, W], and returns logits [B, num_classes]; with
    ``with_aux=True`` it returns ``(logits, aux_logits)`` (``aux_logits`` is None without an
    auxiliary head). ``auxiliary_layer`` is the 1-based cell whose output feeds the head.
    """

    def __init__(self, backbone: SpikingTrellis, num_classes: int, time_steps: int, auxiliary_layer: int | None = None):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"classifier: needs at least 2 classes, the dataset has {num_classes}")
        if time_steps < 1:
            raise ConfigError(f"model.time_steps {time_steps!r}: must be >= 1")
        self.backbone = backbone
        self.num_classes, self.time_steps = num_classes, time_steps
        self.classifier = nn.Linear(backbone.out_channels, num_classes)
        self.auxiliary_layer = auxiliary_layer
        self.auxiliary: AuxiliaryHead | None = None
        self._captured: torch.Tensor | None = None
        if auxiliary_layer is not None:
            if backbone.is_supernet:
                raise ConfigError(
                    "model.auxiliary_layer: the auxiliary head is for retraining a fixed network, not the supernet"
                )
            layers = backbone.config.layers
            if not 1 <= auxiliary_layer <= layers:
                raise ConfigError(
                    f"model.auxiliary_layer {auxiliary_layer}: must be between 1 and the {layers} layers (or null)"
                )
            cell = backbone.cells[str(auxiliary_layer - 1)]
            level = backbone.path[auxiliary_layer - 1]
            self.auxiliary = AuxiliaryHead(backbone.config.steps * backbone.config.level_channels(level), num_classes)
            cell.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self._capturing:
            self._captured = output[0].x

    _capturing = False

    def forward(
        self, x: torch.Tensor, with_aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if x.dim() == 4:
            x = x.unsqueeze(0).expand(self.time_steps, *x.shape)
        elif x.dim() != 5:
            raise ConfigError(f"classifier input shape {tuple(x.shape)}: expected [B, C, H, W] or [T, B, C, H, W]")
        self._capturing = with_aux and self.auxiliary is not None
        self._captured = None
        try:
            feats = self.backbone(x)
        finally:
            self._capturing = False
        logits = self.classifier(feats.mean(dim=(-2, -1))).mean(0)
        if not with_aux:
            return logits
        aux = self.auxiliary(self._captured) if self.auxiliary is not None and self._captured is not None else None
        self._captured = None
        return logits, aux


def trellis_config(model: "ModelConfig", in_channels: int, energy_term: bool = False) -> TrellisConfig:
    """The supernet's :class:`TrellisConfig` from the ``model`` settings: 2D, moves {down, same},
    the path ends at the deepest level (``levels - 1``). ``energy_term``: whether the search
    has one (decides ``hybrid: auto``, :meth:`ModelConfig.hybrid_search`)."""
    try:
        neuron = NeuronConfig(kind="lif", tau=model.tau, v_threshold=model.v_threshold, b=model.surrogate_b)
        return TrellisConfig(
            dim=2,
            in_channels=in_channels,
            channels=model.channels,
            layers=model.layers,
            steps=model.steps,
            levels=model.levels,
            moves=("down", "same"),
            out_level=model.levels - 1,
            stem_stride=model.stem_stride,
            candidates=tuple(model.candidates),
            neuron_kinds=tuple(model.neuron_kinds),
            hybrid=model.hybrid_search(energy_term),
            neuron=neuron,
            alphas=model.alphas,
            tau_candidates=tuple(model.tau_candidates),
        )
    except ConfigError as exc:
        raise ConfigError(f"model settings: {exc}") from exc


def build_supernet(
    model: "ModelConfig",
    num_classes: int,
    in_channels: int,
    energy_term: bool = False,
    memory: MemoryConfig | None = None,
) -> SpikingClassifier:
    """The searchable classifier (supernet backbone, no auxiliary head); ``energy_term`` as in
    :func:`trellis_config`; ``memory``: how it saves memory (default: the plain supernet)."""
    backbone = SpikingTrellis(trellis_config(model, in_channels, energy_term), memory=memory)
    return SpikingClassifier(backbone, num_classes, model.time_steps)


def _component(genotype: Genotype, source: str) -> ComponentGenotype:
    comp = genotype.components.get(COMPONENT)
    if comp is None:
        raise GenotypeError(f"{source}: no '{COMPONENT}' component (found: {', '.join(genotype.components) or 'none'})")
    return comp


def build_from_genotype(
    genotype: Genotype,
    model: "ModelConfig | Mapping[str, Any]",
    num_classes: int,
    in_channels: int,
    source: str = "genotype",
) -> SpikingClassifier:
    """The fixed classifier of ``genotype``'s backbone.

    The genotype fixes the cells, path and neurons; ``channels`` (if set) re-scales the
    network (retraining usually widens the searched one), ``time_steps`` and
    ``auxiliary_layer`` come from ``model``: the ``model`` settings or a checkpoint's
    :func:`model_meta`.
    """
    if not isinstance(model, Mapping):
        model = dataclasses.asdict(model)
    comp = _component(genotype, source)
    cfg = comp.config
    if cfg.dim != 2:
        raise GenotypeError(f"{source}: components.{COMPONENT}.config.dim is {cfg.dim}, an image classifier needs 2")
    if cfg.in_channels != in_channels:
        raise GenotypeError(
            f"{source}: components.{COMPONENT}.config.in_channels is {cfg.in_channels}, the dataset has {in_channels}-channel images"
        )
    if model.get("layers") is not None and int(model["layers"]) != cfg.layers:
        raise ConfigError(
            f"model.layers {model['layers']}: the genotype {source} has {cfg.layers} layers (set model.layers={cfg.layers})"
        )
    channels = model.get("channels")
    if channels is not None and int(channels) != cfg.channels:
        if any(isinstance(c.tau, tuple) for c in comp.cells):
            raise GenotypeError(
                f"{source}: per-channel time constants cannot be re-scaled to model.channels={channels}"
            )
        comp = dataclasses.replace(comp, config=dataclasses.replace(cfg, channels=int(channels)))
    return SpikingClassifier(
        SpikingTrellis.from_genotype(comp), num_classes, int(model["time_steps"]), model.get("auxiliary_layer")
    )


def model_meta(model: SpikingClassifier) -> dict[str, Any]:
    """What a checkpoint needs to rebuild ``model`` (with the genotype): classes, T, head."""
    return {
        "num_classes": model.num_classes,
        "time_steps": model.time_steps,
        "auxiliary_layer": model.auxiliary_layer,
        "in_channels": model.backbone.config.in_channels,
        "channels": model.backbone.config.channels,
        "layers": model.backbone.config.layers,
    }


def build_from_meta(genotype: Genotype, meta: Mapping[str, Any], source: str = "checkpoint") -> SpikingClassifier:
    """Rebuild a trained classifier from its genotype and :func:`model_meta`."""
    try:
        return build_from_genotype(genotype, meta, int(meta["num_classes"]), int(meta["in_channels"]), source)
    except KeyError as exc:
        raise GenotypeError(f"{source}: model description lacks {exc.args[0]!r}") from exc
