"""The stereo networks under autocast (mixed precision, as training on CUDA runs them): they run,
and the disparity regression stays in float32 (half precision is off by up to 0.5 px at 128 px)."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.bench.gpu import stereo_batch
from stereo_snn.stereo.losses import disparity_loss
from stereo_snn.stereo.network import build_supernet, load_model, soft_argmin


@pytest.fixture(scope="module")
def bundled():
    return load_model(None, device="cpu")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_bundled_network_under_cpu_autocast_gives_finite_float32_disparities_and_gradients(bundled, dtype) -> None:
    cfg, model = bundled.config, bundled.model.train()
    batch = stereo_batch(cfg, 1, 24, 48, seed=0)
    with torch.autocast("cpu", dtype=dtype):
        out = model(batch["left"], batch["right"])
        loss = disparity_loss(out, batch)
    loss.backward()
    for key in ("disparity", "coarse"):
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key]).all()
    d = out["disparity"].detach()
    assert 0.0 <= float(d.min()) and float(d.max()) <= cfg.max_disparity
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)


def test_pyramid_supernet_runs_under_bfloat16_autocast(bundled) -> None:
    cfg = bundled.config
    torch.manual_seed(0)
    net = build_supernet(cfg)
    batch = stereo_batch(cfg, 1, 24, 48, seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch["left"], batch["right"])
    assert out["disparity"].dtype == torch.float32 and torch.isfinite(out["disparity"]).all()


def test_soft_argmin_of_a_half_precision_cost_regresses_in_float32() -> None:
    cost = torch.randn(1, 44, 4, 6).to(torch.bfloat16)
    got = soft_argmin(cost, 128, (12, 18))["disparity"]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, soft_argmin(cost.float(), 128, (12, 18))["disparity"])  # no rounding inside
