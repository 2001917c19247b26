"""The classifier on the engine's trellis: shapes, class count from the data, auxiliary head,
genotype compatibility errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from classification import config as C
from classification import network as N
from stereo_snn.errors import ConfigError, GenotypeError
from stereo_snn.search import Genotype
from stereo_snn.spiking import reset

TINY = dataclasses.replace(
    C.resolve_config().model, time_steps=2, layers=2, channels=4, levels=2, neuron_kinds=("lif",)
)


def test_supernet_forward_shapes_and_class_count():
    torch.manual_seed(0)
    model = N.build_supernet(TINY, num_classes=100, in_channels=3)
    x = torch.randn(3, 3, 8, 8)
    reset(model)
    logits = model(x)
    assert logits.shape == (3, 100)
    # the readout is averaged over the T time steps of the repeated image
    reset(model)
    steps = model(x.unsqueeze(0).expand(2, *x.shape))
    torch.testing.assert_close(steps, logits)
    assert model.backbone.config.moves == ("down", "same") and model.backbone.config.out_level == 1
    logits.sum().backward()
    assert all(p.grad is not None for p in model.backbone.arch_parameters())
    with pytest.raises(ConfigError, match="expected \\[B, C, H, W\\]"):
        model(torch.randn(8, 8))


def test_fixed_network_from_genotype_with_auxiliary_head():
    torch.manual_seed(0)
    supernet = N.build_supernet(TINY, num_classes=7, in_channels=1)
    genotype = Genotype({N.COMPONENT: supernet.backbone.derive()})
    model = N.build_from_genotype(
        genotype, dataclasses.replace(TINY, channels=6, auxiliary_layer=1), num_classes=7, in_channels=1
    )
    assert model.backbone.config.channels == 6 and not model.backbone.is_supernet
    x = torch.randn(4, 1, 8, 8)
    reset(model)
    logits, aux = model(x, with_aux=True)
    assert logits.shape == (4, 7) and aux.shape == (4, 7)
    (logits.sum() + aux.sum()).backward()
    assert model.auxiliary.readout.weight.grad is not None
    reset(model)
    assert model(x).shape == (4, 7)  # plain call: logits only
    meta = N.model_meta(model)
    rebuilt = N.build_from_meta(genotype, meta)
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    reset(model), reset(rebuilt)
    torch.testing.assert_close(model(x), rebuilt(x))


def test_genotype_incompatibilities_are_named():
    supernet = N.build_supernet(TINY, num_classes=10, in_channels=1)
    comp = supernet.backbone.derive()
    with pytest.raises(GenotypeError, match="in_channels is 1, the dataset has 3-channel images"):
        N.build_from_genotype(Genotype({N.COMPONENT: comp}), TINY, 10, 3, "g.json")
    with pytest.raises(GenotypeError, match="g.json: no 'backbone' component \\(found: feature\\)"):
        N.build_from_genotype(Genotype({"feature": comp}), TINY, 10, 1, "g.json")
    with pytest.raises(ConfigError, match="model.layers 5: the genotype g.json has 2 layers"):
        N.build_from_genotype(Genotype({N.COMPONENT: comp}), dataclasses.replace(TINY, layers=5), 10, 1, "g.json")
    with pytest.raises(ConfigError, match="auxiliary_layer 3: must be between 1 and the 2 layers"):
        N.build_from_genotype(Genotype({N.COMPONENT: comp}), dataclasses.replace(TINY, auxiliary_layer=3), 10, 1)
    with pytest.raises(ConfigError, match="model.channels 0: must be >= 1"):
        dataclasses.replace(TINY, channels=0)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        N.build_supernet(TINY, 1, 1)


def test_default_search_keeps_the_network_spiking_unless_an_energy_term_asks_for_hybrid():
    from classification.network import build_supernet

    cfg = C.resolve_config(overrides=["model.layers=2", "model.channels=4", "model.levels=2", "model.time_steps=2"])
    assert cfg.model.hybrid == "auto" and not cfg.search.energy_term
    net = build_supernet(cfg.model, 10, 1, cfg.search.energy_term)
    assert not net.backbone.config.hybrid
    assert all(c.spiking for c in net.backbone.derive().cells)
    priced = cfg.with_overrides(["search.energy_weight=0.1"])
    assert build_supernet(priced.model, 10, 1, priced.search.energy_term).backbone.config.hybrid
    asked = cfg.with_overrides(["model.hybrid=true"])
    assert build_supernet(asked.model, 10, 1, asked.search.energy_term).backbone.config.hybrid
    assert net.backbone.config.tau_candidates == (1.25, 4.0)  # temporal search by default
    with pytest.raises(ConfigError, match="model.hybrid"):
        C.resolve_config(overrides=["model.hybrid=sometimes"])
