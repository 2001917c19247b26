"""The coarse-to-fine (pyramid) stereo network: coincidence volumes, shapes, disparity range,
genotype round trip, the deep-supervision loss, and the full-resolution refinement stage
(``network.fine_channels``) with ``train.freeze`` to train it on a trained network."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import CheckpointError, ConfigError, GenotypeError
from stereo_snn.fit import freeze_parts
from stereo_snn.search import ComponentGenotype, Genotype
from stereo_snn.stereo.config import load_config
from stereo_snn.stereo.losses import coarse_cross_entropy, coarse_target, disparity_loss, smooth_l1_disparity
from stereo_snn.stereo.network import (
    bilinear_mask_logits,
    borrowed_fine,
    build_network,
    build_supernet,
    coarse_levels,
    coarse_step,
    coincidence_volume,
    convex_upsample,
    event_spikes,
    expected_candidate,
    load_state_checked,
    local_coincidence,
    shift_columns,
    trellis_configs,
)

PYRAMID = {
    "network.design": "pyramid",
    "network.groups": 4,
    "network.refine_channels": 4,
    "network.refine_radius": 2,
    "network.refine_levels": 2,
}


def pyramid_cfg(**extra):
    return load_config("tiny", {**PYRAMID, **extra})


def test_coincidence_volume_is_the_group_or_of_left_x_and_right_x_minus_d():
    torch.manual_seed(0)
    left = (torch.rand(2, 1, 4, 3, 9) < 0.4).float()
    right = (torch.rand(2, 1, 4, 3, 9) < 0.4).float()
    vol = coincidence_volume(left, right, levels=4, groups=2)
    assert vol.shape == (2, 1, 2, 4, 3, 9)
    assert set(vol.unique().tolist()) <= {0.0, 1.0}  # spikes in, spikes out
    for d in range(4):
        for x in range(9):
            if x < d:
                assert torch.count_nonzero(vol[..., d, :, x]) == 0
                continue
            both = (left[..., x] * right[..., x - d]).view(2, 1, 2, 2, 3)
            assert torch.equal(vol[..., d, :, x], both.amax(3))
    with pytest.raises(ValueError, match="groups"):
        coincidence_volume(left, right, levels=2, groups=3)


def test_shift_columns_reads_right_x_minus_shift_and_zero_outside():
    right = torch.arange(12.0).view(1, 1, 2, 6)
    shift = torch.tensor([[[0, 1, 2, 3, 7, -1], [2, 2, 2, 2, 2, 2]]])
    out = shift_columns(right, shift)
    assert out[0, 0, 0].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # x - s: 0, 0, 0, 0, -3 (out), 6 (out)
    assert out[0, 0, 1].tolist() == [0.0, 0.0, 6.0, 7.0, 8.0, 9.0]


@pytest.mark.parametrize("base", [0.0, 2.0, 2.6])
def test_local_coincidence_at_the_rounded_disparity_matches_the_full_volume(base):
    torch.manual_seed(1)
    left = (torch.rand(1, 4, 5, 16) < 0.5).float()
    right = (torch.rand(1, 4, 5, 16) < 0.5).float()
    full = coincidence_volume(left, right, levels=8, groups=2)  # [1, 2, 8, 5, 16]
    local = local_coincidence(left, right, torch.full((1, 5, 16), base), radius=2, groups=2)
    assert local.shape == (1, 2 * 5, 5, 16)
    local = local.view(1, 2, 5, 5, 16)
    for j, k in enumerate(range(-2, 3)):
        d = round(base) + k
        if d < 0:
            continue
        assert torch.equal(local[:, :, j, :, d:], full[:, :, d, :, d:])


@pytest.mark.parametrize("max_disp,scale", [(128, 2), (192, 2), (64, 2), (12, 1)])
def test_coarse_candidates_cover_the_whole_disparity_range(max_disp, scale):
    levels = coarse_levels(max_disp, scale)
    step = 3 * scale
    assert (levels - 1) * step >= max_disp - 1 > (levels - 2) * step


def test_pyramid_forward_shapes_range_and_gradients_on_an_odd_size():
    torch.manual_seed(0)
    cfg = pyramid_cfg()
    net = build_supernet(cfg)
    assert set(net.components()) == {"feature", "matching", "refine"}
    t = cfg.time_steps
    left = (torch.rand(t, 2, 2, 31, 50) < 0.2).float()
    right = torch.roll(left, -3, dims=-1)
    out = net(left, right)
    assert out["disparity"].shape == out["coarse"].shape == (2, 31, 50)
    disp = out["disparity"].detach()
    assert float(disp.min()) >= 0.0 and float(disp.max()) <= cfg.max_disparity
    disparity_loss(
        out, {"disparity": torch.full((2, 31, 50), 3.0), "valid": torch.ones(2, 31, 50, dtype=torch.bool)}
    ).backward()
    for name, part in net.components().items():
        grads = [p.grad for p in part.weight_parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads), name


def test_pyramid_genotype_builds_a_fixed_network_that_loads_its_weights():
    torch.manual_seed(2)
    cfg = pyramid_cfg()
    sup = build_supernet(cfg)
    genotype = Genotype({name: part.derive() for name, part in sup.components().items()})
    net = build_network(cfg, genotype)
    twin = build_network(cfg, genotype)
    load_state_checked(twin, net.state_dict(), "test")
    x = (torch.rand(cfg.time_steps, 1, 2, 24, 36) < 0.2).float()
    net.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(net(x, x)["disparity"], twin(x, x)["disparity"])
    partial = Genotype({k: v for k, v in genotype.components.items() if k != "refine"})
    with pytest.raises(GenotypeError, match="refine"):
        build_network(cfg, partial)
    with pytest.raises(GenotypeError, match="in_channels"):
        build_network(pyramid_cfg(**{"network.refine_radius": 1}), genotype)


def test_convex_upsampling_starts_as_bilinear_and_can_keep_an_edge_sharp():
    import torch.nn.functional as F

    torch.manual_seed(5)
    x = torch.rand(2, 5, 7) * 40
    init = bilinear_mask_logits().view(1, 9, 9, 1, 1).expand(2, 9, 9, 5, 7)
    up = convex_upsample(x, init)
    bilinear = F.interpolate(x.unsqueeze(1), scale_factor=3, mode="bilinear", align_corners=False).squeeze(1)
    assert up.shape == (2, 15, 21)
    assert torch.allclose(up, bilinear, atol=0.05)  # the 1e-4 stand-ins for zero weights
    # a step edge: all weight on the own coarse pixel keeps it a step (bilinear blurs it)
    step = torch.zeros(1, 1, 4)
    step[..., 2:] = 30.0
    own = torch.full((1, 9, 9, 1, 4), -30.0)
    own[:, :, 4] = 0.0  # neighbour 4 = the centre
    sharp = convex_upsample(step, own)
    assert torch.allclose(sharp[0, 1], torch.tensor([0.0] * 6 + [30.0] * 6), atol=1e-6)
    blurred = F.interpolate(step.unsqueeze(1), scale_factor=3, mode="bilinear", align_corners=False)[0, 0, 1]
    assert 0 < float(blurred[5]) < 30


def test_convex_pyramid_trains_its_mask_head_and_fine_tunes_from_a_bilinear_checkpoint():
    torch.manual_seed(6)
    cfg = pyramid_cfg()
    sup = build_supernet(cfg)
    genotype = Genotype({name: part.derive() for name, part in sup.components().items()})
    bilinear = build_network(cfg, genotype).eval()
    convex = build_network(pyramid_cfg(**{"network.upsample": "convex"}), genotype)
    with pytest.raises(Exception, match="missing keys: upsample_head"):
        load_state_checked(convex, bilinear.state_dict(), "bilinear.pt")
    fresh = load_state_checked(convex, bilinear.state_dict(), "bilinear.pt", allow_missing=True)
    assert fresh == ["upsample_head.bias", "upsample_head.weight"]
    convex.eval()
    x = (torch.rand(cfg.time_steps, 1, 2, 31, 50) < 0.2).float()
    with torch.no_grad():
        a, b = bilinear(x, x)["disparity"], convex(x, x)["disparity"]
    assert b.shape == a.shape == (1, 31, 50)
    assert float((a - b).abs().mean()) < 0.05  # starts as (nearly) the bilinear network
    convex.train()
    out = convex(x, torch.roll(x, -3, dims=-1))
    disparity_loss(
        out, {"disparity": torch.full((1, 31, 50), 3.0), "valid": torch.ones(1, 31, 50, dtype=torch.bool)}
    ).backward()
    assert float(convex.upsample_head.weight.grad.abs().sum()) > 0
    with pytest.raises(ConfigError, match="network.upsample"):
        load_config("tiny", {"network.upsample": "convex"})  # the concat design has no refinement


def test_deep_supervision_adds_the_weighted_coarse_error():
    gt = torch.full((1, 2, 2), 4.0)
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    fine, coarse = torch.full((1, 2, 2), 4.5), torch.full((1, 2, 2), 7.0)
    batch = {"disparity": gt, "valid": valid}
    base = smooth_l1_disparity(fine, gt, valid)
    both = disparity_loss({"disparity": fine, "coarse": coarse}, batch, coarse_weight=0.25)
    assert torch.allclose(both, base + 0.25 * smooth_l1_disparity(coarse, gt, valid))
    assert torch.allclose(disparity_loss({"disparity": fine, "coarse": coarse}, batch, coarse_weight=0.0), base)


def test_coarse_target_averages_cells_and_drops_those_across_a_depth_edge():
    gt = torch.full((1, 6, 12), 30.0)
    gt[:, :, 7:] = 90.0  # a depth edge inside the second column of 3x4-px cells
    valid = torch.ones(1, 6, 12, dtype=torch.bool)
    valid[:, :3, :4] = False  # the first cell has no ground truth
    target, mask = coarse_target(gt, valid, (2, 3), step=6.0)
    assert target.shape == mask.shape == (1, 2, 3)
    assert torch.allclose(target[0, 1, 0], torch.tensor(5.0))  # 30 px / 6 px per candidate
    assert torch.allclose(target[0, 1, 2], torch.tensor(15.0))
    assert mask[0].tolist() == [[False, False, True], [True, False, True]]  # no gt; the edge cells


def test_coarse_cross_entropy_is_lowest_for_the_two_hot_target_and_rewards_the_right_candidate():
    gt = torch.full((1, 6, 6), 15.0)  # candidate 2.5 of spacing 6 px: half on 2, half on 3
    valid = torch.ones(1, 6, 6, dtype=torch.bool)
    two_hot = torch.full((1, 5, 1, 1), 1e-9)
    two_hot[:, 2:4] = 0.5
    best = coarse_cross_entropy(-two_hot.log().expand(1, 5, 2, 2), gt, valid, step=6.0)
    assert torch.allclose(best, torch.tensor(2.0).log(), atol=1e-5)  # the target's own entropy
    torch.manual_seed(0)
    for _ in range(5):  # any other distribution costs more
        other = torch.randn(1, 5, 2, 2)
        assert coarse_cross_entropy(other, gt, valid, step=6.0) > best
    right = torch.zeros(1, 5, 2, 2)
    right[:, 2] = -3.0  # low cost at the right candidate
    wrong = torch.zeros(1, 5, 2, 2)
    wrong[:, 0] = -3.0
    assert coarse_cross_entropy(right, gt, valid, 6.0) < coarse_cross_entropy(wrong, gt, valid, 6.0)


def test_coarse_loss_ce_trains_the_coarse_volume_of_a_pyramid_network():
    cfg = pyramid_cfg(**{"train.coarse_loss": "ce"})
    net = build_supernet(cfg)
    torch.manual_seed(0)
    left = (torch.rand(cfg.time_steps, 1, 2, 24, 36) < 0.2).float()
    right = torch.roll(left, -3, dims=-1)
    out = net(left, right)
    assert out["coarse_cost"].shape[1] == coarse_levels(cfg.max_disparity, cfg.network.coarse_scale)
    batch = {"disparity": torch.full((1, 24, 36), 9.0), "valid": torch.ones(1, 24, 36, dtype=torch.bool)}
    step = float(coarse_step(cfg.network.coarse_scale))
    loss = disparity_loss(out, batch, coarse_weight=0.5, coarse_loss="ce", coarse_step=step)
    expected = smooth_l1_disparity(out["disparity"], batch["disparity"], batch["valid"])
    expected = expected + 0.5 * coarse_cross_entropy(out["coarse_cost"], batch["disparity"], batch["valid"], step)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert net.head.weight.grad is not None and net.head.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="coarse_loss"):
        disparity_loss(out, batch, coarse_loss="kl", coarse_step=step)
    with pytest.raises(ConfigError, match="train.coarse_loss"):
        load_config("tiny", {"train.coarse_loss": "ce"})  # the concat design has no coarse volume


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("network.design", "volume", "network.design"),
        ("train.coarse_loss", "l2", "train.coarse_loss"),
        ("network.groups", 0, "network.groups"),
        ("network.refine_radius", 0, "network.refine_radius"),
        ("train.loss", "subpixel_ce", "train.loss"),
        ("train.coarse_weight", -1.0, "train.coarse_weight"),
        ("network.upsample", "nearest", "network.upsample"),
    ],
)
def test_pyramid_settings_are_validated(key, value, match):
    with pytest.raises(ConfigError, match=match):
        pyramid_cfg(**{key: value})


def test_groups_must_divide_the_feature_channels():
    with pytest.raises(ConfigError, match="network.groups"):
        build_supernet(pyramid_cfg(**{"network.groups": 3}))


def test_a_config_whose_network_differs_from_the_genotypes_is_refused_naming_the_setting():
    torch.manual_seed(4)
    cfg = pyramid_cfg()
    sup = build_supernet(cfg)
    genotype = Genotype({name: part.derive() for name, part in sup.components().items()})
    with pytest.raises(
        GenotypeError, match="components.matching was searched with layers=2 but the config gives layers=3"
    ):
        build_network(pyramid_cfg(**{"network.matching_layers": 3}), genotype)
    build_network(pyramid_cfg(**{"max_disparity": 24}), genotype)  # the range is not part of the genotype


FINE = {"network.fine_channels": 4, "network.fine_layers": 1, "network.fine_radius": 2}


def genotype_without_fine(seed: int = 0) -> Genotype:
    torch.manual_seed(seed)
    sup = build_supernet(pyramid_cfg())
    return Genotype({name: part.derive() for name, part in sup.components().items()})


def events(cfg, h=31, w=50, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(cfg.time_steps, batch, cfg.input_channels, h, w, generator=g) < 0.2).float()
    return x, torch.roll(x, -3, dims=-1)


def test_event_spikes_split_each_channel_into_on_and_off():
    x = torch.tensor([[[[0.5, -2.0, 0.0]]], [[[0.0, 0.0, -0.1]]]])  # [2 channels... as T=2, C=1]
    s = event_spikes(x)
    assert s.shape == (2, 2, 1, 3)
    assert s[0, 0, 0].tolist() == [1.0, 0.0, 0.0] and s[0, 1, 0].tolist() == [0.0, 1.0, 0.0]
    assert s[1, 0, 0].tolist() == [0.0, 0.0, 0.0] and s[1, 1, 0].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("stride", [1, 2])
def test_fine_stage_shapes_range_and_gradients_at_full_and_half_resolution(stride):
    torch.manual_seed(1)
    cfg = pyramid_cfg(**FINE, **{"network.fine_stride": stride})
    net = build_supernet(cfg)
    assert set(net.components()) == {"feature", "matching", "refine", "fine"}
    left, right = events(cfg, batch=2)
    out = net(left, right)
    assert out["disparity"].shape == out["coarse"].shape == (2, 31, 50)
    disp = out["disparity"].detach()
    assert float(disp.min()) >= 0.0 and float(disp.max()) <= cfg.max_disparity
    target = {"disparity": torch.full((2, 31, 50), 3.0), "valid": torch.ones(2, 31, 50, dtype=torch.bool)}
    disparity_loss(out, target).backward()
    assert float(net.fine_head.weight.grad.abs().sum()) > 0
    # its head starts at zero, so the trellis learns from the second step on
    with torch.no_grad():
        net.fine_head.weight -= 0.1 * net.fine_head.weight.grad
    net.zero_grad()
    disparity_loss(net(left, right), target).backward()
    grads = [p.grad for p in net.fine.weight_parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_fine_stage_starts_as_the_identity_and_moves_at_most_its_radius():
    cfg = pyramid_cfg(**FINE)
    genotype = genotype_without_fine(2)
    base = build_network(pyramid_cfg(), genotype).eval()
    fine = build_network(cfg, genotype).eval()
    fresh = load_state_checked(fine, base.state_dict(), "base.pt", allow_missing=True)
    assert fresh and all(k.startswith(("fine.", "fine_head.")) for k in fresh)
    left, right = events(cfg, seed=3)
    with torch.no_grad():
        a = base(left, right)["disparity"]
        b = fine(left, right)["disparity"]
        assert torch.allclose(a, b, atol=1e-5)  # zero head: a zero residual
        # all weight on the last offset: +radius px wherever the clamp leaves room
        fine.fine_head.bias.copy_(torch.tensor([-40.0, -40.0, -40.0, -40.0, 40.0]))
        c = fine(left, right)["disparity"]
    room = a < cfg.max_disparity - 2
    assert room.any()
    assert torch.allclose((c - a)[room], torch.full_like(c[room], 2.0), atol=1e-3)
    assert float((c - a).max()) <= 2.0 + 1e-4


def test_a_genotype_without_a_fine_component_borrows_the_refinements_cells():
    genotype = genotype_without_fine(4)
    cfg = pyramid_cfg(**FINE)
    net = build_network(cfg, genotype)
    want = trellis_configs(cfg, cfg.input_channels)["fine"]
    assert want.in_channels == 2 * cfg.input_channels * (2 * 2 + 2)
    borrowed = borrowed_fine(genotype.components["refine"], want)
    assert borrowed.cells == genotype.components["refine"].cells
    assert borrowed.path == genotype.components["refine"].path
    assert net.fine.out_channels == net.refine.out_channels  # the same path, the same channels (4 and 4)
    refine = genotype.components["refine"]
    deep = ComponentGenotype(config=refine.config, path=(0, 1), cells=refine.cells)
    with pytest.raises(GenotypeError, match="network.fine_levels >= 2"):
        borrowed_fine(deep, trellis_configs(pyramid_cfg(**FINE, **{"network.fine_levels": 1}), 2)["fine"])


def test_a_searched_fine_component_is_derived_and_rebuilt():
    torch.manual_seed(5)
    cfg = pyramid_cfg(**FINE)
    sup = build_supernet(cfg)
    genotype = Genotype({name: part.derive() for name, part in sup.components().items()})
    assert "fine" in genotype.components
    net = build_network(cfg, genotype).eval()
    left, right = events(cfg, seed=6)
    with torch.no_grad():
        assert net(left, right)["disparity"].shape == (1, 31, 50)


@pytest.mark.parametrize(
    "extra,match",
    [
        ({"network.fine_channels": -1}, "network.fine_channels"),
        ({"network.fine_channels": 4, "network.fine_radius": 0}, "network.fine_radius"),
        ({"network.fine_channels": 4, "network.fine_stride": 0}, "network.fine_stride"),
        ({"network.fine_channels": 4, "network.fine_levels": 5}, "network.fine_levels"),
        ({"train.freeze": [""]}, "train.freeze"),
    ],
)
def test_fine_settings_are_validated(extra, match):
    with pytest.raises(ConfigError, match=match):
        pyramid_cfg(**extra)


def test_the_concat_design_has_no_fine_stage():
    with pytest.raises(ConfigError, match="network.fine_channels"):
        load_config("tiny", {"network.fine_channels": 4})


def test_freeze_parts_keeps_frozen_weights_and_statistics_and_trains_the_rest():
    torch.manual_seed(7)
    cfg = pyramid_cfg(**FINE)
    net = build_network(cfg, genotype_without_fine(7))
    frozen = ["feature", "matching", "refine", "head", "refine_head"]
    params = freeze_parts(net, frozen)
    names = {n.split(".")[0] for n, p in net.named_parameters() if any(p is q for q in params)}
    assert names == {"fine", "fine_head"}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(params, lr=0.1)
    net.train()
    left, right = events(cfg, batch=2, seed=8)
    target = {"disparity": torch.full((2, 31, 50), 5.0), "valid": torch.ones(2, 31, 50, dtype=torch.bool)}
    for _ in range(2):
        opt.zero_grad()
        disparity_loss(net(left, right), target).backward()
        opt.step()
    after = net.state_dict()
    for key, value in before.items():
        if key.split(".")[0] in frozen:
            assert torch.equal(after[key], value), key  # weights and running statistics
    assert not torch.equal(after["fine_head.weight"], before["fine_head.weight"])
    assert net.feature.training is False and net.fine.training is True
    with pytest.raises(ConfigError, match="train.freeze: 'features' not a part"):
        freeze_parts(net, ["features"])
    with pytest.raises(ConfigError, match="nothing is left to train"):
        freeze_parts(net, [name for name, _ in net.named_children()])


def test_train_freeze_setting_reaches_the_optimiser(sim_root, tmp_path):
    from stereo_snn.stereo.data import open_sources
    from stereo_snn.stereo.train import train_genotype

    genotype = genotype_without_fine(9)
    cfg = pyramid_cfg(
        **FINE,
        **{"train.epochs": 1, "train.image_every": 0, "train.freeze": ["feature", "matching"], "train.lr": 0.01},
    )
    torch.manual_seed(10)
    start = build_network(cfg, genotype).state_dict()
    torch.save({"model": start}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="bare.pt: not a stereo checkpoint .no 'config' entry"):
        train_genotype(cfg, genotype, [], [], tmp_path / "x", progress=False, init=tmp_path / "bare.pt")
    given = {k: v for k, v in start.items() if not k.startswith("fine_head.")}  # its zero start, as built
    torch.save({"model": given, "config": cfg.to_dict()}, tmp_path / "start.pt")
    sources = open_sources(sim_root)
    lines: list[str] = []
    train_genotype(
        cfg, genotype, sources[:1], [], tmp_path / "run", progress=False, init=tmp_path / "start.pt", log=lines.append
    )
    assert any(line.endswith("(not in it, left as built: fine_head (2 tensors))") for line in lines)
    after = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(after[k], start[k]) for k in start if k.startswith(("feature.", "matching.")))
    assert any(not torch.equal(after[k], start[k]) for k in start if k.startswith("refine."))
    assert any(not torch.equal(after[k], start[k]) for k in start if k.startswith("fine_head."))


def test_reach_loss_trains_the_refinement_only_where_it_can_correct():
    gt = torch.tensor([[[10.0, 10.0, 10.0, 10.0]]])
    valid = torch.tensor([[[True, True, True, False]]])
    base = torch.tensor([[[9.0, 4.0, 11.5, 0.0]]], requires_grad=True)  # errors -1, -6, +1.5
    residual = torch.tensor([[[0.5, 0.5, -0.5, 0.5]]], requires_grad=True)
    out = {"disparity": (base + residual).clamp(0, 64), "fine_base": base, "fine_residual": residual}
    batch = {"disparity": gt, "valid": valid}
    loss = disparity_loss(out, batch, fine_reach=2, max_disparity=64)
    plain = smooth_l1_disparity(out["disparity"], gt, valid)
    within = smooth_l1_disparity(out["disparity"], gt, valid & (base.detach() - gt).abs().le(2)) * 2 / 3
    assert torch.allclose(loss, plain + within)
    loss.backward()
    assert residual.grad[0, 0, 1] == 0 and residual.grad[0, 0, 3] == 0  # beyond reach, not valid
    assert residual.grad[0, 0, 0] < 0 and residual.grad[0, 0, 2] > 0  # towards the ground truth
    assert float(base.grad[0, 0, 1]) != 0  # the network before it learns from every valid pixel
    base.grad = residual.grad = None
    disparity_loss(out, batch).backward()  # without a reach: one term on every valid pixel
    assert float(residual.grad[0, 0, 1]) != 0
    with pytest.raises(ConfigError, match="train.fine_loss"):
        pyramid_cfg(**{"train.fine_loss": "near"})


def test_coarse_window_takes_the_expectation_around_the_most_likely_candidate():
    cost = torch.full((1, 6, 1, 2), 20.0)
    cost[0, 1, 0, 0] = cost[0, 2, 0, 0] = 0.0  # one mode between candidates 1 and 2
    cost[0, 0, 0, 1] = 0.0  # two modes: 0 (slightly more likely) and 5
    cost[0, 5, 0, 1] = 0.1
    everywhere, near = expected_candidate(cost), expected_candidate(cost, 1)
    assert torch.allclose(everywhere[0, 0, 0, 0], near[0, 0, 0, 0], atol=1e-6)  # one mode: the same
    assert abs(float(near[0, 0, 0, 0]) - 1.5) < 1e-3
    assert 2.0 < float(everywhere[0, 0, 0, 1]) < 3.0 and float(near[0, 0, 0, 1]) < 1e-3
    genotype = genotype_without_fine(11)
    net = build_network(pyramid_cfg(), genotype).eval()
    windowed = build_network(pyramid_cfg(**{"network.coarse_window": 1}), genotype).eval()
    load_state_checked(windowed, net.state_dict(), "net.pt")  # no weights of its own
    left, right = events(pyramid_cfg(), seed=12)
    with torch.no_grad():
        assert windowed(left, right)["disparity"].shape == net(left, right)["disparity"].shape
    with pytest.raises(ConfigError, match="network.coarse_window"):
        pyramid_cfg(**{"network.coarse_window": -1})
    with pytest.raises(ConfigError, match="network.coarse_window"):
        load_config("tiny", {"network.coarse_window": 1})


def test_reconfigure_changes_a_weight_free_setting_and_refuses_the_rest(tmp_path, capsys):
    from stereo_snn.cli import main
    from stereo_snn.runtime import save_checkpoint
    from stereo_snn.search import genotype_to_dict
    from stereo_snn.stereo.network import load_model

    cfg = pyramid_cfg()
    genotype = genotype_without_fine(13)
    net = build_network(cfg, genotype)
    state = {"model": net.state_dict(), "config": cfg.to_dict(), "genotype": genotype_to_dict(genotype), "epoch": 3}
    src = save_checkpoint(tmp_path / "model.pt", state)
    out = tmp_path / "windowed.pt"
    assert main(["reconfigure", str(src), "--set", "network.coarse_window=1", "--out", str(out)]) == 0
    assert "network.coarse_window=1" in capsys.readouterr().out
    loaded = load_model(out, device="cpu")
    assert loaded.config.network.coarse_window == 1 and loaded.model.coarse_window == 1
    assert loaded.info["epoch"] == 3
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.model.state_dict().items())
    assert load_model(src, device="cpu").config.network.coarse_window == 0  # the input is unchanged
    for args, match in [
        (["--set", "network.groups=2", "--out", str(tmp_path / "a.pt")], "network.groups: a trained model cannot"),
        (["--out", str(tmp_path / "b.pt")], "nothing to change"),
        (["--set", "network.coarse_window=2", "--out", str(out)], "exists"),
        (["--set", "network.coarse_window=2", "--out", str(src)], "is one of the inputs"),
        (["--set", "network.coarse_window=-1", "--out", str(tmp_path / "c.pt")], "network.coarse_window"),
    ]:
        assert main(["reconfigure", str(src), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "c.pt").exists()


def test_the_bundled_models_are_exported_and_export_keeps_the_network(tmp_path, capsys):
    from stereo_snn.cli import main
    from stereo_snn.fit import TRAINING_STATE
    from stereo_snn.runtime import load_checkpoint
    from stereo_snn.stereo.models import bundled_models
    from stereo_snn.stereo.network import load_model

    for entry in bundled_models():
        assert not set(TRAINING_STATE) & set(load_checkpoint(entry.path)), entry.name  # no dead weight shipped
        out = tmp_path / f"{entry.name}.pt"
        assert main(["export", str(entry.path), "--out", str(out)]) == 0
        assert "training state left out" in capsys.readouterr().out
        full, small = load_model(entry.path, device="cpu"), load_model(out, device="cpu")
        assert full.config.to_dict() == small.config.to_dict() and full.info == small.info
        state = small.model.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in full.model.state_dict().items())


def test_expected_energy_of_a_whole_frame_matches_the_measured_report():
    # every searched part with the heads that read it, the volumes' spikes priced as ACs
    from stereo_snn.search import PJ_PER_MJ, Genotype, energy_report
    from stereo_snn.stereo.network import RUNS_PER_FRAME

    cfg = pyramid_cfg(**{"network.upsample": "convex", "network.fine_channels": 4})
    torch.manual_seed(0)
    supernet = build_supernet(cfg)
    genotype = Genotype(components={k: c.derive() for k, c in supernet.components().items()}, settings={})
    net = build_network(cfg, genotype)
    g = torch.Generator().manual_seed(1)
    left, right = (8 * torch.rand(2, 1, cfg.input_channels, 24, 36, generator=g) for _ in range(2))
    heads = ("head", "refine_head", "upsample_head", "fine_head")
    with torch.no_grad():
        for name in heads:  # zero weights (the identity start) would count as spikes, no op at all
            torch.nn.init.normal_(getattr(net, name).weight, std=0.1)
        net.train()(left, right)  # batch-norm statistics of these inputs: lively neurons
    net.eval()
    report = energy_report(net, (left, right))
    with torch.no_grad():
        net(left, right)
    parts = net.components()
    assert parts["feature"].output_spikes() and parts["feature"]._readers == ()
    measured = sum(layer.energy_mj for layer in report.layers if layer.name.split(".")[0] in (*parts, *heads))
    expected = sum(RUNS_PER_FRAME.get(k, 1) * float(c.expected_energy()) for k, c in parts.items()) / PJ_PER_MJ
    assert expected == pytest.approx(measured, rel=0.1)
    # the matching net's stem reads spikes: ACs, far below the MACs of a real-valued input
    stem = [layer for layer in report.layers if layer.name.startswith("matching.stem.")]
    assert stem and all(layer.macs == 0 and layer.acs > 0 for layer in stem)
