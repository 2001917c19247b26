"""Fixtures for the engine tests: one thread, fixed seeds, tiny networks."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_and_seed():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def spikes(*shape: int, p: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A reproducible binary spike tensor."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


@pytest.fixture
def make_spikes():
    return spikes
