"""Candidate operations of the search space: spikes (or real values) in, synaptic current out.

An op is conv + BN with no neuron inside; a node sums the currents of its ops into one
membrane. Every op exists in 2D (``[T, B, C, H, W]``) and 3D (``[T, B, C, D, H, W]``); the
time dimension is merged into the batch for the convolution (spikingjelly's
``SeqToANNContainer``). Each conv remembers the multiply-accumulate count of its last call
(per sample and time step), computed from the real shapes, for the energy terms.

``OPS`` maps op names to :class:`OpSpec`; ``b`` is the surrogate temperature of the op's
share of the node neuron's backward (``None``: the node's own temperature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from spikingjelly.activation_based import layer
from torch import nn

from ..errors import ConfigError

__all__ = [
    "OpSpec",
    "OPS",
    "DEFAULT_CANDIDATES",
    "ALL_CANDIDATES",
    "SeqConvBN",
    "Identity",
    "make_op",
    "check_candidates",
    "check_dim",
    "conv_macs",
    "conv_out_size",
]


def check_dim(dim: int) -> None:
    """Raise ConfigError unless ``dim`` is 2 or 3."""
    if dim not in (2, 3):
        raise ConfigError(f"dim {dim!r}: must be 2 ([T,B,C,H,W]) or 3 ([T,B,C,D,H,W])")


class SeqConvBN(nn.Module):
    """Multi-step conv + BatchNorm (2D or 3D); records MACs per sample and time step of its last call."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        dim: int,
        kernel: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bn: bool = True,
    ):
        super().__init__()
        check_dim(dim)
        conv_cls = nn.Conv2d if dim == 2 else nn.Conv3d
        bn_cls = nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d
        pad = dilation * (kernel - 1) // 2 if padding is None else padding
        conv = conv_cls(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=not bn)
        mods: list[nn.Module] = [conv] + ([bn_cls(c_out)] if bn else [])
        self.seq = layer.SeqToANNContainer(*mods)
        self.dim = dim
        self.last_macs: float = 0.0

    @property
    def conv(self) -> nn.Module:
        """The convolution (registered once, inside ``seq``)."""
        return self.seq[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.seq(x)
        self.last_macs = self.macs(y.shape[3:])
        return y

    def macs(self, out_size: Sequence[int]) -> float:
        """Multiply-accumulates per sample and time step for an output of spatial size ``out_size``."""
        return conv_macs(self.conv, out_size)


def conv_macs(conv: nn.Module, out_size: Sequence[int]) -> float:
    """Multiply-accumulates of convolution ``conv`` per sample (and time step) for an output of
    spatial size ``out_size``: every output element takes ``in_channels / groups * prod(kernel)``."""
    k = conv.weight.shape
    return float(k[0] * k[1] * math.prod(k[2:]) * math.prod(out_size))


def conv_out_size(conv: nn.Module, in_size: Sequence[int]) -> tuple[int, ...]:
    """Spatial output size of convolution ``conv`` (``nn.Conv2d``/``nn.Conv3d``) for an input of
    spatial size ``in_size``."""
    if conv.padding == "same":
        return tuple(in_size)
    pad = (0,) * len(in_size) if conv.padding == "valid" else conv.padding
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(in_size, pad, conv.dilation, conv.kernel_size, conv.stride)
    )


class Identity(nn.Module):
    """skip_connect: the input spikes are the current (0 MACs)."""

    last_macs: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def macs(self, out_size: Sequence[int]) -> float:
        """No multiply-accumulates."""
        return 0.0


@dataclass(frozen=True)
class OpSpec:
    """One candidate: ``build(channels, dim)`` -> module (C -> C, same size); ``b`` surrogate group."""

    name: str
    build: Callable[[int, int], nn.Module]
    b: float | None = None


OPS: dict[str, OpSpec] = {
    "skip_connect": OpSpec("skip_connect", lambda c, d: Identity()),
    "conv_3x3_b3": OpSpec("conv_3x3_b3", lambda c, d: SeqConvBN(c, c, d, 3), b=3.0),
    "conv_3x3_b5": OpSpec("conv_3x3_b5", lambda c, d: SeqConvBN(c, c, d, 3), b=5.0),
    "conv_5x5": OpSpec("conv_5x5", lambda c, d: SeqConvBN(c, c, d, 5)),
    "dil_conv_3x3": OpSpec("dil_conv_3x3", lambda c, d: SeqConvBN(c, c, d, 3, dilation=2)),
}

DEFAULT_CANDIDATES: tuple[str, ...] = ("skip_connect", "conv_3x3_b3", "conv_3x3_b5")
ALL_CANDIDATES: tuple[str, ...] = tuple(OPS)


def check_candidates(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a candidate list (known names, no repeats, at least one)."""
    names = tuple(names)
    if not names:
        raise ConfigError("candidates: at least one op is needed")
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ConfigError(f"candidates: unknown op(s) {unknown}; known: {', '.join(OPS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"candidates: repeated op names in {list(names)}")
    return names


def make_op(name: str, channels: int, dim: int) -> nn.Module:
    """Build op ``name`` for ``channels`` channels in ``dim`` dimensions."""
    check_candidates((name,))
    check_dim(dim)
    return OPS[name].build(channels, dim)
