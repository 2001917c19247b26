"""``stereo-snn experiment ablations``: the stereo side of the shared ablations
(:mod:`stereo_snn.experiment`). The score is the last epoch's validation MAE (px, lower is
better) on the held-out sequences; the energy is the measured compute energy per frame (one
stereo window, both views) on the first validation window. Presets live in
``configs/ablations/`` (``cpu``: simulated sequences at reduced size; ``gpu``: DSEC).

The plan's ``data`` section says where the sequences come from: ``simulate: N`` (with
``size: [H, W]``, ``duration_ms``, ``sim_seed``: N DSEC-layout sequences simulated into
``OUT/data`` once) or ``path: FOLDER`` (with ``format: dsec|mvsec``); ``val_count``
sequences are held out for validation; ``search_max_batches`` limits a search epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..experiment import AblationPlan, quiet
from ..settings import parse_overrides

__all__ = ["PLANS_DIR", "StereoAblation"]

PLANS_DIR = Path(__file__).resolve().parent / "configs" / "ablations"
_DATA_KEYS = ("simulate", "size", "duration_ms", "sim_seed", "path", "format", "val_count", "search_max_batches")


class StereoAblation:
    """The :class:`stereo_snn.experiment.Application` of stereo matching."""

    name = "stereo"
    metric = "validation MAE (px)"
    higher_is_better = False
    energy_unit = "mJ per frame"

    def __init__(self, plan: AblationPlan, out: Path, device: str | None = None):
        d = dict(plan.data)
        unknown = sorted(set(d) - set(_DATA_KEYS))
        if unknown:
            raise ConfigError(f"{plan.source}: data.{unknown[0]}: unknown (known: {', '.join(_DATA_KEYS)})")
        if bool(d.get("simulate")) == bool(d.get("path")):
            raise ConfigError(f"{plan.source}: data: give either simulate: N or path: FOLDER")
        self.base, self.data, self.out, self.device = plan.base or "tiny", d, Path(out), device
        self._sources: tuple[list[Any], list[Any]] | None = None
        self._window: dict[str, Any] = {}

    def config(self, overrides: Sequence[str]) -> Any:
        from .config import load_config

        return load_config(self.base, dict(parse_overrides(overrides)))

    def settings(self, overrides: Sequence[str], command: str, seed: int) -> dict[str, Any]:
        """The settings the command uses (a retraining reads no ``search`` settings)."""
        config = self.config(overrides).to_dict()
        if command == "train":
            config.pop("search")
        return {"config": config, "seed": seed, "command": command, "data": self.data}

    def sources(self) -> tuple[list[Any], list[Any]]:
        """Training and validation sequences (simulated into OUT/data on first use)."""
        if self._sources is None:
            from .data import open_sources, split_validation

            d = self.data
            if d.get("simulate"):
                from ..events.simulator import make_demo_sequences

                folder = self.out / "data"
                if not folder.is_dir() or not any(folder.iterdir()):
                    size = tuple(d.get("size", (48, 64)))
                    make_demo_sequences(
                        folder,
                        int(d["simulate"]),
                        seed=int(d.get("sim_seed", 0)),
                        size=(int(size[0]), int(size[1])),
                        duration_ms=float(d.get("duration_ms", 400.0)),
                    )
                found = open_sources(folder, "dsec")
            else:
                found = open_sources(d["path"], d.get("format", "dsec"))
            self._sources = split_validation(found, int(d.get("val_count", 1)))
            if not self._sources[1]:
                raise ConfigError("ablation data: no validation sequence (need >= 2 sequences and val_count >= 1)")
        return self._sources

    def search(self, overrides: Sequence[str], seed: int, out: Path) -> Any:
        from .search import run_search

        train, _ = self.sources()
        return run_search(
            self.config(overrides),
            train,
            out,
            seed=seed,
            device=self.device,
            max_batches=self.data.get("search_max_batches"),
            overwrite=True,
            log=quiet,
        )

    def _frame(self, model: Any, cfg: Any) -> tuple[Any, Any]:
        """Left and right inputs of the first validation window (one frame), on the model's device."""
        from .data import StereoWindowDataset, pad_collate

        key = repr(cfg.to_dict())
        if key not in self._window:
            ds = StereoWindowDataset(self.sources()[1], cfg, seed=0)
            self._window[key] = pad_collate([ds[0]])
        batch = self._window[key]
        dev = next(model.parameters()).device
        return batch["left"].to(dev), batch["right"].to(dev)

    def train(self, genotype_path: Path, overrides: Sequence[str], seed: int, out: Path) -> dict[str, float]:
        from ..search import load_genotype
        from .network import load_model
        from .train import train_genotype

        cfg = self.config(overrides)
        train, val = self.sources()
        res = train_genotype(
            cfg,
            load_genotype(genotype_path),
            train,
            val,
            out,
            seed=seed,
            device=self.device,
            progress=False,
            overwrite=True,
            log=quiet,
        )
        from ..search import energy_report

        model = load_model(res.run_dir / "checkpoints" / "last.pt", self.device).model
        energy = energy_report(model, self._frame(model, cfg)).compute_mj
        return {"metric": float(res.history[-1]["val_mae"]), "energy_mj": energy}

    def untrained_energy(self, genotype: Any, overrides: Sequence[str], seed: int) -> float:
        from ..runtime import resolve_device, seed_everything
        from ..search.sampling import init_energy
        from .network import build_network

        cfg = self.config(overrides)
        seed_everything(seed)
        model = build_network(cfg, genotype).to(resolve_device(self.device))
        return init_energy(model, self._frame(model, cfg))
