"""Streaming windows (``train.stream_windows``): neuron states carried across windows, the
dataset's history windows, the training/validation forward and the predictor."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.spiking import NeuronConfig, carried_state, grouped_multi_step, make_neuron, reset
from stereo_snn.stereo.data import StereoWindowDataset, open_sources, pad_collate
from stereo_snn.stereo.infer import Predictor
from stereo_snn.stereo.network import build_network, forward_batch


def _lif(b: float) -> torch.nn.Module:
    return make_neuron(NeuronConfig(kind="lif", tau=2.0, b=b))


@pytest.mark.parametrize("grouped", [False, True])
def test_a_carried_state_continues_the_neurons_as_one_long_sequence(grouped):
    torch.manual_seed(0)
    x1, x2 = torch.rand(3, 2, 4, 5) * 1.5, torch.rand(3, 2, 4, 5) * 1.5
    neurons = [_lif(3.0), _lif(5.0)]  # differ only in the surrogate: one stacked membrane loop

    def run(x: torch.Tensor) -> torch.Tensor:
        if grouped:
            out = grouped_multi_step(neurons, [x, x + 0.1])
            assert out is not None
            return out
        return neurons[0](x)

    whole = run(torch.cat([x1, x2]))
    for m in neurons:
        m.reset()
    with carried_state():
        run(x1)
        second = run(x2)
    assert torch.equal(second, whole[3:])  # the second window starts from the first's membranes
    fresh = run(x2)  # outside the context every window starts from rest
    assert not torch.equal(fresh, second)


def test_history_windows_are_the_windows_before_each_window(sim_root, tiny_cfg):
    sources = open_sources(sim_root)[:1]
    plain = StereoWindowDataset(sources, tiny_cfg)
    streamed = StereoWindowDataset(sources, tiny_cfg, history=2)
    by_time = {e.t_us: plain[i] for i, (_, e) in enumerate(plain.items)}
    window = plain.window_us
    checked = 0
    for i, (_, entry) in enumerate(streamed.items):
        item = streamed[i]
        assert item["history_left"].shape == (2, *item["left"].shape)
        for k, back in enumerate((2, 1)):  # oldest first
            t = entry.t_us - back * window
            if t in by_time:
                assert torch.equal(item["history_left"][k], by_time[t]["left"])
                assert torch.equal(item["history_right"][k], by_time[t]["right"])
                checked += 1
    assert checked >= 2
    first = streamed[0]  # its windows before start before the recording: no events
    assert torch.count_nonzero(first["history_left"][0]) == 0
    crop = StereoWindowDataset(sources, tiny_cfg, history=1, crop=(24, 36), vflip=True, seed=5)
    item = crop[2]
    assert item["history_left"].shape[-2:] == (24, 36) == item["left"].shape[-2:]
    batch = pad_collate([crop[1], crop[2]])
    assert batch["history_left"].shape == (1, *batch["left"].shape)  # [K, T, B, C, H, W]


def test_forward_batch_runs_the_history_then_the_window_with_the_states_carried(sim_root, tiny_cfg, tiny_genotype):
    torch.manual_seed(1)
    model = build_network(tiny_cfg, tiny_genotype).eval()
    ds = StereoWindowDataset(open_sources(sim_root)[:1], tiny_cfg, history=2)
    batch = pad_collate([ds[len(ds) - 1]])
    with torch.no_grad():
        out = forward_batch(model, batch, torch.device("cpu"))["disparity"]
        reset(model)
        with carried_state():
            for k in range(2):
                model(batch["history_left"][k], batch["history_right"][k])
            expected = model(batch["left"], batch["right"])["disparity"]
        stateless = forward_batch(model, {k: v for k, v in batch.items() if not k.startswith("history")}, "cpu")
    assert torch.equal(out, expected)
    assert torch.equal(stateless["disparity"], model(batch["left"], batch["right"])["disparity"])


def test_predictor_carries_states_across_consecutive_windows_and_burns_in_otherwise(sim_root, tiny_cfg, tiny_genotype):
    cfg = tiny_cfg.replace(**{"train.stream_windows": 1})
    torch.manual_seed(2)
    model = build_network(cfg, tiny_genotype)
    src = open_sources(sim_root)[0]
    start, _ = src.time_range_us()
    entries = src.entries_for([start + 100_000, start + 150_000, start + 200_000])  # consecutive windows
    calls: list[int] = []
    model.register_forward_hook(lambda *a: calls.append(1))
    streaming = Predictor(model, cfg, device="cpu")
    first = [streaming.predict_window(src, e, *streaming.window(src, e)) for e in entries[:2]]
    assert len(calls) == 3  # the window before the first (burn-in), the first, then the second
    calls.clear()
    fresh = Predictor(model, cfg, device="cpu")
    again = fresh.predict_window(src, entries[1], *fresh.window(src, entries[1]))
    assert len(calls) == 2  # not following a streamed window: the window before it first, from rest
    assert (again == first[1]).all()  # with K = 1 that is exactly the streamed state
    stateless = Predictor(model, tiny_cfg, device="cpu")
    calls.clear()
    stateless.predict_window(src, entries[1], *stateless.window(src, entries[1]))
    assert len(calls) == 1


def test_predictor_and_training_treat_windows_before_the_recording_alike(sim_root, tiny_cfg, tiny_genotype):
    cfg = tiny_cfg.replace(**{"train.stream_windows": 2})
    torch.manual_seed(3)
    model = build_network(cfg, tiny_genotype).eval()
    for m in model.modules():  # trained statistics: an empty window drives the neurons, not only rest
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1.0, 1.0)
    src = open_sources(sim_root)[0]
    ds = StereoWindowDataset([src], cfg, history=2)
    item = ds[0]
    assert torch.count_nonzero(item["history_left"][0]) == 0  # starts before the recording
    with torch.no_grad():
        trained = forward_batch(model, pad_collate([item]), torch.device("cpu"))["disparity"][0]
    _, entry = ds.items[0]
    predictor = Predictor(model, cfg, device="cpu")
    predicted = predictor.predict_window(src, entry, *predictor.window(src, entry))
    assert torch.equal(torch.from_numpy(predicted), trained)


def test_stream_windows_is_validated(tiny_cfg):
    with pytest.raises(ConfigError, match="train.stream_windows"):
        tiny_cfg.replace(**{"train.stream_windows": -1})


def test_a_streaming_model_trains_and_validates(sim_root, tiny_cfg, tiny_genotype, tmp_path):
    from stereo_snn.stereo.train import train_genotype

    cfg = tiny_cfg.replace(**{"train.epochs": 1, "train.stream_windows": 1, "train.image_every": 1})
    sources = open_sources(sim_root)
    res = train_genotype(cfg, tiny_genotype, sources[:1], sources[2:], tmp_path / "run", progress=False, log=print)
    assert res.epochs == 1 and res.history[0]["val_mae"] >= 0
