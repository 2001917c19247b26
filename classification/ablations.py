"""``stereo-snn classify experiment ablations``: the classification side of the shared ablations
(:mod:`stereo_snn.experiment`). The score is the last epoch's test top-1 (%); the energy is
the measured compute energy per test image (``energy.images`` images, spikingjelly counters).
Ablation presets live in ``presets/ablations/`` (``digits``: CPU scale; ``cifar10``: GPUs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from stereo_snn.errors import ConfigError
from stereo_snn.experiment import AblationPlan, quiet

__all__ = ["PLANS_DIR", "ClassifyAblation"]

PLANS_DIR = Path(__file__).resolve().parent / "presets" / "ablations"


class ClassifyAblation:
    """The :class:`stereo_snn.experiment.Application` of image classification."""

    name = "classification"
    metric = "test top-1 (%)"
    higher_is_better = True
    energy_unit = "mJ per image"

    def __init__(self, plan: AblationPlan):
        if plan.data:
            raise ConfigError(
                f"{plan.source}: data.{sorted(plan.data)[0]}: classification takes its data from the "
                "settings (give data.* overrides in set)"
            )
        self.base = plan.base or "digits"
        self._images: dict[str, Any] = {}

    def config(self, overrides: Sequence[str], command: str, seed: int) -> Any:
        from .config import resolve_config

        return resolve_config(self.base, None, [*overrides, f"seed={seed}"], command=command)

    def settings(self, overrides: Sequence[str], command: str, seed: int) -> dict[str, Any]:
        """The settings the command uses: a search reads no ``train``/``energy`` settings, a
        retraining no ``search`` settings (so a sweep of a search setting shares retrainings)."""
        unused = ("train", "energy") if command == "search" else ("search",)
        return {k: v for k, v in self.config(overrides, command, seed).to_dict().items() if k not in unused}

    def search(self, overrides: Sequence[str], seed: int, out: Path) -> Any:
        from .search import search_run

        return search_run(self.config(overrides, "search", seed), out, overwrite=True, log=quiet).genotype

    def train(self, genotype_path: Path, overrides: Sequence[str], seed: int, out: Path) -> dict[str, float]:
        from .evaluate import energy_checkpoint
        from .train import train_run

        cfg = self.config([*overrides, f"model.genotype={genotype_path}"], "train", seed)
        result = train_run(cfg, out, progress=False, overwrite=True, log=quiet)
        energy = energy_checkpoint(result.run.checkpoints / "last.pt")
        return {"metric": float(result.metrics["test_top1"]), "energy_mj": energy.per_image()["snn"]["compute_mj"]}

    def untrained_energy(self, genotype: Any, overrides: Sequence[str], seed: int) -> float:
        from stereo_snn.runtime import seed_everything
        from stereo_snn.search.sampling import init_energy

        from .data import build_data
        from .network import build_from_genotype

        cfg = self.config(overrides, "train", seed)
        key = repr((cfg.data, cfg.energy.images))
        if key not in self._images:
            data = build_data(cfg.data, cfg.energy.images, cfg.seed, eval_batch_size=cfg.energy.images)
            x, _ = next(iter(data.test.batches(0)))
            self._images[key] = (x, data.num_classes, data.in_channels)
        x, classes, channels = self._images[key]
        seed_everything(seed)
        model = build_from_genotype(genotype, cfg.model, classes, channels)
        return init_energy(model, x) / x.shape[0]
