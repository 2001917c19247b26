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

__all__ = ["Dspike", "dspike_grad", "DSPIKE_HALF_WINDOW", "GroupedDspike"]

DSPIKE_HALF_WINDOW = 0.5  # |u - threshold| below which the surrogate gradient is non-zero


def dspike_grad(x: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """The Dspike derivative d spike / d u at ``x = u - threshold`` for temperature ``b``."""
    b = torch.as_tensor(b, dtype=x.dtype, device=x.device)
    scale = b / (2.0 * torch.tanh(b * DSPIKE_HALF_WINDOW))
    inside = (x.abs() < DSPIKE_HALF_WINDOW).to(x.dtype)
    return scale * (1.0 - torch.tanh(b * x) ** 2) * inside


class _GroupedDspikeFunction(torch.autograd.Function):
    """Heaviside forward on ``G`` equal slices of dim 0; slice ``g``'s backward mixes the Dspike
    derivatives of temperatures ``bs[g]`` by ``weights[g]`` (``[G, K]`` each). One Dspike is the
    case ``G = 1``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bs, weights)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, bs, weights = ctx.saved_tensors
        groups, k_count = bs.shape
        xg = x.reshape(groups, -1)
        gg = grad_out.reshape(groups, -1)
        grad_w = None
        if k_count == 1:
            part = dspike_grad(xg, bs)
            grad_x = (gg * (part * weights)).reshape(x.shape)
            if ctx.needs_input_grad[2]:
                grad_w = (gg * part).sum(dim=1, keepdim=True)
            return grad_x, None, grad_w
        # a DGS mixture: all K temperatures in one broadcast [G, K, N] evaluation
        parts = dspike_grad(xg.unsqueeze(1), bs.unsqueeze(2))
        sg = (parts * weights.unsqueeze(2)).sum(dim=1)
        grad_x = (gg * sg).reshape(x.shape)
        if ctx.needs_input_grad[2]:
            grad_w = (gg.unsqueeze(1) * parts).sum(dim=2)
        return grad_x, None, grad_w


class GroupedDspike:
    """One surrogate call for ``G`` Dspike modules whose inputs are stacked in equal slices of dim 0.

    Slice ``g`` of the input (dim 0 split into ``len(surrogates)`` equal parts) gets the forward
    and backward of ``surrogates[g]`` (its ``b``, or its DGS mixture), so one multi-step neuron
    run on the stacked input equals ``G`` runs of neurons with those surrogates. Built once per
    run: it snapshots the temperatures and mixtures. ``supported(surrogates)`` tells whether
    the group can be stacked (all spiking Dspikes, all mixtures or none, same mixture length).
    """

    def __init__(self, surrogates: list["Dspike"], dtype: torch.dtype, device: torch.device):
        if not self.supported(surrogates):
            raise ValueError("GroupedDspike: the surrogates cannot be stacked (see GroupedDspike.supported)")
        if surrogates[0].in_mixture:
            self.bs = torch.stack([sg._mix_bs.to(device=device, dtype=dtype) for sg in surrogates])
            self.weights = torch.stack([torch.softmax(sg._mix_logits, dim=0).to(dtype) for sg in surrogates])
        else:
            self.bs = torch.stack([sg.b.to(device=device, dtype=dtype) for sg in surrogates]).reshape(-1, 1)
            self.weights = torch.ones(len(surrogates), 1, dtype=dtype, device=device)

    @staticmethod
    def supported(surrogates: list) -> bool:
        """True when every surrogate is a spiking :class:`Dspike` and their mixtures have one length."""
        if not surrogates or not all(isinstance(sg, Dspike) and sg.spiking for sg in surrogates):
            return False
        lengths = {None if sg._mix_bs is None else int(sg._mix_bs.numel()) for sg in surrogates}
        return len(lengths) == 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _GroupedDspikeFunction.apply(x, self.bs, self.weights)


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
        return _GroupedDspikeFunction.apply(x, bs.reshape(1, -1), weights.reshape(1, -1))
