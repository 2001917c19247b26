"""Several processes for one search or training run, started by ``torchrun`` (torch.distributed).

Every process (rank) runs the same command on its share of each batch: the global batch of the
settings is split over the ranks, gradients are averaged over them (so the architecture
parameters, weights and learnable time constants stay identical on every rank), epoch metrics
are summed over them, and only rank 0 writes files, logs and TensorBoard. Backends: NCCL on
CUDA, gloo on CPU.

Started without torchrun (none of :data:`ENV_VARS` set), or with a world size of 1, every
function here is a no-op or returns the one-process answer, so that path is unchanged.
torch is imported inside the functions: the command line reads :func:`context` for every
command, torch or not.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENV_VARS",
    "Context",
    "context",
    "setup",
    "is_main",
    "main_only",
    "world_size",
    "rank",
    "check_batch",
    "average_gradients",
    "sum_floats",
    "broadcast_module",
    "broadcast_object",
    "shard_rows",
    "make_sampler",
]

#: what torchrun sets for every process; all or none of them must be set
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """This process's place: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def context() -> Context:
    """The context of this process from the environment (one process when torchrun set nothing).

    Raises :class:`ConfigError` when the distributed variables are only partly set or not numbers.
    """
    given = [k for k in ENV_VARS if os.environ.get(k, "") != ""]
    if not given:
        return Context()
    missing = [k for k in ENV_VARS if k not in given]
    if missing:
        raise ConfigError(
            f"distributed environment half set: {', '.join(given)} set but {', '.join(missing)} not; "
            "start several processes with `torchrun --nproc_per_node N ...`, or unset "
            f"{', '.join(given)} for one process"
        )
    try:
        r, w, lr = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        int(os.environ["MASTER_PORT"])
    except ValueError as exc:
        raise ConfigError(
            f"distributed environment: RANK, WORLD_SIZE, LOCAL_RANK and MASTER_PORT must be integers ({exc})"
        ) from None
    if w < 1 or not 0 <= r < w or lr < 0:
        raise ConfigError(f"distributed environment: RANK {r} / WORLD_SIZE {w} / LOCAL_RANK {lr} are inconsistent")
    return Context(r, w, lr)


def setup(device: "torch.device") -> tuple[Context, "torch.device"]:
    """Join the process group torchrun started (once; NCCL on CUDA, gloo otherwise) and return
    the context and this rank's device (``cuda:LOCAL_RANK`` on CUDA; ConfigError when the node
    has fewer GPUs than processes)."""
    import torch
    import torch.distributed as dist

    ctx = context()
    if not ctx.active:
        return ctx, device
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if ctx.local_rank >= visible:
            raise ConfigError(
                f"torchrun: process LOCAL_RANK {ctx.local_rank} needs GPU {ctx.local_rank}, but {visible} GPU(s) "
                f"are visible on this node; start at most {visible} processes per node (--nproc_per_node {visible})"
            )
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank, world_size=ctx.world_size)
    return ctx, device


def _dist() -> Any:
    import sys

    if "torch.distributed" not in sys.modules:  # nothing joined a process group
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


def world_size() -> int:
    """Processes in the run (1 without torchrun)."""
    d = _dist()
    return d.get_world_size() if d else 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    d = _dist()
    return d.get_rank() if d else 0


def is_main() -> bool:
    """True on the process that writes files and logs (rank 0, or the only process)."""
    return rank() == 0


def main_only(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` on rank 0 (or the only process); a function that prints nothing on the others."""
    return log if is_main() else _silent


def _silent(_message: str) -> None:
    pass


def check_batch(batch_size: int, key: str) -> int:
    """The per-process share of the global ``batch_size``; ConfigError naming ``key`` when the
    world size does not divide it."""
    w = world_size()
    if batch_size % w:
        raise ConfigError(
            f"{key} {batch_size}: the global batch must be a multiple of the {w} processes "
            f"(e.g. {w * max(1, batch_size // w)} or {w * math.ceil(batch_size / w)})"
        )
    return batch_size // w


def _reduce_device() -> "torch.device":
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def average_gradients(params: Iterable["torch.nn.Parameter"]) -> None:
    """Replace each gradient by its mean over the processes (in place; one all-reduce of a flat
    buffer per dtype and device). Every process must hold gradients for the same parameters."""
    import torch

    d = _dist()
    if d is None:
        return
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    w = d.get_world_size()
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        d.all_reduce(flat)
        flat /= w
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n


def sum_floats(values: Sequence[float]) -> list[float]:
    """Sum of ``values`` over the processes, element-wise (float64)."""
    import torch

    d = _dist()
    if d is None:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_reduce_device())
    d.all_reduce(t)
    return t.cpu().tolist()


def broadcast_module(module: "torch.nn.Module", parameters: bool = True) -> None:
    """Copy rank 0's buffers (e.g. batch-norm running statistics, which each process updates from
    its own share of the batch) and, with ``parameters``, its parameters to every process."""
    d = _dist()
    if d is None:
        return
    import torch

    tensors = (list(module.parameters()) if parameters else []) + list(module.buffers())
    with torch.no_grad():
        for t in tensors:
            d.broadcast(t.data, src=0)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` (picklable) on every process."""
    d = _dist()
    if d is None:
        return obj
    box = [obj]
    d.broadcast_object_list(box, src=0)
    return box[0]


def shard_rows(*tensors: "torch.Tensor") -> tuple["torch.Tensor", ...]:
    """This process's rows of a global batch: rows ``rank, rank + W, ...`` (the same interleaving
    as :func:`make_sampler`); a last batch with fewer rows than processes is wrapped around so
    that no process gets an empty batch."""
    import torch

    d = _dist()
    if d is None:
        return tensors
    n = len(tensors[0])
    w, r = d.get_world_size(), d.get_rank()
    idx = (torch.arange(math.ceil(n / w)) * w + r) % n
    return tuple(t[idx.to(t.device)] for t in tensors)


def make_sampler(dataset: Any, shuffle: bool, seed: int) -> "torch.utils.data.Sampler | None":
    """This process's share of ``dataset`` for a loader whose batch is the per-process batch.

    The first pass uses the permutation a one-process loader draws from a generator seeded with
    ``seed`` (so global batch k is the same samples), split over the processes by interleaving;
    later passes reshuffle with ``seed + pass``. None in one process (the caller's own sampler).
    """
    from torch.utils.data import DistributedSampler

    class _Sampler(DistributedSampler):
        """A DistributedSampler whose epoch advances at each pass (loaders iterated once per epoch)."""

        def __iter__(self):
            it = super().__iter__()
            self.set_epoch(self.epoch + 1)
            return it

    d = _dist()
    if d is None:
        return None
    return _Sampler(
        dataset, num_replicas=d.get_world_size(), rank=d.get_rank(), shuffle=shuffle, seed=int(seed), drop_last=False
    )
