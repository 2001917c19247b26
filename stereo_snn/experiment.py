"""Ablations of the search, one implementation for both applications.

An ablation preset (YAML) names the application's settings preset (``base``), the seeds, the
overrides every run gets, and the questions. Each question compares variants; a variant is a
list of ``--set KEY=VALUE`` overrides (applied to its search and to its retraining) plus,
optionally, ``cells: ann | spiking`` (every derived cell retrained as an ANN / spiking cell).
A question with ``random: true`` compares its first variant (the searched architecture) with
random architectures of the same search space whose measured energy is within
``random.tolerance`` of it (:func:`stereo_snn.search.sampling.sample_at_energy`), all retrained
with the same settings. A ``sweep: {key, values}`` question makes one variant per value
(``set: [...]`` in the sweep: overrides every one of them gets as well).
Example (``classification/presets/ablations/digits.yaml`` has the full form)::

    base: digits
    seeds: [0, 1, 2]
    set: []            # every search and retraining
    search_set: []     # searches only
    train_set: []      # retrainings only
    random: {count: 5, tolerance: 0.1, max_draws: 400}
    questions:
      random: {title: searched vs random, random: true}
      dgs: {title: DGS on vs off, variants: {"on": [], "off": [search.dgs=false, train.dgs=false]}}
      energy: {title: energy sweep, sweep: {key: search.energy_weight, values: [0, 0.1, 1, 10]}}

Runs with identical resolved settings are shared (the searched architecture of the default
settings serves every question that contains it). ``OUT/ablations.json`` holds every run
(written atomically after each one); ``--resume`` skips the runs it lists as done.
``OUT/ablations.md`` is the table, ``OUT/figures/<question>.png`` the figures (metric against
measured energy, Pareto front marked). The application supplies an :class:`Application`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from .atomic import atomic_path, write_json, write_text
from .errors import ConfigError
from .settings import add_set_option, load_mapping

__all__ = [
    "Variant",
    "Question",
    "RandomPlan",
    "AblationPlan",
    "Application",
    "load_plan",
    "find_plan",
    "run_ablations",
    "summarize",
    "markdown_table",
    "pareto_front",
    "plot_question",
    "CELLS",
    "add_ablation_command",
    "plan_from_args",
    "print_summary",
    "quiet",
]

#: how a variant's derived cells are retrained: as searched, all spiking, all ANN (ReLU)
CELLS = ("searched", "spiking", "ann")
RESULTS = "ablations.json"
TABLE = "ablations.md"


@dataclass(frozen=True)
class Variant:
    """One arm of a question: its label, overrides and how its cells are retrained."""

    name: str
    set: tuple[str, ...] = ()
    cells: str = "searched"


@dataclass(frozen=True)
class Question:
    """A comparison: its key (file names), title and variants; ``random`` adds random architectures."""

    key: str
    title: str
    variants: tuple[Variant, ...]
    random: bool = False


@dataclass(frozen=True)
class RandomPlan:
    """Random architectures per seed, the relative energy window and the draws allowed."""

    count: int = 5
    tolerance: float = 0.1
    max_draws: int = 400


@dataclass(frozen=True)
class AblationPlan:
    """A whole ablation: see the module docstring for the YAML form."""

    base: str | None
    seeds: tuple[int, ...]
    questions: tuple[Question, ...]
    set: tuple[str, ...] = ()
    search_set: tuple[str, ...] = ()
    train_set: tuple[str, ...] = ()
    random: RandomPlan = field(default_factory=RandomPlan)
    data: Mapping[str, Any] = field(default_factory=dict)
    source: str = "plan"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (recorded in ``ablations.json``)."""
        return {
            "base": self.base,
            "seeds": list(self.seeds),
            "set": list(self.set),
            "search_set": list(self.search_set),
            "train_set": list(self.train_set),
            "random": vars(self.random).copy(),
            "data": dict(self.data),
            "questions": [
                {
                    "key": q.key,
                    "title": q.title,
                    "random": q.random,
                    "variants": [{"name": v.name, "set": list(v.set), "cells": v.cells} for v in q.variants],
                }
                for q in self.questions
            ],
            "source": self.source,
        }


# ------------------------------------------------------------------------------------ the plan
def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ConfigError(f"{where}: must be a list of KEY=VALUE strings, got {value!r}")
    return tuple(value)


def _variant(name: Any, spec: Any, where: str) -> Variant:
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"set", "cells"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (set, cells)")
        cells = spec.get("cells", "searched")
        if cells not in CELLS:
            raise ConfigError(f"{where}.cells: {cells!r} is not one of {', '.join(CELLS)}")
        return Variant(str(name), _strings(spec.get("set"), f"{where}.set"), cells)
    return Variant(str(name), _strings(spec, where))


def _question(key: str, spec: Any, source: str) -> Question:
    where = f"{source}: questions.{key}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a mapping (title, variants / sweep / random)")
    unknown = sorted(set(spec) - {"title", "variants", "sweep", "random"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (title, variants, sweep, random)")
    variants: list[Variant] = []
    raw = spec.get("variants") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}.variants: must map a name to its overrides")
    variants += [_variant(n, v, f"{where}.variants.{n}") for n, v in raw.items()]
    if "sweep" in spec:
        sweep = spec["sweep"]
        if not (
            isinstance(sweep, Mapping) and isinstance(sweep.get("key"), str) and isinstance(sweep.get("values"), list)
        ):
            raise ConfigError(f"{where}.sweep: must be {{key: SETTING, values: [...], set: [...] (optional)}}")
        unknown = sorted(set(sweep) - {"key", "values", "set"})
        if unknown:
            raise ConfigError(f"{where}.sweep: unknown key {unknown[0]!r} (key, values, set)")
        if not sweep["values"]:
            raise ConfigError(f"{where}.sweep.values: empty")
        extra = _strings(sweep.get("set"), f"{where}.sweep.set")
        for v in sweep["values"]:
            text = json.dumps(v) if not isinstance(v, str) else v
            variants.append(Variant(f"{sweep['key']}={text}", (f"{sweep['key']}={text}", *extra)))
    is_random = bool(spec.get("random", False))
    if is_random and not variants:
        variants = [Variant("searched")]
    if not variants:
        raise ConfigError(f"{where}: no variants (give variants, a sweep or random: true)")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: variant names repeat ({names})")
    return Question(key, str(spec.get("title", key)), tuple(variants), is_random)


def load_plan(path: str | os.PathLike, seeds: Sequence[int] | None = None) -> AblationPlan:
    """Read an ablation preset; ``seeds`` replaces its seeds. :class:`ConfigError` names the file and key."""
    source = str(path)
    d = load_mapping(path)
    known = {"base", "seeds", "set", "search_set", "train_set", "random", "questions", "data"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    seeds = list(seeds) if seeds is not None else d.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{source}: seeds must be a non-empty list of integers, got {seeds!r}")
    r = d.get("random") or {}
    if not isinstance(r, Mapping) or set(r) - {"count", "tolerance", "max_draws"}:
        raise ConfigError(f"{source}: random: a mapping of count, tolerance, max_draws")
    rp = RandomPlan(**{**vars(RandomPlan()), **dict(r)})
    if not (isinstance(rp.count, int) and rp.count >= 1 and isinstance(rp.max_draws, int) and rp.max_draws >= 1):
        raise ConfigError(f"{source}: random.count and random.max_draws must be integers >= 1")
    if not (isinstance(rp.tolerance, (int, float)) and 0 < rp.tolerance < 1):
        raise ConfigError(f"{source}: random.tolerance {rp.tolerance!r}: must be between 0 and 1 (0.1 = 10 %)")
    qs = d.get("questions")
    if not isinstance(qs, Mapping) or not qs:
        raise ConfigError(f"{source}: questions: a non-empty mapping of question name to its variants")
    data = d.get("data") or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: data: must be a mapping")
    base = d.get("base")
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{source}: base: the application's settings preset (a name or file), got {base!r}")
    return AblationPlan(
        base=base,
        seeds=tuple(dict.fromkeys(seeds)),
        questions=tuple(_question(str(k), v, source) for k, v in qs.items()),
        set=_strings(d.get("set"), f"{source}: set"),
        search_set=_strings(d.get("search_set"), f"{source}: search_set"),
        train_set=_strings(d.get("train_set"), f"{source}: train_set"),
        random=rp,
        data=dict(data),
        source=source,
    )


def find_plan(name: str, presets: Path) -> Path:
    """A preset file: ``name`` itself when it is a file, else ``presets/NAME.yaml``."""
    p = Path(name)
    if p.is_file():
        return p
    cand = presets / f"{name}.yaml"
    if cand.is_file():
        return cand
    have = ", ".join(sorted(q.stem for q in presets.glob("*.yaml")))
    raise ConfigError(f"--preset {name!r}: no such file and no such ablation preset (available: {have})")


def add_ablation_command(sub: Any, default_preset: str, what: str) -> Any:
    """Add ``experiment ablations`` (with its options) to the argparse subparsers ``sub`` of an
    application (``what`` names its search in the help); returns the ``ablations`` parser."""
    top = sub.add_parser("experiment", help=f"experiments on the {what} (ablations)")
    esub = top.add_subparsers(dest="experiment_command", metavar="EXPERIMENT", required=True)
    p = esub.add_parser(
        "ablations",
        help="searched vs random architectures, DGS, temporal and hybrid search, energy sweep (seeds, mean and spread)",
    )
    p.add_argument(
        "--preset", default=default_preset, help=f"ablation preset name or YAML file (default {default_preset})"
    )
    p.add_argument("--out", required=True, help="output folder (ablations.json, ablations.md, figures/, runs/)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, replacing the preset's (e.g. 0,1)")
    p.add_argument(
        "--questions", default=None, help="comma-separated question keys to run, of the preset's (e.g. random,dgs)"
    )
    add_set_option(p, "a setting for every search and retraining, e.g. threads=1 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace the ablation already in --out")
    p.add_argument("--resume", action="store_true", help="continue the ablation in --out, skipping finished runs")
    return p


def plan_from_args(args: Any, presets: Path) -> AblationPlan:
    """The plan the ``experiment ablations`` options name (``--seeds``, ``--set`` applied)."""
    import dataclasses

    seeds = None
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: comma-separated integers expected") from None
    plan = load_plan(find_plan(args.preset, presets), seeds)
    if getattr(args, "questions", None) is not None:
        plan = select_questions(plan, str(args.questions).split(","))
    extra = _strings(list(args.overrides), "--set")
    return dataclasses.replace(plan, set=(*plan.set, *extra)) if extra else plan


def select_questions(plan: AblationPlan, keys: Sequence[str]) -> AblationPlan:
    """``plan`` with only the questions ``keys`` (in the preset's order); ConfigError names an unknown key."""
    import dataclasses

    wanted = [k.strip() for k in keys if k.strip()]
    have = [q.key for q in plan.questions]
    unknown = [k for k in wanted if k not in have]
    if unknown or not wanted:
        raise ConfigError(
            f"--questions {','.join(keys)!r}: {'unknown question ' + repr(unknown[0]) if unknown else 'none given'}"
            f" (the preset has: {', '.join(have)})"
        )
    return dataclasses.replace(plan, questions=tuple(q for q in plan.questions if q.key in wanted))


def quiet(_message: str) -> None:
    """A ``log`` that prints nothing: the applications' searches and retrainings inside an
    ablation (the runner logs each run's result itself)."""


def print_summary(summary: Mapping[str, Any], out: str | os.PathLike) -> None:
    """The table, then where the files are."""
    print(markdown_table(summary))
    print(f"written: {Path(out) / RESULTS}, {Path(out) / TABLE}, {Path(out) / 'figures'}/")


# ------------------------------------------------------------------------------- the application
class Application(Protocol):
    """What an application supplies. Overrides are ``KEY=VALUE`` strings; energies in mJ."""

    name: str
    metric: str  # label of the score, e.g. "test top-1 (%)"
    higher_is_better: bool
    energy_unit: str  # e.g. "mJ per image"

    def settings(self, overrides: Sequence[str], command: str, seed: int) -> dict[str, Any]:
        """The resolved settings of a run (identical settings = the same run)."""

    def search(self, overrides: Sequence[str], seed: int, out: Path) -> Any:
        """Search; return the Genotype (also written to ``out``)."""

    def train(self, genotype_path: Path, overrides: Sequence[str], seed: int, out: Path) -> dict[str, float]:
        """Retrain the genotype; return ``{"metric": score, "energy_mj": measured energy of the trained net}``."""

    def untrained_energy(self, genotype: Any, overrides: Sequence[str], seed: int) -> float:
        """Measured energy (mJ) of the genotype's network at initialisation (seeded by ``seed``)."""


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _with_cells(genotype: Any, cells: str) -> Any:
    """``genotype`` with every cell spiking (``spiking``) or ANN (``ann``); as is for ``searched``."""
    import dataclasses

    if cells == "searched":
        return genotype
    flag = cells == "spiking"
    comps = {
        name: dataclasses.replace(c, cells=tuple(dataclasses.replace(cell, spiking=flag) for cell in c.cells))
        for name, c in genotype.components.items()
    }
    return dataclasses.replace(genotype, components=comps, settings={**genotype.settings, "cells": cells})


# ------------------------------------------------------------------------------------- the runs
class _Runner:
    def __init__(
        self, app: Application, plan: AblationPlan, root: Path, runs: dict[str, Any], log: Callable[[str], None]
    ):
        self.app, self.plan, self.root, self.runs, self.log = app, plan, root, runs, log
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def save(self) -> None:
        write_json(
            self.root / RESULTS,
            {
                "format": "stereo-snn-ablations",
                "application": self.app.name,
                "metric": self.app.metric,
                "higher_is_better": self.app.higher_is_better,
                "energy_unit": self.app.energy_unit,
                "plan": self.plan.to_dict(),
                "runs": self.runs,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def _done(self, run_id: str) -> dict[str, Any] | None:
        rec = self.runs.get(run_id)
        return rec if rec and rec.get("status") == "done" else None

    def _record(self, run_id: str, rec: dict[str, Any]) -> dict[str, Any]:
        self.runs[run_id] = {**rec, "status": "done"}
        self.save()
        return self.runs[run_id]

    def search(self, variant: Variant, seed: int) -> tuple[str, Any]:
        from .search import load_genotype, save_genotype

        over = [*self.plan.set, *variant.set, *self.plan.search_set]
        run_id = f"search-{_digest(self.app.settings(over, 'search', seed))}"
        out = self.root / "runs" / run_id
        if (rec := self._done(run_id)) is not None:
            return run_id, load_genotype(self.root / rec["genotype"])
        self.log(f"[seed {seed}] search: {variant.name} ({' '.join(variant.set) or 'defaults'})")
        t0 = time.time()
        genotype = self.app.search(over, seed, out)
        gpath = save_genotype(self.root / "runs" / "genotypes" / f"{run_id}.json", genotype)
        self._record(
            run_id,
            {
                "kind": "search",
                "seed": seed,
                "variant": variant.name,
                "overrides": over,
                "genotype": str(gpath.relative_to(self.root)),
                "wall_s": round(time.time() - t0, 1),
            },
        )
        return run_id, genotype

    def train(self, label: str, source: str, genotype: Any, variant: Variant, seed: int) -> dict[str, Any]:
        from .search import save_genotype

        over = [*self.plan.set, *variant.set, *self.plan.train_set]
        key = {"settings": self.app.settings(over, "train", seed), "genotype": source, "cells": variant.cells}
        run_id = f"train-{_digest(key)}"
        if (rec := self._done(run_id)) is not None:
            return rec
        out = self.root / "runs" / run_id
        gpath = save_genotype(self.root / "runs" / "genotypes" / f"{run_id}.json", _with_cells(genotype, variant.cells))
        self.log(f"[seed {seed}] train: {label}")
        t0 = time.time()
        result = self.app.train(gpath, over, seed, out)
        rec = self._record(
            run_id,
            {
                "kind": "train",
                "seed": seed,
                "label": label,
                "genotype_from": source,
                "cells": variant.cells,
                "overrides": over,
                "genotype": str(gpath.relative_to(self.root)),
                "metric": float(result["metric"]),
                "energy_mj": float(result["energy_mj"]),
                "wall_s": round(time.time() - t0, 1),
            },
        )
        self.log(
            f"[seed {seed}]   {self.app.metric} {rec['metric']:.4g}, energy {rec['energy_mj']:.4g} {self.app.energy_unit}"
        )
        return rec

    def sample(self, search_id: str, genotype: Any, variant: Variant, seed: int) -> tuple[str, list[Any]]:
        from .search import load_genotype, save_genotype
        from .search.sampling import sample_at_energy

        rp = self.plan.random
        over = [*self.plan.set, *variant.set, *self.plan.train_set]
        run_id = f"random-{_digest({'search': search_id, 'random': vars(rp), 'train': self.app.settings(over, 'train', seed)})}"
        if (rec := self._done(run_id)) is not None:
            return run_id, [load_genotype(self.root / p) for p in rec["genotypes"]]
        self.log(
            f"[seed {seed}] sampling {rp.count} random architectures within {rp.tolerance:.0%} of the searched energy"
        )
        t0 = time.time()
        found = sample_at_energy(
            genotype,
            lambda g: self.app.untrained_energy(g, over, seed),
            rp.count,
            rp.tolerance,
            rp.max_draws,
            random.Random(f"ablation-random-{seed}"),
        )
        paths = [
            save_genotype(self.root / "runs" / "genotypes" / f"{run_id}-{k}.json", g)
            for k, g in enumerate(found.genotypes)
        ]
        self._record(
            run_id,
            {
                "kind": "random",
                "seed": seed,
                "search": search_id,
                "draws": found.draws,
                "reference_untrained_mj": found.reference_mj,
                "untrained_mj": list(found.energies_mj),
                "genotypes": [str(p.relative_to(self.root)) for p in paths],
                "wall_s": round(time.time() - t0, 1),
            },
        )
        self.log(f"[seed {seed}]   {found.draws} draws for {rp.count} architectures in the window")
        return run_id, list(found.genotypes)


def _prepare(out: str | os.PathLike, resume: bool, overwrite: bool) -> tuple[Path, dict[str, Any]]:
    from .fit import prepare_run_dir

    root = prepare_run_dir(out, resume=resume, overwrite=overwrite).root
    if overwrite:
        for name in ("runs", "figures", RESULTS, TABLE):
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    runs: dict[str, Any] = {}
    if resume and (root / RESULTS).is_file():
        try:
            runs = json.loads((root / RESULTS).read_text(encoding="utf-8")).get("runs", {})
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"{root / RESULTS}: not an ablation results file ({exc}); use --overwrite") from exc
    return root, runs


def run_ablations(
    app: Application,
    plan: AblationPlan,
    out: str | os.PathLike,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every question of ``plan`` for every seed into ``out``; returns the summary.

    Writes ``out/ablations.json`` (every run, after each one), ``out/ablations.md`` and
    ``out/figures/<question>.png``. A non-empty ``out`` is refused unless ``resume`` (skip
    the runs already done) or ``overwrite``.
    """
    root, runs = _prepare(out, resume, overwrite)
    runner = _Runner(app, plan, root, runs, log)
    runner.save()
    rows: list[dict[str, Any]] = []
    for seed in plan.seeds:
        for q in plan.questions:
            for i, v in enumerate(q.variants):
                search_id, genotype = runner.search(v, seed)
                rec = runner.train(v.name, search_id, genotype, v, seed)
                rows.append({"question": q.key, "variant": v.name, "seed": seed, "run": rec})
                if q.random and i == 0:
                    sample_id, randoms = runner.sample(search_id, genotype, v, seed)
                    for k, g in enumerate(randoms):
                        rrec = runner.train(f"random {k + 1}", f"{sample_id}-{k}", g, v, seed)
                        rows.append({"question": q.key, "variant": "random", "seed": seed, "run": rrec})
    summary = summarize(app, plan, rows, runs)
    runner.save()
    write_json(root / "summary.json", summary)
    write_text(root / TABLE, markdown_table(summary))
    for q in plan.questions:
        plot_question(summary, q.key, root / "figures" / f"{q.key}.png")
    return summary


# --------------------------------------------------------------------------------- the summary
def _stats(values: Sequence[float]) -> dict[str, float | int]:
    vals = [float(v) for v in values]
    return {
        "n": len(vals),
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
        "median": statistics.median(vals),
    }


def summarize(
    app: Application, plan: AblationPlan, rows: Sequence[Mapping[str, Any]], runs: Mapping[str, Any]
) -> dict[str, Any]:
    """Per question and variant: every run's (seed, metric, energy) and mean / spread over runs.

    For a random question also: per seed, whether the searched architecture beat the median
    of that seed's random architectures, and the draws the sampling took.
    """
    questions = []
    for q in plan.questions:
        mine = [r for r in rows if r["question"] == q.key]
        names = [v.name for v in q.variants] + (["random"] if q.random else [])
        variants = []
        for name in names:
            pts = [
                {
                    "seed": r["seed"],
                    "label": r["run"]["label"],
                    "metric": r["run"]["metric"],
                    "energy_mj": r["run"]["energy_mj"],
                }
                for r in mine
                if r["variant"] == name
            ]
            if not pts:
                continue
            variants.append(
                {
                    "name": name,
                    "runs": pts,
                    "metric": _stats([p["metric"] for p in pts]),
                    "energy_mj": _stats([p["energy_mj"] for p in pts]),
                }
            )
        entry: dict[str, Any] = {"key": q.key, "title": q.title, "variants": variants}
        if q.random:
            better = (lambda a, b: a > b) if app.higher_is_better else (lambda a, b: a < b)
            per_seed = []
            for seed in plan.seeds:
                s = [r["run"]["metric"] for r in mine if r["seed"] == seed and r["variant"] == q.variants[0].name]
                rnd = [r["run"]["metric"] for r in mine if r["seed"] == seed and r["variant"] == "random"]
                if s and rnd:
                    med = statistics.median(rnd)
                    per_seed.append(
                        {"seed": seed, "searched": s[0], "random_median": med, "searched_wins": better(s[0], med)}
                    )
            draws = [
                rec["draws"] for rec in runs.values() if rec.get("kind") == "random" and rec.get("seed") in plan.seeds
            ]
            entry["searched_vs_random"] = per_seed
            entry["draws"] = draws
        questions.append(entry)
    return {
        "application": app.name,
        "metric": app.metric,
        "higher_is_better": app.higher_is_better,
        "energy_unit": app.energy_unit,
        "seeds": list(plan.seeds),
        "random": vars(plan.random).copy(),
        "questions": questions,
    }


def _fmt(s: Mapping[str, float]) -> str:
    return f"{s['mean']:.4g} ± {s['std']:.2g}" + (f" ({s['min']:.4g}–{s['max']:.4g})" if s["n"] > 1 else "")


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The summary as Markdown: one table per question (mean ± sample std, min–max over runs)."""
    metric, unit = summary["metric"], summary["energy_unit"]
    arrow = "higher is better" if summary["higher_is_better"] else "lower is better"
    lines = [
        f"# Ablations: {summary['application']}",
        "",
        f"Seeds {summary['seeds']}; {metric} ({arrow}); measured energy in {unit} (trained network, "
        "spikingjelly op counters). Each cell: mean ± sample std (min–max) over the runs.",
    ]
    for q in summary["questions"]:
        lines += ["", f"## {q['title']}", "", f"| variant | runs | {metric} | energy ({unit}) |", "|---|---|---|---|"]
        for v in q["variants"]:
            lines.append(f"| {v['name']} | {v['metric']['n']} | {_fmt(v['metric'])} | {_fmt(v['energy_mj'])} |")
        if "searched_vs_random" in q:
            wins = [s for s in q["searched_vs_random"] if s["searched_wins"]]
            r = summary["random"]
            lines += [
                "",
                f"Searched beats the median of its seed's random architectures in {len(wins)} of "
                f"{len(q['searched_vs_random'])} seeds. Random architectures: {r['count']} per seed, untrained "
                f"measured energy within {r['tolerance']:.0%} of the searched one; draws per seed: {q['draws']}.",
            ]
    return "\n".join(lines) + "\n"


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points (energy, metric) no other point beats on both (lower energy, better
    metric), ordered by energy."""
    sign = 1.0 if higher_is_better else -1.0
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1]))
    front, best = [], -math.inf
    for i in idx:
        if sign * points[i][1] > best:
            front.append(i)
            best = sign * points[i][1]
    return front


def plot_question(summary: Mapping[str, Any], key: str, path: str | os.PathLike) -> Path:
    """Metric against measured energy for every run of question ``key``, one colour per variant,
    the variant means as large markers and the Pareto front of all runs as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = next(q for q in summary["questions"] if q["key"] == key)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    allpts: list[tuple[float, float]] = []
    for k, v in enumerate(q["variants"]):
        colour = f"C{k % 10}"
        xs = [p["energy_mj"] for p in v["runs"]]
        ys = [p["metric"] for p in v["runs"]]
        allpts += list(zip(xs, ys))
        ax.scatter(xs, ys, s=18, color=colour, alpha=0.55)
        ax.scatter(
            [v["energy_mj"]["mean"]], [v["metric"]["mean"]], s=90, color=colour, edgecolor="black", label=v["name"]
        )
    front = [allpts[i] for i in pareto_front(allpts, summary["higher_is_better"])]
    if front:
        ax.plot(
            [p[0] for p in front],
            [p[1] for p in front],
            "k--o",
            lw=1,
            mfc="none",
            ms=11,
            label="Pareto front (all runs)",
        )
    energies = [p[0] for p in allpts if p[0] > 0]
    if energies and max(energies) / min(energies) > 20:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    ax.set_xlabel(f"measured energy ({summary['energy_unit']})")
    ax.set_ylabel(summary["metric"])
    ax.set_title(q["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return Path(path)
