"""stereo-snn bench stereo: runs end to end on a tiny frame, writes its figures, rejects bad sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stereo_snn.bench.stereo import main, synthetic_pair
from stereo_snn.errors import ConfigError


def test_synthetic_pair_shifts_the_right_view() -> None:
    left, right = synthetic_pair(500, 20, 30, 4.0, 50_000, seed=1)
    assert len(left) == len(right) == 500
    inside = left.x >= 4.0
    np.testing.assert_allclose(right.x[inside], left.x[inside] - 4.0, atol=1e-5)
    assert np.array_equal(left.t, right.t) and np.all(np.diff(left.t) >= 0)


def test_bench_stereo_measures_a_frame_of_the_bundled_model(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "--height",
                "24",
                "--width",
                "36",
                "--events",
                "3000",
                "--repeats",
                "1",
                "--device",
                "cpu",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    figures = json.loads(out.read_text())
    (frame,) = figures["frames"]
    assert frame["output_shape"] == [24, 36] and frame["checkpoint"] == "bundled dsec"
    assert frame["frame_s"] > 0 and frame["fps"] > 0 and figures["peak_rss_mib"] > 0 and frame["device"] == "cpu"
    assert "frame 24x36, 3,000 events per camera" in capsys.readouterr().out


def test_bench_stereo_defaults_to_every_bundled_model_at_its_sensor_size() -> None:
    from stereo_snn.bench.stereo import build_parser, frames_to_measure

    todo = frames_to_measure(build_parser().parse_args([]))
    sizes = {label: (h, w, n) for _, label, h, w, n in todo}
    assert sizes["bundled dsec"] == (480, 640, 500_000)
    assert sizes["bundled mvsec"][:2] == (260, 346) and 140_000 < sizes["bundled mvsec"][2] < 150_000


def test_bench_stereo_rejects_impossible_sizes() -> None:
    with pytest.raises(ConfigError, match="--height"):
        main(["--height", "0", "--width", "10", "--device", "cpu"])
    with pytest.raises(ConfigError, match="both --height and --width"):
        main(["--height", "10", "--device", "cpu"])
