"""The Dspike surrogate gradient (SpikeDHS) on spikingjelly's surrogate base class.

Forward: Heaviside step of ``x = u - v_threshold`` (a spike when ``x >= 0``).
Backward: ``b / (2 tanh(b/2)) * (1 - tanh^2(b x))`` inside the active window ``|x| < 0.5``
(``0 < u < 1`` at threshold 0.5), zero outside. The factor normalises the window's integral
to 1, so ``b`` (the temperature, dimensionless) only changes the shape. During
differentiable surrogate-gradient search (DGS) a surrogate can hold a *mixture* of
temperatures: the backward is ``sum_k softmax(logits)_k * dspike_{b_k}(x)``; the backward is
written with differentiable torch operations, so a second backward (``create_graph=True``)
gives the gradient with respect to the mixing logits.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import surrogate

__all__ = ["Dspike", "dspike_grad", "DSPIKE_HALF_WINDOW"]

DSPIKE_HALF_WINDOW = 0.5  # |u - threshold| below which the surrogate gradient is non-zero


def dspike_grad(x: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """The Dspike derivative d spike / d u at ``x = u - threshold`` for temperature ``b``."""
    b = torch.as_tensor(b, dtype=x.dtype, device=x.device)
    scale = b / (2.0 * torch.tanh(b * DSPIKE_HALF_WINDOW))
    inside = (x.abs() < DSPIKE_HALF_WINDOW).to(x.dtype)
    return scale * (1.0 - torch.tanh(b * x) ** 2) * inside


class _DspikeFunction(torch.autograd.Function):
    """Heaviside forward; backward mixes Dspike derivatives of temperatures ``bs`` by ``weights``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bs, weights)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, bs, weights = ctx.saved_tensors
        parts = [dspike_grad(x, bs[k]) for k in range(bs.shape[0])]
        sg = parts[0] * weights[0]
        for k in range(1, len(parts)):
            sg = sg + parts[k] * weights[k]
        grad_x = grad_out * sg
        grad_w = None
        if ctx.needs_input_grad[2]:
            grad_w = torch.stack([(grad_out * p).sum() for p in parts])
        return grad_x, None, grad_w


class Dspike(surrogate.SurrogateFunctionBase):
    """Dspike surrogate with temperature ``b`` (a float buffer, saved in state dicts).

    Each spiking neuron owns its own instance so that ``b`` can be searched per layer.
    """

    def __init__(self, b: float = 3.0, spiking: bool = True):
        super().__init__(spiking=spiking)
        if not b > 0:
            raise ValueError(f"Dspike temperature b must be > 0, got {b}")
        self.register_buffer("b", torch.tensor(float(b)))
        self._mix_bs: torch.Tensor | None = None
        self._mix_logits: torch.Tensor | None = None

    # -- DGS mixtures -------------------------------------------------------------------
    def set_mixture(self, bs: torch.Tensor, logits: torch.Tensor) -> None:
        """Use ``sum_k softmax(logits)_k * dspike_{bs_k}`` in the backward (forward unchanged)."""
        if bs.shape != logits.shape or bs.dim() != 1:
            raise ValueError("Dspike.set_mixture: bs and logits must be 1-D tensors of equal length")
        self._mix_bs = bs
        self._mix_logits = logits

    def clear_mixture(self) -> None:
        """Back to the single temperature ``b``."""
        self._mix_bs = None
        self._mix_logits = None

    @property
    def in_mixture(self) -> bool:
        """True while a DGS mixture of temperatures is set."""
        return self._mix_bs is not None

    def set_b(self, b: float) -> None:
        """Set the temperature (keeps device and dtype of the buffer)."""
        self.b.fill_(float(b))

    def extra_repr(self) -> str:
        return f"b={float(self.b):.3f}, spiking={self.spiking}"

    # -- forward ------------------------------------------------------------------------
    @staticmethod
    def primitive_function(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Smooth stand-in used when ``spiking=False``: the integral of the surrogate."""
        bb = torch.as_tensor(b, dtype=x.dtype, device=x.device)
        scaled = torch.tanh(bb * x.clamp(-DSPIKE_HALF_WINDOW, DSPIKE_HALF_WINDOW))
        return 0.5 + 0.5 * scaled / torch.tanh(bb * DSPIKE_HALF_WINDOW)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spiking:
            return self.primitive_function(x, self.b)
        if self._mix_bs is not None:
            bs = self._mix_bs.to(device=x.device, dtype=x.dtype)
            weights = torch.softmax(self._mix_logits, dim=0).to(x.dtype)
        else:
            bs = self.b.to(x.dtype).reshape(1)
            weights = torch.ones(1, dtype=x.dtype, device=x.device)
        return _DspikeFunction.apply(x, bs, weights)
