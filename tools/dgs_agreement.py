#!/usr/bin/env python3
"""How many batch pairs a DGS round needs: do two rounds from the same state agree?

On the scikit-learn digits supernet (``classify`` preset ``digits_search``), the weights are
trained for ``--warm-epochs`` epochs; then, for every round length N in ``--batches``, two DGS
rounds run from that same state (weights and temperatures restored in between) on two
different shuffles of the training split's halves. For each Dspike surrogate the direction of
its move (down, stay, up) is compared; the fraction that agree is printed per N and seed.
Chance level is about 1/3 (the direction has three outcomes).

    python tools/dgs_agreement.py --seeds 0 1 --batches 4 16 32 [--min-evidence 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import torch


def _direction(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: (after[k] > before[k] + 1e-9) - (after[k] < before[k] - 1e-9) for k in before}


def measure(seed: int, batches: list[int], warm_epochs: int, min_evidence: float = 0.0) -> list[dict]:
    from classification.config import resolve_config
    from classification.data import build_data
    from classification.network import build_supernet
    from classification.train import Limited, classification_loss
    from stereo_snn.search import SurrogateSearch, split_parameters
    from stereo_snn.spiking import reset

    cfg = resolve_config("digits", command="search", overrides=[f"seed={seed}"])
    torch.manual_seed(seed)
    data = build_data(cfg.data, cfg.search.batch_size, seed, search_fraction=cfg.search.train_fraction)
    model = build_supernet(cfg.model, data.num_classes, data.in_channels)
    loss_fn = classification_loss()
    weights, _ = split_parameters(model)
    opt = torch.optim.SGD(weights, lr=cfg.search.lr, momentum=0.9, weight_decay=3e-4)
    for epoch in range(warm_epochs):
        for batch in Limited(data.search_train, None, epoch):
            reset(model)
            opt.zero_grad()
            loss_fn(model, batch).backward()
            torch.nn.utils.clip_grad_norm_(weights, 5.0)
            opt.step()
    state = copy.deepcopy(model.state_dict())
    rows = []
    for n in batches:
        dirs = []
        for k in range(2):
            model.load_state_dict(state)
            dgs = SurrogateSearch(model, dataclass_replace(cfg.dgs, max_batches=n, min_evidence=min_evidence))
            before = dgs.current_b()
            t0 = time.process_time()
            after = dgs.run(
                Limited(data.search_train, None, 100 + 10 * k), Limited(data.search_val, None, 200 + 10 * k), loss_fn
            )
            cpu = time.process_time() - t0
            dirs.append(_direction(before, after))
        agree = sum(dirs[0][k] == dirs[1][k] for k in dirs[0])
        moved = sum(dirs[0][k] != 0 for k in dirs[0])
        rows.append(
            {
                "seed": seed,
                "min_evidence": min_evidence,
                "batches": n,
                "layers": len(dirs[0]),
                "agree": agree,
                "moved_first_round": moved,
                "cpu_s_per_round": round(cpu, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--batches", type=int, nargs="+", default=[4, 16, 32])
    p.add_argument("--warm-epochs", type=int, default=3)
    p.add_argument("--min-evidence", type=float, default=0.0, help="DGSConfig.min_evidence (0: argmax rule)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for s in args.seeds for r in measure(s, args.batches, args.warm_epochs, args.min_evidence)]
    for n in args.batches:
        sel = [r for r in rows if r["batches"] == n]
        agree, total = sum(r["agree"] for r in sel), sum(r["layers"] for r in sel)
        print(
            f"{n:3d} batch pairs per round: {agree}/{total} surrogates agree in direction ({100 * agree / total:.0f} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
