"""Spiking neurons (multi-step, input ``[T, B, C, ...]``) built on spikingjelly.

``make_neuron(NeuronConfig(...), channels)`` builds any neuron the engine uses:

* ``lif``  spikingjelly ``LIFNode`` with a fixed time constant. With the defaults
  (``tau=1.25``, ``decay_input=False``, ``v_reset=0``, ``v_threshold=0.5``) it is the SpikeDHS
  neuron ``u <- 0.2 u_prev (1 - o_prev) + I; o = H(u - 0.5)`` (``1 - 1/1.25 = 0.2``).
* ``plif`` spikingjelly ``ParametricLIFNode``: one learnable time constant per layer.
* ``clif`` :class:`ChannelLIFNode`: one learnable time constant per channel.
* ``ann``  :class:`AnnActivation`: ReLU, no state, for the real-valued layers of hybrid nets.

Every spiking neuron gets its own :class:`~stereo_snn.spiking.surrogate.Dspike` instance.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import torch
from spikingjelly.activation_based import base, functional, monitor, neuron
from torch import nn

from ..errors import ConfigError
from .surrogate import Dspike, GroupedDspike

__all__ = [
    "NeuronConfig",
    "NEURON_KINDS",
    "SPIKING_KINDS",
    "make_neuron",
    "ChannelLIFNode",
    "AnnActivation",
    "SPIKING_TYPES",
    "is_spiking",
    "neuron_tau",
    "reset",
    "spiking_modules",
    "firing_rates",
    "grouped_multi_step",
]

NEURON_KINDS = ("lif", "plif", "clif", "ann")
SPIKING_KINDS = ("lif", "plif", "clif")


@dataclass(frozen=True)
class NeuronConfig:
    """Settings of one neuron layer.

    kind: ``lif`` | ``plif`` | ``clif`` | ``ann``; tau: membrane time constant in time steps
    (> 1; the decay per step is ``1 - 1/tau``); v_threshold: firing threshold (membrane units);
    b: Dspike temperature; decay_input: whether the input is divided by tau (SpikeDHS: no);
    detach_reset: cut the gradient through the reset.
    """

    kind: str = "lif"
    tau: float = 1.25
    v_threshold: float = 0.5
    b: float = 3.0
    decay_input: bool = False
    detach_reset: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NEURON_KINDS:
            raise ConfigError(f"neuron kind {self.kind!r}: must be one of {', '.join(NEURON_KINDS)}")
        if not (isinstance(self.tau, (int, float)) and self.tau > 1.0):
            raise ConfigError(f"neuron tau {self.tau!r}: must be a number > 1 (time steps)")
        if not self.v_threshold > 0:
            raise ConfigError(f"neuron v_threshold {self.v_threshold!r}: must be > 0")
        if not self.b > 0:
            raise ConfigError(f"neuron surrogate temperature b {self.b!r}: must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return asdict(self)


class ChannelLIFNode(neuron.BaseNode):
    """LIF neuron with one learnable time constant per channel (dim 1 of each step's input).

    ``1/tau_c = sigmoid(w_c)`` as in spikingjelly's ParametricLIFNode, but ``w`` has shape
    ``[channels]``. Hard reset to ``v_reset`` (or soft reset when ``v_reset is None``).
    """

    def __init__(
        self,
        channels: int,
        init_tau: float = 2.0,
        decay_input: bool = False,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: nn.Module | None = None,
        detach_reset: bool = False,
        step_mode: str = "m",
    ):
        if channels < 1:
            raise ConfigError(f"clif neuron: channels must be >= 1, got {channels}")
        if not init_tau > 1.0:
            raise ConfigError(f"clif neuron: init_tau must be > 1, got {init_tau}")
        super().__init__(v_threshold, v_reset, surrogate_function or Dspike(), detach_reset, step_mode=step_mode)
        self.decay_input = decay_input
        self.w = nn.Parameter(torch.full((channels,), -math.log(init_tau - 1.0)))

    @property
    def tau(self) -> torch.Tensor:
        """Per-channel time constants (time steps), detached."""
        return (1.0 / torch.sigmoid(self.w)).detach()

    def single_step_functional_forward(self, inputs, states, **kwargs):
        """One time step: charge with per-channel decay, fire through the surrogate, reset."""
        spike, v_new = self.step_with(inputs[0], states[0], self.surrogate_function)
        return (spike,), (v_new, *states[1:])

    def step_with(self, x: torch.Tensor, v: torch.Tensor, surrogate_function) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step with an explicit surrogate callable; returns ``(spike, new membrane)``."""
        inv_tau = torch.sigmoid(self.w).view(1, -1, *([1] * (x.dim() - 2)))
        v_rest = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            h = v + (x - (v - v_rest)) * inv_tau
        else:
            h = v - (v - v_rest) * inv_tau + x
        spike = surrogate_function(h - self.v_threshold)
        s = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            v_new = self.apply_soft_reset(h, s, self.v_threshold)
        else:
            v_new = self.apply_hard_reset(h, s, self.v_reset)
        return spike, v_new

    def extra_repr(self) -> str:
        return super().extra_repr() + f", channels={self.w.numel()}"


class AnnActivation(nn.Module, base.MultiStepModule):
    """Non-spiking activation (ReLU) with the neurons' multi-step interface, no state."""

    def __init__(self) -> None:
        super().__init__()
        self.step_mode = "m"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


SPIKING_TYPES: tuple[type, ...] = (neuron.BaseNode,)


def is_spiking(module: nn.Module) -> bool:
    """True for spikingjelly spiking neurons (LIF, PLIF, ChannelLIF ...)."""
    return isinstance(module, SPIKING_TYPES)


def make_neuron(cfg: NeuronConfig, channels: int | None = None) -> nn.Module:
    """Build the neuron ``cfg`` describes, multi-step mode (``[T, B, C, ...]`` in and out).

    ``channels`` is required for ``clif`` (one time constant per channel).
    """
    if cfg.kind == "ann":
        return AnnActivation()
    sg = Dspike(cfg.b)
    common = dict(
        decay_input=cfg.decay_input,
        v_threshold=cfg.v_threshold,
        v_reset=0.0,
        surrogate_function=sg,
        detach_reset=cfg.detach_reset,
        step_mode="m",
    )
    if cfg.kind == "lif":
        return neuron.LIFNode(tau=float(cfg.tau), **common)
    if cfg.kind == "plif":
        return neuron.ParametricLIFNode(init_tau=float(cfg.tau), **common)
    if channels is None:
        raise ConfigError("neuron kind 'clif': needs the channel count (one time constant per channel)")
    return ChannelLIFNode(channels, init_tau=float(cfg.tau), **common)


def neuron_tau(module: nn.Module) -> float | list[float] | None:
    """Current time constant(s) of a neuron in time steps (None for non-spiking modules)."""
    if isinstance(module, ChannelLIFNode):
        return [float(t) for t in module.tau]
    if isinstance(module, neuron.ParametricLIFNode):
        return float(1.0 / torch.sigmoid(module.w.detach()))
    if isinstance(module, neuron.LIFNode):
        return float(module.tau)
    return None


_CARRY: contextvars.ContextVar[bool] = contextvars.ContextVar("carry_state", default=False)


@contextlib.contextmanager
def carried_state(on: bool = True) -> Iterator[None]:
    """Inside, every neuron starts a forward from the membrane state its last forward left
    (a streaming SNN: consecutive windows as one long sequence) instead of from rest, when that
    state has the input's shape; networks then leave resetting to the caller (:func:`reset`)."""
    token = _CARRY.set(bool(on))
    try:
        yield
    finally:
        _CARRY.reset(token)


def carrying() -> bool:
    """Whether neuron states carry over between forwards (:func:`carried_state`)."""
    return _CARRY.get()


def state_fits(m: nn.Module, x_seq: torch.Tensor) -> bool:
    """Whether neuron ``m`` holds a membrane state for one step of ``x_seq`` ``[T, B, ...]``."""
    v = getattr(m, "v", None)
    return torch.is_tensor(v) and tuple(v.shape) == tuple(x_seq.shape[1:])


def reset(net: nn.Module, rebuilt: bool = False) -> None:
    """Reset every neuron's state (``functional.reset_net``).

    ``rebuilt=True`` first drops spikingjelly's cached list of resettable modules; the engine
    does this whenever it builds, derives or converts a network.
    """
    if rebuilt:
        functional.invalidate_reset_cache(net)
    functional.reset_net(net)


def spiking_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The named spiking neurons of ``net`` in module order."""
    return [(name, m) for name, m in net.named_modules() if is_spiking(m)]


def firing_rates(net: nn.Module, run: Callable[[], Any]) -> dict[str, float]:
    """Mean firing rate (spikes per neuron per time step) of each spiking neuron of ``net``.

    ``run`` is a callable that performs the forward pass(es); the rates are averaged over
    every call of a neuron during ``run`` (measured with spikingjelly's ``OutputMonitor``).
    """
    with monitor.OutputMonitor(net, SPIKING_TYPES, lambda s: float(s.detach().float().mean())) as mon:
        run()
        rates = {name: sum(mon[name]) / len(mon[name]) for name in mon.monitored_layers if mon[name]}
    return rates


_STACKABLE = (neuron.LIFNode, neuron.ParametricLIFNode, ChannelLIFNode)


def _dynamics(m: nn.Module) -> tuple:
    """What must agree for neurons to share one membrane loop (everything but the surrogate)."""
    own = (float(m.tau),) if type(m) is neuron.LIFNode else (id(m.w),)
    return (
        type(m),
        m.v_threshold,
        m.v_reset,
        m.detach_reset,
        m.decay_input,
        m.store_v_seq,
        getattr(m, "_neuron_precision", None),
        m.step_mode,
    ) + own


def _hooked(m: nn.Module) -> bool:
    return bool(
        m._forward_hooks
        or m._forward_pre_hooks
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    )


def grouped_multi_step(neurons: list[nn.Module], inputs: list[torch.Tensor] | torch.Tensor) -> torch.Tensor | None:
    """Run ``G`` neurons that differ only in their Dspike surrogate as ONE multi-step loop.

    ``inputs[g]`` (``[T, B, C, ...]``, all the same shape) is the input of ``neurons[g]``; or
    ``inputs`` is one tensor ``[T, G*B, C, ...]`` holding them stacked already. The inputs are
    stacked along the batch dim (``[T, G*B, C, ...]``) and run through one membrane
    loop of the same spikingjelly functional (lif/plif) or step (clif) the modules use, with
    a :class:`GroupedDspike` giving slice ``g`` the surrogate (b or DGS mixture) of
    ``neurons[g]``: the result equals ``torch.cat([n(x) for n, x in zip(neurons, inputs)], 1)``
    element for element, gradients included (learnable tau: summed over the slices, as with
    separate runs). The neurons start from rest, or under :func:`carried_state` from the
    states their last forward left, and keep their final states.

    Returns ``None`` (the caller then runs the modules one by one) when the neurons cannot be
    stacked: other types, different dynamics, non-Dspike or mixed surrogates, or hooks on a
    module (e.g. a spikingjelly monitor, which must see each module's own call).
    """
    first = neurons[0]
    if type(first) not in _STACKABLE or any(_hooked(m) for m in neurons):
        return None
    key = _dynamics(first)
    if any(_dynamics(m) != key for m in neurons[1:]) or key[5] or key[6] is not None or key[7] != "m":
        return None
    surrogates = [m.surrogate_function for m in neurons]
    if torch.is_tensor(inputs):
        if inputs.dim() < 3 or inputs.shape[1] % len(neurons):
            return None
        x_seq = inputs
    elif len(inputs) != len(neurons) or len({tuple(x.shape) for x in inputs}) != 1:
        return None
    else:
        x_seq = None
    if not GroupedDspike.supported(surrogates):
        return None
    if x_seq is None:
        x_seq = torch.cat(inputs, dim=1)
    sg = GroupedDspike(surrogates, x_seq.dtype, x_seq.device)
    per = x_seq.shape[1] // len(neurons)
    if carrying() and all(state_fits(m, x_seq[:, :per]) for m in neurons):
        v = torch.cat([m.v for m in neurons], dim=0)  # each neuron's slice of the stacked batch
    else:
        for m in neurons:
            m.reset()
        v = first.materialize_states((x_seq,), tuple(first._memories.values()), "m")[0]
    if type(first) is neuron.LIFNode:
        spikes, v, _ = functional.lif_multi_step(
            x_seq, v, first.tau, first.decay_input, first.v_threshold, first.v_reset, sg, first.detach_reset, False
        )
    elif type(first) is neuron.ParametricLIFNode:
        spikes, v, _ = functional.plif_multi_step(
            x_seq, v, first.w, first.decay_input, first.v_threshold, first.v_reset, sg, first.detach_reset, False
        )
    else:
        out = []
        for x in x_seq:
            spike, v = first.step_with(x, v, sg)
            out.append(spike)
        spikes = torch.stack(out)
    for m, vm in zip(neurons, v.chunk(len(neurons), dim=0)):
        m.v = vm
    return spikes
