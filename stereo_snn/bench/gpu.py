"""GPU check: every heavy path of both applications on CUDA, checked against the CPU, with figures.

Run as ``stereo-snn bench gpu`` or ``python tools/bench_gpu.py`` on a machine with a GPU. It is
sized to finish within 8 minutes on one data-centre GPU: the timed steps of all parts share
``--budget-s`` (300 s; ``--quick`` 120 s), a part stopping early when its share is spent (it has
not been run on a GPU yet). It

1. **checks** the GPU against the CPU in float32 (TF32 off) on tiny inputs, from the same weights
   and inputs: the stereo search supernet (the pyramid of the model's config) and the trained
   stereo network (the bundled DSEC model, or ``--checkpoint``), the CIFAR-10 search supernet and
   its retraining network. One forward and one backward of the project's own loss on both
   devices; the outputs and the gradients of all parameters must agree within relative L2
   tolerances (``--output-tolerance`` 1e-3, ``--grad-tolerance`` 1e-2: a membrane potential within
   rounding of the threshold may fire on one device only);
2. **measures**, with the project's own step functions on random data of the real shapes: stereo
   search steps (the engine's ``Searcher``, one architecture and one weight batch per step, float32
   as ``stereo-snn search`` runs) and stereo training steps (:func:`stereo_snn.fit.train_step`:
   float16 autocast + GradScaler, as ``stereo-snn train``) at 640x480, stereo inference (the
   ``Predictor`` that ``infer`` uses, float32, and the same forward under autocast), CIFAR-10
   search steps and retraining steps (AMP) plus one DGS round. For each: steps, seconds,
   throughput (frames/s, images/s) and the peak GPU memory (``torch.cuda.max_memory_allocated``).

Memory: the parts run one after the other, each freeing its models. Estimated from CPU runs
(resident memory per sample is close to activation memory, float32): the stereo search step
needs about 0.106 MB per pixel (about 33 GB at 640x480, batch 1) and the CIFAR-10 search step
about 1.9 GB per image (about 30 GB at batch 16); on a smaller GPU lower ``--height``/``--width``
and ``--classify-search-batch`` (a part that runs out of memory is reported as such).

Every figure goes to a JSON file (``--json``, written atomically). Without CUDA the command says
so in one line and exits with :data:`EXIT_NO_CUDA` (77, "skipped"), unless ``--device cpu`` runs
the same path on the CPU (what the tests do, at a tiny size). Exit code 1 when a check or a
part failed (the JSON holds the error and its traceback), 0 when all passed. No test asserts on
the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..atomic import write_json
from ..errors import ConfigError
from . import machine_description, peak_rss_mib

__all__ = [
    "EXIT_NO_CUDA",
    "Comparison",
    "build_parser",
    "compare_models",
    "float32_only",
    "main",
    "relative_error",
    "run",
    "stereo_batch",
]

#: exit code when CUDA is asked for (the default) but absent: "skipped", as in automake and ctest
EXIT_NO_CUDA = 77
#: classes of the CIFAR-shaped data
_CLASSES = 10


def build_parser() -> argparse.ArgumentParser:
    """The check's command-line options."""
    p = argparse.ArgumentParser(
        prog="bench_gpu",
        description="Run search, training and inference of both applications on the GPU with mixed precision, "
        "check them against the CPU in float32, and print throughput and peak GPU memory.",
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu to run the same path on the CPU")
    p.add_argument("--quick", action="store_true", help="fewer steps, smaller CIFAR search batch (about half the time)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per part (default 5; --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before each part's timed ones (default 1)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="seconds of timed steps in all, shared by the parts (default 300; --quick 120)",
    )
    p.add_argument("--height", type=int, default=480, help="stereo frame height, pixels (default 480)")
    p.add_argument("--width", type=int, default=640, help="stereo frame width, pixels (default 640)")
    p.add_argument("--checkpoint", default=None, help="stereo checkpoint (default: the bundled DSEC model)")
    p.add_argument("--image-size", type=int, default=32, help="CIFAR image side, pixels (default 32)")
    p.add_argument("--classify-search-batch", type=int, default=None, help="CIFAR search batch (default 16; --quick 8)")
    p.add_argument(
        "--classify-train-batch", type=int, default=None, help="CIFAR retraining batch (default: the preset's, 50)"
    )
    p.add_argument(
        "--classify-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a setting of the CIFAR-10 presets (both search and train), e.g. model.layers=4",
    )
    p.add_argument("--check-height", type=int, default=24, help="stereo height of the CPU comparison (default 24)")
    p.add_argument("--check-width", type=int, default=48, help="stereo width of the CPU comparison (default 48)")
    p.add_argument("--check-image-size", type=int, default=8, help="CIFAR image side of the comparison (default 8)")
    p.add_argument("--output-tolerance", type=float, default=1e-3, help="relative L2 error allowed on outputs")
    p.add_argument("--grad-tolerance", type=float, default=1e-2, help="relative L2 error allowed on gradients")
    p.add_argument("--no-amp", action="store_true", help="train in float32 instead of float16 autocast + GradScaler")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the random data")
    p.add_argument("--json", default="bench_gpu.json", help="where to write the figures (default bench_gpu.json)")
    return p


def _check_args(args: argparse.Namespace) -> None:
    for name in (
        "height",
        "width",
        "image_size",
        "check_height",
        "check_width",
        "check_image_size",
        "steps",
        "classify_search_batch",
        "classify_train_batch",
    ):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"bench gpu: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.warmup < 0:
        raise ConfigError(f"bench gpu: --warmup must be >= 0, got {args.warmup}")
    for name in ("output_tolerance", "grad_tolerance", "budget_s"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ConfigError(f"bench gpu: --{name.replace('_', '-')} must be > 0, got {value}")


# ------------------------------------------------------------------------------ comparison
@dataclass
class Comparison:
    """One model run on two devices: relative L2 errors (float64) of the outputs and of all the
    gradients together, the parameter whose gradient differs most, and the tolerances."""

    name: str
    output_error: float
    grad_error: float
    worst_parameter: str
    worst_parameter_error: float
    output_tolerance: float
    grad_tolerance: float

    @property
    def ok(self) -> bool:
        return self.output_error <= self.output_tolerance and self.grad_error <= self.grad_tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` in float64 (0 when both are zero, inf when only ``b`` is; NaN anywhere: inf)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    diff = float((a - b).norm())
    ref = float(b.norm())
    if math.isnan(diff) or math.isnan(ref):
        return math.inf
    if ref == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / ref


@contextlib.contextmanager
def float32_only() -> Iterator[None]:
    """Full float32 matmuls and convolutions on CUDA inside the block (TF32 off), restored after."""
    b = torch.backends
    if hasattr(b, "fp32_precision"):  # torch >= 2.9: one API, never mixed with the legacy flags
        places = [b, b.cuda.matmul, b.cudnn, b.cudnn.conv, b.cudnn.rnn]
        saved = [o.fp32_precision for o in places]
        for o in places:
            o.fp32_precision = "ieee"
        try:
            yield
        finally:
            for o, v in zip(places, saved):
                o.fp32_precision = v
        return
    saved_flags = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)  # pragma: no cover - older torch
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = False  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved_flags


def _to(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors in dicts, tuples, lists) with every tensor on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _tensors(out: Any) -> list[torch.Tensor]:
    """The tensors of a model output (a tensor, or dicts/tuples of them; dict keys sorted; None skipped)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _tensors(out[k])]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    return []


LossFn = Callable[[nn.Module, Any], torch.Tensor]
#: a loss for a device: ``make_loss(device) -> loss_fn(model, batch)`` (the project's losses move inputs to a bound device)
LossFactory = Callable[[torch.device], LossFn]


def _forward_backward(
    model: nn.Module, batch: Any, make_loss: LossFactory, device: torch.device
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Outputs and loss (flattened, float64, CPU) and the gradient of every parameter of one
    training-mode forward and backward of ``make_loss(device)(model, batch)`` on ``device`` in float32."""
    from ..spiking import reset

    outputs: list[Any] = []
    handle = model.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        model.to(device).train()
        reset(model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        with float32_only():
            loss = make_loss(device)(model, _to(batch, device))
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        handle.remove()
    flat = torch.cat(
        [t.detach().double().flatten().cpu() for o in outputs for t in _tensors(o)]
        + [loss.detach().double().reshape(1).cpu()]
    )
    return flat, {
        n: (g if g is not None else torch.zeros_like(p)).detach().double().cpu() for (n, p), g in zip(named, grads)
    }


def compare_models(
    name: str,
    model_a: nn.Module,
    model_b: nn.Module,
    batch: Any,
    make_loss: LossFactory,
    device_a: torch.device | str,
    device_b: torch.device | str,
    output_tolerance: float = 1e-3,
    grad_tolerance: float = 1e-2,
) -> Comparison:
    """Run ``model_a`` on ``device_a`` and ``model_b`` on ``device_b`` (same architecture; the same
    weights when the devices are to agree) on ``batch`` with the loss ``make_loss(device)`` in
    float32, and compare the outputs, the loss and the gradients (``model_b`` is the reference of
    the relative errors). Both models are moved to their device and run in training mode."""
    out_a, grads_a = _forward_backward(model_a, batch, make_loss, torch.device(device_a))
    out_b, grads_b = _forward_backward(model_b, batch, make_loss, torch.device(device_b))
    if list(grads_a) != list(grads_b) or out_a.shape != out_b.shape:
        raise ValueError(f"compare {name}: the two models differ in parameters or outputs")
    per_param = {n: relative_error(grads_a[n], grads_b[n]) for n in grads_b}
    worst = max(per_param, key=lambda n: per_param[n]) if per_param else ""
    all_a = torch.cat([g.flatten() for g in grads_a.values()]) if grads_a else torch.zeros(1)
    all_b = torch.cat([g.flatten() for g in grads_b.values()]) if grads_b else torch.zeros(1)
    return Comparison(
        name,
        relative_error(out_a, out_b),
        relative_error(all_a, all_b),
        worst,
        per_param.get(worst, 0.0),
        output_tolerance,
        grad_tolerance,
    )


# ------------------------------------------------------------------------------ data
def stereo_batch(cfg: Any, batch: int, height: int, width: int, seed: int, density: float = 0.3) -> dict[str, Any]:
    """A collated stereo batch of random representations (``cfg.time_steps`` x ``cfg.input_channels``
    channels, ``density`` of the cells non-zero, N(0, 1) values): the right view is the left one
    moved left by ``shift`` pixels (a quarter of ``max_disparity``, at most an eighth of the width),
    the ground truth that constant disparity, valid where the right view has a pixel."""
    g = torch.Generator().manual_seed(int(seed))
    shape = (cfg.time_steps, batch, cfg.input_channels, height, width)
    left = torch.randn(shape, generator=g) * (torch.rand(shape, generator=g) < density)
    shift = max(1, min(width // 8, cfg.max_disparity // 4))
    right = torch.zeros_like(left)
    right[..., : width - shift] = left[..., shift:]
    valid = torch.ones(batch, height, width, dtype=torch.bool)
    valid[..., :shift] = False
    return {"left": left, "right": right, "disparity": torch.full((batch, height, width), float(shift)), "valid": valid}


def _images(batch: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-shaped random images [B, 3, size, size] (N(0, 1), as normalised images) and labels."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(batch, 3, size, size, generator=g), torch.randint(0, _CLASSES, (batch,), generator=g)


# ------------------------------------------------------------------------------ the setup
@dataclass
class _Setup:
    """What the parts are built from: the stereo model and config, the CIFAR presets, a genotype."""

    stereo: Any  # LoadedModel
    checkpoint: Any
    classify_search: Any  # ClassifyConfig
    classify_train: Any
    genotype: Any  # the CIFAR genotype retrained by the training part


def _setup(args: argparse.Namespace) -> _Setup:
    from classification.config import resolve_config
    from classification.network import COMPONENT, build_supernet

    from ..search import Genotype
    from ..stereo.models import default_checkpoint
    from ..stereo.network import load_model

    checkpoint = args.checkpoint or default_checkpoint()
    stereo = load_model(checkpoint, device="cpu")
    overrides = list(args.classify_set)
    search_cfg = resolve_config("cifar10", overrides=overrides, command="search")
    train_cfg = resolve_config("cifar10", overrides=overrides, command="train")
    torch.manual_seed(args.seed)
    supernet = build_supernet(search_cfg.model, _CLASSES, 3)
    genotype = Genotype({COMPONENT: supernet.backbone.derive()}, {"derived_from": "an untrained CIFAR-10 supernet"})
    return _Setup(stereo, checkpoint, search_cfg, train_cfg, genotype)


def _stereo_search_loss(device: torch.device) -> LossFn:
    """The loss ``stereo-snn search`` gives the engine (smooth L1 with the coarse term)."""
    from ..stereo.losses import disparity_loss

    def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        return disparity_loss(m(batch["left"].to(device), batch["right"].to(device)), batch, "smooth_l1")

    return loss_fn


def _checks(setup: _Setup, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Every model of the check on the CPU and on ``device`` from the same weights and inputs: a
    :class:`Comparison` as a dict, or the error (and traceback) that stopped it."""
    from classification.network import build_from_genotype, build_supernet
    from classification.train import classification_loss, training_step_loss

    from ..stereo.network import build_supernet as stereo_supernet
    from ..stereo.train import training_loss

    cfg = setup.stereo.config
    h, w, s = args.check_height, args.check_width, args.check_image_size
    tc = setup.classify_train
    torch.manual_seed(args.seed)
    cases = [
        ("stereo search supernet", stereo_supernet(cfg), stereo_batch(cfg, 1, h, w, args.seed), _stereo_search_loss),
        (
            "stereo network",
            setup.stereo.model,
            stereo_batch(cfg, 1, h, w, args.seed + 1),
            lambda d: training_loss(cfg, d),
        ),
        (
            "cifar10 search supernet",
            build_supernet(setup.classify_search.model, _CLASSES, 3),
            _images(2, s, args.seed),
            lambda d: classification_loss(),
        ),
        (
            "cifar10 network",
            build_from_genotype(setup.genotype, tc.model, _CLASSES, 3),
            _images(2, s, args.seed + 1),
            lambda d: _loss_of(training_step_loss(tc.train, tc.model.auxiliary_weight)),
        ),
    ]
    out = []
    for name, model, batch, make_loss in cases:
        on_device, reference = copy.deepcopy(model), copy.deepcopy(model)
        try:
            c = compare_models(
                name, on_device, reference, batch, make_loss, device, "cpu", args.output_tolerance, args.grad_tolerance
            )
            out.append(c.to_dict())
        except Exception as exc:  # a device failure is a finding: record it, check the rest
            out.append({"name": name, "ok": False, **_failure(exc)})
        del on_device, reference
    return out


def _failure(exc: BaseException) -> dict[str, str]:
    """The error (type and first line) and its traceback, for the JSON."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return {"error": f"{type(exc).__name__}: {first}", "traceback": traceback.format_exc()}


def _loss_of(step_loss: Callable[[nn.Module, Any], Any]) -> LossFn:
    return lambda m, batch: step_loss(m, batch).loss


# ------------------------------------------------------------------------------ measured parts
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype of inference: float16 on CUDA (as training), bfloat16 on the CPU."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _timed(step: Callable[[], Any], device: torch.device, args: argparse.Namespace, budget_s: float) -> dict[str, Any]:
    """``args.warmup`` untimed calls of ``step``, then up to ``args.steps`` timed ones, stopping
    early once ``budget_s`` seconds are spent (at least one); steps, seconds, seconds per step."""
    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    n = 0
    while n < args.steps:
        step()
        n += 1
        _sync(device)
        if time.perf_counter() - start > budget_s:
            break
    seconds = time.perf_counter() - start
    return {"steps": n, "seconds": seconds, "step_s": seconds / n}


def _stereo_search(setup: _Setup, args: argparse.Namespace, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Search steps of the stereo supernet (the engine's Searcher, settings of the config's ``search``)."""
    from ..search import BilevelConfig, Searcher
    from ..stereo.network import build_supernet

    cfg = setup.stereo.config
    sc = cfg.search
    torch.manual_seed(args.seed)
    model = build_supernet(cfg).to(device)
    engine = BilevelConfig(
        epochs=sc.epochs,
        warmup_epochs=0,  # an architecture step in every step
        lr=sc.lr,
        lr_min=sc.lr_min,
        arch_lr=sc.arch_lr,
        arch_weight_decay=sc.arch_weight_decay,
        energy_weight=sc.energy_weight,
    )
    searcher = Searcher(model, _stereo_search_loss(device), engine, model.components(), log=lambda _line: None)
    b = sc.batch_size
    tb = stereo_batch(cfg, b, args.height, args.width, args.seed)
    vb = stereo_batch(cfg, b, args.height, args.width, args.seed + 1)
    timing = _timed(lambda: searcher.step(tb, vb, epoch=0), device, args, budget_s)
    frames = 2 * b  # an architecture batch and a weight batch per step
    return {
        **timing,
        "batch": b,
        "shape": [args.height, args.width],
        "precision": "float32 (as stereo-snn search)",
        "rate": frames / timing["step_s"],
        "unit": "frames/s",
    }


def _stereo_train(setup: _Setup, args: argparse.Namespace, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Training steps of the stereo network (:func:`stereo_snn.fit.train_step`, the config's ``train``)."""
    from ..fit import FitSettings, FitTask, StepLoss, make_scaler, train_step
    from ..stereo.network import load_model
    from ..stereo.train import training_loss

    loaded = load_model(setup.checkpoint, device=device)
    cfg, tc = loaded.config, loaded.config.train
    model = loaded.model.train()
    loss_fn = training_loss(cfg, device)
    task = FitTask(
        application="stereo",
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay),
        scheduler=None,
        train_batches=lambda _epoch: [],
        step_loss=lambda m, batch: StepLoss(loss_fn(m, batch)),
    )
    settings = FitSettings(epochs=1, grad_clip=tc.grad_clip, amp=not args.no_amp, progress=False)
    scaler = make_scaler(settings, device)
    batch = stereo_batch(cfg, tc.batch_size, args.height, args.width, args.seed + 2)
    timing = _timed(lambda: train_step(task, batch, scaler, settings, device), device, args, budget_s)
    return {
        **timing,
        "batch": tc.batch_size,
        "shape": [args.height, args.width],
        "precision": "float16 autocast + GradScaler" if scaler.is_enabled() else "float32",
        "rate": tc.batch_size / timing["step_s"],
        "unit": "frames/s",
        "loss_scale": float(scaler.get_scale()) if scaler.is_enabled() else None,
    }


def _stereo_infer(setup: _Setup, args: argparse.Namespace, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Inference frames of the stereo network (the Predictor of ``infer``): float32, then under autocast."""
    from ..stereo.infer import Predictor
    from ..stereo.network import load_model

    loaded = load_model(setup.checkpoint, device=device)
    pred = Predictor(loaded.model, loaded.config, device)
    batch = stereo_batch(loaded.config, 1, args.height, args.width, args.seed + 3)
    left, right = batch["left"].to(device), batch["right"].to(device)
    timing = _timed(lambda: pred.predict_inputs(left, right), device, args, budget_s / 2)
    exact = pred.predict_inputs(left, right)
    dtype = _amp_dtype(device)

    def mixed() -> Any:
        with torch.autocast(device_type=device.type, dtype=dtype):
            return pred.predict_inputs(left, right)

    amp_timing = _timed(mixed, device, args, budget_s / 2)
    amp = mixed()
    return {
        **timing,
        "batch": 1,
        "shape": [args.height, args.width],
        "precision": "float32 (as stereo-snn infer)",
        "rate": 1.0 / timing["step_s"],
        "unit": "frames/s",
        "autocast": {**amp_timing, "dtype": str(dtype).replace("torch.", ""), "rate": 1.0 / amp_timing["step_s"]},
        "autocast_finite": bool(np.isfinite(amp).all()),
        "autocast_mean_abs_diff_px": float(np.abs(amp.astype(np.float64) - exact).mean()),
    }


def _classify_search(setup: _Setup, args: argparse.Namespace, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Search steps of the CIFAR-10 supernet (the engine's Searcher, the preset's ``search``)."""
    from classification.network import COMPONENT, build_supernet
    from classification.search import search_config
    from classification.train import classification_loss

    from ..search import Searcher

    cfg = setup.classify_search
    torch.manual_seed(args.seed)
    model = build_supernet(cfg.model, _CLASSES, 3).to(device)
    engine = dataclasses.replace(search_config(cfg), warmup_epochs=0)
    searcher = Searcher(model, classification_loss(), engine, {COMPONENT: model.backbone}, log=lambda _line: None)
    b = args.classify_search_batch
    tb = _to(_images(b, args.image_size, args.seed), device)
    vb = _to(_images(b, args.image_size, args.seed + 1), device)
    timing = _timed(lambda: searcher.step(tb, vb, epoch=0), device, args, budget_s)
    return {
        **timing,
        "batch": b,
        "shape": [args.image_size, args.image_size],
        "time_steps": cfg.model.time_steps,
        "precision": "float32 (as stereo-snn classify search)",
        "rate": 2 * b / timing["step_s"],
        "unit": "images/s",
    }


def _classify_train(setup: _Setup, args: argparse.Namespace, device: torch.device, budget_s: float) -> dict[str, Any]:
    """Retraining steps of a CIFAR-10 network (:func:`stereo_snn.fit.train_step`, the preset's
    ``train``), then one DGS round of one batch pair."""
    from classification.network import build_from_genotype
    from classification.train import classification_loss, make_optimizer, training_step_loss

    from ..fit import FitSettings, FitTask, make_scaler, train_step
    from ..search import SurrogateSearch

    cfg = setup.classify_train
    tc = cfg.train
    torch.manual_seed(args.seed)
    model = build_from_genotype(setup.genotype, cfg.model, _CLASSES, 3).to(device)
    task = FitTask(
        application="classification",
        model=model,
        optimizer=make_optimizer(model.parameters(), tc),
        scheduler=None,
        train_batches=lambda _epoch: [],
        step_loss=training_step_loss(tc, cfg.model.auxiliary_weight),
    )
    settings = FitSettings(epochs=1, grad_clip=tc.grad_clip, amp=not args.no_amp, progress=False)
    scaler = make_scaler(settings, device)
    b = args.classify_train_batch or tc.batch_size
    batch = _to(_images(b, args.image_size, args.seed + 2), device)
    timing = _timed(lambda: train_step(task, batch, scaler, settings, device), device, args, budget_s)
    dgs = SurrogateSearch(model, dataclasses.replace(cfg.dgs, max_batches=1))
    _sync(device)
    start = time.perf_counter()
    dgs.run([batch], [_to(_images(b, args.image_size, args.seed + 3), device)], classification_loss(tc.label_smoothing))
    _sync(device)
    return {
        **timing,
        "batch": b,
        "shape": [args.image_size, args.image_size],
        "time_steps": cfg.model.time_steps,
        "channels": cfg.model.channels,
        "precision": "float16 autocast + GradScaler" if scaler.is_enabled() else "float32",
        "rate": b / timing["step_s"],
        "unit": "images/s",
        "dgs_round_one_batch_s": time.perf_counter() - start,
    }


_PARTS: tuple[tuple[str, Callable[..., dict[str, Any]]], ...] = (
    ("stereo search", _stereo_search),
    ("stereo train", _stereo_train),
    ("stereo inference", _stereo_infer),
    ("cifar10 search", _classify_search),
    ("cifar10 train", _classify_train),
)


def _part(
    name: str,
    fn: Callable[..., dict[str, Any]],
    setup: _Setup,
    args: argparse.Namespace,
    device: torch.device,
    budget_s: float,
) -> dict[str, Any]:
    """Run one part, with its peak GPU memory; an error (e.g. out of memory) is recorded, not raised."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        row = {"part": name, "ok": True, **fn(setup, args, device, budget_s)}
    except Exception as exc:  # e.g. out of memory: record it, measure the other parts
        row = {"part": name, "ok": False, **_failure(exc)}
    if device.type == "cuda":
        row["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    row["peak_rss_mib"] = peak_rss_mib()
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The checks and the measured parts on ``args.device``; returns every figure (seconds, MiB)."""
    from ..runtime import resolve_device

    _check_args(args)
    device = resolve_device(args.device)
    if args.steps is None:
        args.steps = 2 if args.quick else 5
    if args.budget_s is None:
        args.budget_s = 120.0 if args.quick else 300.0
    if args.classify_search_batch is None:
        args.classify_search_batch = 8 if args.quick else 16
    start = time.perf_counter()
    setup = _setup(args)
    checks = _checks(setup, args, device)
    share = args.budget_s / len(_PARTS)
    parts = [_part(name, fn, setup, args, device, share) for name, fn in _PARTS]
    result: dict[str, Any] = {
        "machine": machine_description(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpus": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "stereo_checkpoint": str(setup.checkpoint),
        "checks": checks,
        "parts": parts,
        "wall_s": time.perf_counter() - start,
    }
    result["ok"] = all(c["ok"] for c in checks) and all(p["ok"] for p in parts)
    return result


def _describe_part(p: dict[str, Any]) -> str:
    memory = f", peak GPU memory {p['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in p else ""
    if not p["ok"]:
        return f"{p['part']}: FAILED ({p['error']}){memory}"
    size = "x".join(str(v) for v in reversed(p["shape"]))
    line = (
        f"{p['part']}: batch {p['batch']} at {size}, {p['precision']}: {p['steps']} steps in {p['seconds']:.2f} s, "
        f"{p['rate']:.2f} {p['unit']}{memory}"
    )
    if "autocast" in p:
        a = p["autocast"]
        line += (
            f"; under {a['dtype']} autocast {a['rate']:.2f} frames/s, mean |difference| "
            f"{p['autocast_mean_abs_diff_px']:.3f} px{'' if p['autocast_finite'] else ', NOT FINITE'}"
        )
    if "dgs_round_one_batch_s" in p:
        line += f"; DGS round of one batch pair {p['dgs_round_one_batch_s']:.2f} s"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check, print one line per check and part, write ``--json``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if str(args.device).split(":")[0] == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        print(
            f"bench gpu: CUDA is not available on this machine (torch {torch.__version__}, {built}); "
            "nothing was run (--device cpu runs the same path on the CPU)",
            file=sys.stderr,
        )
        return EXIT_NO_CUDA
    r = run(args)
    print(
        f"GPU check on {r['gpu'] or r['device']} (torch {r['torch']}, CUDA {r['cuda']}; {r['machine']}, "
        f"{r['cpus']} CPUs) in {r['wall_s']:.0f} s"
    )
    for c in r["checks"]:
        if "error" in c:
            print(f"{c['name']}: {r['device']} against cpu in float32: FAILED ({c['error']})")
            continue
        print(
            f"{c['name']}: {r['device']} against cpu in float32: outputs {c['output_error']:.2e} "
            f"(<= {c['output_tolerance']:g}), gradients {c['grad_error']:.2e} (<= {c['grad_tolerance']:g}; "
            f"worst {c['worst_parameter']} {c['worst_parameter_error']:.2e}): {'ok' if c['ok'] else 'MISMATCH'}"
        )
    for p in r["parts"]:
        print(_describe_part(p))
    write_json(args.json, r)
    print(f"{'all checks passed' if r['ok'] else 'FAILED'}; wrote {args.json}")
    return 0 if r["ok"] else 1
