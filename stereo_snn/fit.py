"""One training run for every application: the epoch loop, resume, mixed precision, gradient
clipping, the checkpoint, TensorBoard scalars and the best-model rule.

An application hands over a :class:`FitTask` (its model, optimiser, schedule, batches, loss,
evaluation and what else its checkpoints carry) and :class:`FitSettings`; :func:`fit` runs the
epochs and promises:

- after every epoch ``RUN/checkpoints/last.pt`` is written atomically with the fields
  :data:`CHECKPOINT_FIELDS` plus the task's own (``extra_state``); ``best.pt`` too when the
  epoch is the best so far by ``settings.best_metric``;
- ``epochs_done`` counts finished epochs (resume starts at epoch ``epochs_done``, 0-based);
- resuming restores the model, optimiser, schedule, AMP scaler, DGS history and every RNG
  state, so on a CPU N epochs straight equal N/2 plus a resumed N/2 bit for bit;
- ``RUN/metrics.json`` holds the per-epoch history (``epoch`` counts from 1) and the best row;
- every numeric entry of an epoch's row is a TensorBoard scalar (``train_loss`` -> ``train/loss``);
- under torchrun (:mod:`stereo_snn.distributed`) gradients are averaged over the processes,
  rank 0's buffers (batch-norm statistics) are copied to all before each evaluation, the
  epoch's training metrics are summed over the processes, and only rank 0 writes and logs.

Run folders are never overwritten by accident: :func:`prepare_run_dir` refuses a folder that
already holds something unless the run resumes it or ``overwrite`` is given.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import torch
from torch import nn

from . import distributed
from .atomic import check_output_path, write_json
from .errors import CheckpointError, ConfigError, OutputError, StereoSNNError
from .runtime import RunDir, load_checkpoint, rng_state, save_checkpoint, set_rng_state

if TYPE_CHECKING:
    from .search import SurrogateSearch

__all__ = [
    "CHECKPOINT_FIELDS",
    "RUN_OUTPUTS",
    "FitSettings",
    "FitTask",
    "FitResult",
    "StepLoss",
    "fit",
    "make_scaler",
    "train_step",
    "prepare_run_dir",
    "read_run_state",
    "add_scalars",
    "write_history_scalars",
    "freeze_parts",
    "TRAINING_STATE",
    "export_checkpoint",
]

#: fields every training checkpoint holds (the application adds its own, e.g. config and genotype)
CHECKPOINT_FIELDS = (
    "application",
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "epochs_done",
    "rng",
    "history",
    "best",
    "dgs_history",
)
#: the fields only continuing a run needs; :func:`export_checkpoint` leaves them out
TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng")
#: what runs write into a run folder; ``overwrite`` removes exactly these
RUN_OUTPUTS = (
    "config.json",
    "genotype.json",
    "metrics.json",
    "supernet.pt",
    "arch.txt",
    "checkpoints",
    "figures",
    "tb",
)
#: the command that trains each application, for messages
_COMMANDS = {"stereo": "stereo-snn train", "classification": "stereo-snn classify train"}


@dataclass(frozen=True)
class FitSettings:
    """How :func:`fit` runs.

    epochs: total epochs of the run; epochs_this_run: stop after this many in this session
    (None: all remaining); grad_clip: max gradient norm (None or 0: no clipping); amp: mixed
    precision (used only on CUDA); best_metric: row keys, the first one present in an epoch's
    row decides which checkpoint is ``best.pt``; best_mode: ``min`` or ``max``.
    """

    epochs: int
    epochs_this_run: int | None = None
    grad_clip: float | None = None
    amp: bool = False
    best_metric: tuple[str, ...] = ("train_loss",)
    best_mode: str = "min"
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ConfigError(f"train.epochs {self.epochs!r}: must be an integer >= 1")
        n = self.epochs_this_run
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ConfigError(
                f"--epochs-this-run {n!r}: must be an integer >= 1 (leave it out to run every remaining epoch)"
            )
        if self.best_mode not in ("min", "max"):
            raise ConfigError(f"best_mode {self.best_mode!r}: expected 'min' or 'max'")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise ConfigError(f"train.grad_clip {self.grad_clip!r}: must be >= 0 (0 or null: no clipping)")


@dataclass
class StepLoss:
    """What the task's ``step_loss`` returns for one batch: the loss to minimise, the number of
    items it averages over (samples, valid pixels: the weight of this batch in the epoch's mean)
    and sums over the batch of other quantities (e.g. ``{"train_top1": 100 * correct}``), which
    the epoch row reports divided by the summed weights."""

    loss: torch.Tensor
    weight: float = 1.0
    sums: Mapping[str, float] = field(default_factory=dict)


@dataclass
class FitTask:
    """What an application supplies to :func:`fit`.

    application: ``stereo`` or ``classification`` (recorded; a run of one is never resumed
    by the other); train_batches(epoch): the batches of a training epoch; step_loss(model,
    batch): forward and loss of one batch (run under autocast); evaluate(model): entries of
    the epoch row (e.g. ``val_mae``) or None; dgs: the engine's DGS controller, run before
    each epoch its schedule names on ``dgs_batches(epoch)`` (training batches and held-out
    TRAINING batches, never the data that chooses ``best.pt``) with ``dgs_loss``; extra_state: stored in every
    checkpoint; on_epoch_end(model, epochs_done, writer): e.g. pictures for TensorBoard;
    describe(row): the log line of an epoch; summary(history, best): extra ``metrics.json`` entries.
    """

    application: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_batches: Callable[[int], Iterable[Any]]
    step_loss: Callable[[nn.Module, Any], StepLoss]
    evaluate: Callable[[nn.Module], Mapping[str, Any]] | None = None
    dgs: "SurrogateSearch | None" = None
    dgs_batches: Callable[[int], tuple[Iterable[Any], Iterable[Any]]] | None = None
    dgs_loss: Callable[[nn.Module, Any], torch.Tensor] | None = None
    extra_state: Mapping[str, Any] = field(default_factory=dict)
    on_epoch_end: Callable[[nn.Module, int, Any], None] | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None
    summary: Callable[[list[dict[str, Any]], dict[str, Any] | None], Mapping[str, Any]] | None = None


@dataclass
class FitResult:
    """What a run produced: its folder, finished epochs, the per-epoch history, the best row
    (``score``, ``metric``, ``epoch`` and the row's entries) and whether every epoch is done."""

    run: RunDir
    epochs_done: int
    epochs: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    metrics: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.epochs


# ------------------------------------------------------------------------------ run folders
def prepare_run_dir(
    out: str | Path, resume: bool = False, overwrite: bool = False, keep: Iterable[str] = ("data",)
) -> RunDir:
    """The run folder ``out``, made safe to write.

    A new run (no ``resume``) refuses a folder holding anything but the names in ``keep``
    (``data``: sequences a command simulated there first) with :class:`OutputError`, unless
    ``overwrite``: then the earlier run's outputs (:data:`RUN_OUTPUTS`) are removed. Temporary
    files left by a killed checkpoint write (``checkpoints/.NAME.*.tmp*``) are removed. Under
    torchrun rank 0 decides and changes the folder, and every rank raises its error.
    """
    root = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: give one (continue the run, or replace it)")
    error: StereoSNNError | None = None
    if distributed.context().is_main:
        try:
            _prepare(root, resume, overwrite, set(keep))
        except StereoSNNError as exc:
            error = exc
    error = distributed.broadcast_object(error)
    if error is not None:
        raise error
    if not distributed.context().is_main and not distributed.world_size() > 1:
        _check(root, resume, overwrite, set(keep))  # not joined yet: each process checks for itself
    return RunDir(root)


def _check(root: Path, resume: bool, overwrite: bool, keep: set[str]) -> list[str]:
    """The names a new run would replace in ``root``; OutputError unless ``overwrite``."""
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root}: exists and is not a folder")
    if resume or not root.is_dir():
        return []
    held = sorted(p.name for p in root.iterdir() if p.name not in keep)
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise OutputError(
            f"{root}: the run folder is not empty ({shown}); continue the run with --resume, "
            "choose another --out, or replace it with --overwrite"
        )
    return held


def _prepare(root: Path, resume: bool, overwrite: bool, keep: set[str]) -> None:
    if _check(root, resume, overwrite, keep):
        for name in RUN_OUTPUTS:
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    RunDir(root)
    ckpt = root / "checkpoints"
    if ckpt.is_dir():
        for tmp in ckpt.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)


def _legacy_application(state: Mapping[str, Any]) -> str | None:
    """Which application wrote a checkpoint from before the shared skeleton (no ``application``)."""
    if "meta" in state and "best_top1" in state:
        return "classification"
    if "data_size" in state and "epoch" in state:
        return "stereo"
    return None


def read_run_state(run_dir: str | Path, application: str) -> dict[str, Any]:
    """The last checkpoint of the run in ``run_dir``, checked to be a training checkpoint of
    ``application``; checkpoints written before the shared skeleton are converted (their
    ``epoch`` counted differently in each application). CheckpointError otherwise."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume (no last checkpoint in {run_dir})")
    state = load_checkpoint(path)
    found = state.get("application") or _legacy_application(state)
    if found is None:
        raise CheckpointError(f"{path}: not a training checkpoint (no 'application' or 'epochs_done' entry)")
    if found != application:
        raise CheckpointError(
            f"{path}: a {found} run; resume it with `{_COMMANDS.get(found, found)} --resume`, "
            f"not `{_COMMANDS.get(application, application)}`"
        )
    if "epochs_done" not in state:
        state = _upgrade(state, found)
    missing = [k for k in CHECKPOINT_FIELDS if k not in state]
    if missing and all(k in TRAINING_STATE for k in missing):
        raise CheckpointError(
            f"{path}: holds no training state (no {missing[0]!r}: an exported model); "
            "start a new run from it with --init instead of --resume"
        )
    if missing:
        raise CheckpointError(f"{path}: not a complete training checkpoint (no {missing[0]!r})")
    return state


def _upgrade(state: dict[str, Any], application: str) -> dict[str, Any]:
    """A pre-skeleton checkpoint in today's fields (stereo: ``epoch`` was the last finished
    epoch from 0; classification: the number done, and the best score was ``best_top1``)."""
    out = dict(state)
    history = list(state.get("history", []))
    if application == "stereo":
        out["epochs_done"] = int(state["epoch"]) + 1
        best = state.get("best")
        if best is not None:
            metric = "val_mae" if "val_mae" in best else "train_loss"
            out["best"] = {**best, "metric": metric}
    else:
        out["epochs_done"] = int(state["epoch"])
        top1 = float(state["best_top1"])
        rows = [r for r in history if r.get("test_top1") == top1]
        out["best"] = {"score": top1, "metric": "test_top1", **rows[-1]} if rows else None
    out["application"] = application
    out.setdefault("dgs_history", {})
    out.pop("epoch", None)
    out.pop("best_top1", None)
    return out


# ------------------------------------------------------------------------------ the loop
def fit(
    task: FitTask,
    run: RunDir,
    settings: FitSettings,
    device: torch.device,
    resume_state: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Run the epochs of ``task`` (from ``resume_state``'s ``epochs_done`` when given) into ``run``."""
    from tqdm import tqdm

    main = distributed.is_main()
    log = distributed.main_only(log)
    model, opt, sched = task.model, task.optimizer, task.scheduler
    scaler = make_scaler(settings, device)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    start = 0
    if resume_state is not None:
        _load_states(task, resume_state, scaler, run.checkpoints / "last.pt")
        start = int(resume_state["epochs_done"])
        history = [dict(r) for r in resume_state.get("history", [])]
        best = resume_state.get("best")
        set_rng_state(resume_state["rng"])
        log(f"resumed from {run.checkpoints / 'last.pt'} at epoch {start + 1}")
    if start >= settings.epochs:
        log(f"{run.root}: already trained for {settings.epochs} epochs")
        return FitResult(
            run, start, settings.epochs, history, best, _metrics(task, settings, start, history, best, 0.0)
        )
    stop = (
        settings.epochs if settings.epochs_this_run is None else min(settings.epochs, start + settings.epochs_this_run)
    )
    from torch.utils.tensorboard import SummaryWriter

    distributed.broadcast_module(model)  # every process starts from rank 0's weights
    writer = SummaryWriter(log_dir=str(run.tensorboard)) if main else None
    t0 = time.time()
    epoch = start
    try:
        for epoch in range(start, stop):
            if task.dgs is not None and task.dgs_batches is not None and task.dgs.due(epoch):
                task.dgs.run(*task.dgs_batches(epoch), task.dgs_loss)  # the batches are made only when due
            model.train()
            lr = float(opt.param_groups[0]["lr"])
            weight, loss_sum, sums = 0.0, 0.0, {}
            bar = tqdm(
                task.train_batches(epoch),
                desc=f"train {epoch + 1}/{settings.epochs}",
                disable=not (settings.progress and main),
                leave=False,
            )
            for batch in bar:
                step = train_step(task, batch, scaler, settings, device, epoch)
                w = float(step.weight)
                weight += w
                loss_sum += float(step.loss.detach()) * w
                for k, v in step.sums.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.set_postfix(loss=f"{loss_sum / max(weight, 1e-12):.3f}")
            sched.step()
            if distributed.world_size() > 1:
                keys = sorted(sums)
                weight, loss_sum, *totals = distributed.sum_floats([weight, loss_sum, *(sums[k] for k in keys)])
                sums = dict(zip(keys, totals))
                distributed.broadcast_module(model, parameters=False)  # rank 0's batch-norm statistics
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": loss_sum / max(weight, 1e-12),
                **{k: v / max(weight, 1e-12) for k, v in sums.items()},
            }
            if task.evaluate is not None:
                row.update(task.evaluate(model))
            if task.dgs is not None:
                row["surrogate_b"] = task.dgs.current_b()
            history.append(row)
            improved = _is_better(row, best, settings)
            if improved:
                metric = next(k for k in settings.best_metric if row.get(k) is not None)
                best = {"score": float(row[metric]), "metric": metric, **row}
            if not main:
                continue
            add_scalars(writer, row, epoch + 1)
            if task.on_epoch_end is not None:
                task.on_epoch_end(model, epoch + 1, writer)
            state = {
                "application": task.application,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "epochs_done": epoch + 1,
                "rng": rng_state(),
                "history": history,
                "best": best,
                "dgs_history": task.dgs.history if task.dgs is not None else {},
                "world_size": distributed.world_size(),
                **task.extra_state,
            }
            save_checkpoint(run.checkpoints / "last.pt", state)
            if improved:
                save_checkpoint(run.checkpoints / "best.pt", state)
            write_json(run.root / "metrics.json", _metrics(task, settings, epoch + 1, history, best, time.time() - t0))
            log(
                task.describe(row)
                if task.describe is not None
                else " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            )
    finally:
        if writer is not None:
            writer.close()
    done = history[-1]["epoch"] if history else start
    return FitResult(
        run, done, settings.epochs, history, best, _metrics(task, settings, done, history, best, time.time() - t0)
    )


def make_scaler(settings: FitSettings, device: torch.device) -> torch.amp.GradScaler:
    """The gradient scaler of a run: enabled (mixed precision) only when ``settings.amp`` and
    ``device`` is CUDA; a disabled scaler passes losses and steps through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=bool(settings.amp) and device.type == "cuda")


def train_step(
    task: FitTask, batch: Any, scaler: torch.amp.GradScaler, settings: FitSettings, device: torch.device, epoch: int = 0
) -> StepLoss:
    """One optimisation step of :func:`fit` on ``batch``: neurons reset, forward and loss under
    autocast (float16, when ``scaler`` is enabled), scaled backward, gradients averaged over the
    processes, clipping to ``settings.grad_clip`` (after unscaling), optimiser and scaler steps.

    Returns the task's :class:`StepLoss`; ConfigError naming ``epoch`` (0-based) when the loss is
    not finite.
    """
    from .spiking import reset

    model, opt = task.model, task.optimizer
    reset(model)
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
        step = task.step_loss(model, batch)
    loss = step.loss
    if not torch.isfinite(loss.detach()):
        raise ConfigError(f"train: the loss became {float(loss.detach())} at epoch {epoch + 1} (lower train.lr?)")
    scaler.scale(loss).backward()
    distributed.average_gradients(model.parameters())
    if settings.grad_clip:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), float(settings.grad_clip))
    scaler.step(opt)
    scaler.update()
    return step


def add_scalars(writer: Any, row: Mapping[str, Any], step: int, prefix: str | None = None) -> None:
    """Every numeric entry of ``row`` but ``epoch`` as a TensorBoard scalar at ``step``: tag
    ``prefix/key``, or without a prefix the key's first ``_`` as ``/`` (``train_loss`` -> ``train/loss``)."""
    for k, v in row.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch":
            writer.add_scalar(f"{prefix}/{k}" if prefix else k.replace("_", "/", 1), v, step)


def write_history_scalars(run: RunDir, history: Iterable[Mapping[str, Any]], prefix: str) -> None:
    """TensorBoard scalars of per-epoch rows (``epoch`` counted from 1), e.g. a search's history."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run.tensorboard))
    try:
        for i, row in enumerate(history, start=1):
            add_scalars(writer, row, int(row.get("epoch", i)), prefix)
    finally:
        writer.close()


def _is_better(row: Mapping[str, Any], best: Mapping[str, Any] | None, settings: FitSettings) -> bool:
    metric = next((k for k in settings.best_metric if row.get(k) is not None), None)
    if metric is None:
        raise ConfigError(f"best model: the epoch row has none of {list(settings.best_metric)}")
    if best is None:
        return True
    score = float(row[metric])
    return score < best["score"] if settings.best_mode == "min" else score > best["score"]


def _metrics(
    task: FitTask,
    settings: FitSettings,
    done: int,
    history: list[dict[str, Any]],
    best: dict[str, Any] | None,
    wall_s: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "epochs_done": done,
        "epochs": settings.epochs,
        "best": best,
        "wall_s_this_run": round(wall_s, 1),
        "history": history,
    }
    if task.summary is not None:
        out.update(task.summary(history, best))
    return out


def export_checkpoint(checkpoint: str | Path, out: str | Path, overwrite: bool = False) -> tuple[int, int]:
    """Write the training checkpoint ``checkpoint`` to ``out`` without its training state
    (:data:`TRAINING_STATE`: optimiser moments, schedule, AMP scaler, RNG states), which only
    ``--resume`` needs: the model, its settings, genotype, history and best row stay, so
    ``infer``, ``evaluate``, ``--checkpoint`` and ``--init`` read it as before. Written
    atomically; the input itself as ``out`` is refused (OutputError), and so is an existing
    ``out`` unless ``overwrite`` (it is replaced only once the new file is complete). Returns the
    two file sizes in bytes. CheckpointError when ``checkpoint`` is not a training checkpoint.
    """
    src = Path(checkpoint)
    target = check_output_path(out, [src], "--out")
    if target.exists() and not overwrite:
        raise OutputError(f"--out {target}: exists; give a new file name, or replace it with --overwrite")
    state = load_checkpoint(src)
    if "model" not in state or not ("application" in state or _legacy_application(state)):
        raise CheckpointError(f"{src}: not a training checkpoint (no 'model' and 'application' entries)")
    kept = {k: v for k, v in state.items() if k not in TRAINING_STATE}
    save_checkpoint(target, kept)
    return src.stat().st_size, target.stat().st_size


def _load_states(task: FitTask, state: Mapping[str, Any], scaler: torch.amp.GradScaler, path: Path) -> None:
    """Model, optimiser, schedule, scaler and DGS history from a checkpoint (CheckpointError if they do not fit)."""
    try:
        task.model.load_state_dict(state["model"])
        task.optimizer.load_state_dict(state["optimizer"])
        task.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and scaler.is_enabled():  # a CPU run's scaler state is empty
            scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path}: does not fit the model/optimiser of these settings ({first})") from exc
    if task.dgs is not None and state.get("dgs_history"):
        task.dgs.history = {k: list(v) for k, v in state["dgs_history"].items()}


def _stay_in_eval(module: nn.Module, _inputs: Any) -> None:
    """Forward pre-hook of a frozen part: back to eval mode (batch-norm statistics fixed) whatever
    ``model.train()`` set."""
    if module.training:
        module.eval()


def freeze_parts(model: nn.Module, names: Iterable[str], setting: str = "train.freeze") -> list[nn.Parameter]:
    """Fix the weights and batch-norm statistics of ``model``'s top-level parts ``names`` (no
    gradients; eval mode in every forward) and return the parameters left to train.

    ConfigError naming ``setting`` and the parts there are when a name is not a part of ``model``;
    or when nothing would be left to train.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    >>> len(freeze_parts(net, ["0"]))
    2
    >>> _ = net.train()(torch.ones(3, 2))
    >>> net[0].training, net[0].weight.requires_grad
    (False, False)
    """
    parts = dict(model.named_children())
    names = list(names)
    unknown = [n for n in names if n not in parts]
    if unknown:
        raise ConfigError(
            f"{setting}: {', '.join(map(repr, unknown))} not a part of the network (its parts: {', '.join(parts)})"
        )
    for name in names:
        parts[name].requires_grad_(False)
        parts[name].register_forward_pre_hook(_stay_in_eval)
    left = [p for p in model.parameters() if p.requires_grad]
    if names and not left:
        raise ConfigError(f"{setting}: every part is frozen, nothing is left to train")
    return left
