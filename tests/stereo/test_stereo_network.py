"""Cost volume, soft-argmin regression, padding, losses and configs (no engine needed)."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.stereo.config import StereoConfig, load_config
from stereo_snn.stereo.losses import smooth_l1_disparity, subpixel_cross_entropy
from stereo_snn.stereo.network import concat_cost_volume, soft_argmin


def test_cost_volume_pairs_left_x_with_right_x_minus_d():
    torch.manual_seed(0)
    left = torch.randn(2, 1, 3, 4, 7)
    right = torch.randn(2, 1, 3, 4, 7)
    vol = concat_cost_volume(left, right, levels=3)
    assert vol.shape == (2, 1, 6, 3, 4, 7)
    for d in range(3):
        for x in range(7):
            if x >= d:
                assert torch.equal(vol[:, :, :3, d, :, x], left[..., x])
                assert torch.equal(vol[:, :, 3:, d, :, x], right[..., x - d])
            else:
                assert torch.count_nonzero(vol[:, :, :, d, :, x]) == 0


@pytest.mark.parametrize("k", [1, 4, 6])
def test_soft_argmin_recovers_the_minimum_cost_disparity(k):
    # a sharp minimum at candidate k (1/3 resolution) -> disparity 3k at full resolution
    cost = torch.full((1, 8, 2, 3), 60.0)
    cost[:, k] = -60.0
    out = soft_argmin(cost, max_disparity=21, size=(6, 9))
    assert out["disparity"].shape == (1, 6, 9)
    assert out["log_prob"].shape == (1, 21, 6, 9)
    assert torch.allclose(out["log_prob"].exp().sum(1), torch.ones(1, 6, 9), atol=1e-5)
    assert torch.allclose(out["disparity"], torch.full((1, 6, 9), 3.0 * k), atol=1e-3)


def test_soft_argmin_refuses_a_range_its_volume_does_not_cover():
    with pytest.raises(ValueError):
        soft_argmin(torch.zeros(1, 8, 2, 3), max_disparity=23, size=(6, 9))


def test_smooth_l1_only_on_valid_pixels():
    pred = torch.tensor([[[1.0, 5.0], [0.0, 2.0]]], requires_grad=True)
    gt = torch.tensor([[[1.5, 1.0], [9.0, 2.0]]])
    valid = torch.tensor([[[True, True], [False, True]]])
    loss = smooth_l1_disparity(pred, gt, valid)
    # 0.5*0.5^2 = 0.125 ; |4|-0.5 = 3.5 ; 0 -> mean over 3 valid
    assert abs(float(loss.detach()) - (0.125 + 3.5 + 0.0) / 3) < 1e-6
    loss.backward()
    assert pred.grad[0, 1, 0] == 0
    none_valid = smooth_l1_disparity(pred, gt, torch.zeros_like(valid))
    assert float(none_valid.detach()) == 0.0


def test_subpixel_cross_entropy_prefers_distribution_at_gt():
    gt = torch.full((1, 1, 1), 2.3)
    valid = torch.ones(1, 1, 1, dtype=torch.bool)
    logits_good = torch.full((1, 6, 1, 1), -10.0)
    logits_good[0, 2] = 0.0
    logits_good[0, 3] = -0.5
    logits_bad = torch.full((1, 6, 1, 1), -10.0)
    logits_bad[0, 5] = 0.0
    good = subpixel_cross_entropy(torch.log_softmax(logits_good, 1), gt, valid)
    bad = subpixel_cross_entropy(torch.log_softmax(logits_bad, 1), gt, valid)
    assert float(good) < float(bad)
    with pytest.raises(ConfigError):
        subpixel_cross_entropy(torch.log_softmax(logits_good, 1), gt, valid, b=0)


def test_config_presets_and_errors(tmp_path):
    cfg = load_config("tiny")
    assert 3 * (cfg.disparity_levels - 1) + 1 >= cfg.max_disparity > 3 * (cfg.disparity_levels - 2) + 1
    assert StereoConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(**{"train.epochs": 3}).train.epochs == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("network:\n  feature_layerz: 2\n")
    with pytest.raises(ConfigError, match="feature_layerz"):
        load_config(bad)
    bad.write_text("train:\n  loss: l2\n")
    with pytest.raises(ConfigError, match="train.loss"):
        load_config(bad)
    with pytest.raises(ConfigError, match="preset"):
        load_config("no_such_preset")
    for key, value in (("search.energy_target_mj", 0.0), ("search.energy_dual_lr", -1.0)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config("tiny", {key: value})
    assert load_config("tiny", {"search.energy_target_mj": 2.5}).search.energy_target_mj == 2.5
    # no config: the settings that made the bundled model
    assert load_config(None) == load_config("dsec") != load_config("mvsec")


def test_network_alphas_reach_every_trellis_and_bad_values_are_named_early():
    from stereo_snn.search import ALPHA_MODES
    from stereo_snn.stereo.network import trellis_configs

    cfg = load_config("tiny")
    assert cfg.network.alphas == "shared"
    for mode in ALPHA_MODES:
        c = load_config("tiny", {"network.alphas": mode})
        assert {t.alphas for t in trellis_configs(c, c.input_channels).values()} == {mode}
    with pytest.raises(ConfigError, match="network.alphas must be 'shared' or 'per_node', not 'tied'"):
        load_config("tiny", {"network.alphas": "tied"})


def test_network_max_skip_caps_the_skips_of_every_derived_cell():
    from stereo_snn.stereo.network import build_supernet

    cfg = load_config("tiny", {"network.max_skip": 0})
    model = build_supernet(cfg)
    for trellis in (model.feature, model.matching):
        assert trellis.config.max_skip == 0
        with torch.no_grad():  # make skip the argmax of every edge (the shared op logits of every cell)
            trellis.arch_alpha[:, list(trellis.config.candidates).index("skip_connect")] += 10.0
        ops = [op for cg in trellis.derive().cells for node in cg.edges for _, op in node]
        assert ops and "skip_connect" not in ops
    assert load_config("tiny").network.max_skip is None
    with pytest.raises(ConfigError, match="max_skip"):
        build_supernet(load_config("tiny", {"network.max_skip": -2}))


def test_a_frame_counts_the_feature_net_of_both_views_in_expected_and_measured_energy(tiny_cfg, tiny_genotype):
    from stereo_snn.search import PJ_PER_MJ, BilevelConfig, Searcher, energy_report
    from stereo_snn.stereo.network import RUNS_PER_FRAME, build_network, build_supernet

    g = torch.Generator().manual_seed(0)
    left, right = (4 * torch.rand(2, 1, tiny_cfg.input_channels, 24, 36, generator=g) for _ in range(2))
    # the search's expected energy per frame: the feature net twice, the matching net once
    supernet = build_supernet(tiny_cfg)
    searcher = Searcher(
        supernet,
        lambda m, b: m(*b)["disparity"].mean(),
        BilevelConfig(),
        supernet.components(),
        runs_per_sample=RUNS_PER_FRAME,
    )
    supernet(left, right)
    e_feat, e_match = (float(supernet.components()[k].expected_energy().detach()) for k in ("feature", "matching"))
    assert float(searcher.energy_pj().detach()) == pytest.approx(2 * e_feat + e_match)
    # the measured report of one frame runs the feature net on both views, as the expected term counts it
    net = build_network(tiny_cfg, tiny_genotype).eval()
    report = energy_report(net, (left, right))
    measured = sum(layer.energy_mj for layer in report.layers if layer.name.startswith("feature."))
    with torch.no_grad():
        net(left, right)
    assert 2 * float(net.feature.expected_energy()) / PJ_PER_MJ == pytest.approx(measured, rel=0.1)
    with pytest.raises(ConfigError, match="runs_per_sample"):
        Searcher(supernet, lambda m, b: 0, BilevelConfig(), supernet.components(), runs_per_sample={"nope": 2})
