"""The replay buffer: reference semantics (fill, then p=0.5 swap), detached storage, checkpointable."""

from __future__ import annotations

import torch

from training.pool import ImagePool


def test_pool_returns_new_images_until_full_then_swaps_about_half() -> None:
    pool = ImagePool(size=4, seed=0)
    first = [torch.full((1, 2, 2, 2), float(i)) for i in range(4)]
    for image in first:
        assert torch.equal(pool.query(image), image)
    assert len(pool.images) == 4
    old_returned = 0
    for i in range(4, 404):
        out = pool.query(torch.full((1, 2, 2, 2), float(i)))
        old_returned += int(out[0, 0, 0, 0].item() != i)
    assert 150 < old_returned < 250  # p = 0.5 over 400 queries
    assert len(pool.images) == 4


def test_pool_stores_detached_copies_and_handles_batches() -> None:
    pool = ImagePool(size=3, seed=0)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = pool.query(x * 2)
    assert not out.requires_grad and out.shape == x.shape
    assert all(not t.requires_grad for t in pool.images)
    x.data.add_(100.0)
    assert pool.images[0].abs().max() < 50  # a copy, not a view of the caller's tensor


def test_pool_size_zero_is_a_pass_through() -> None:
    pool = ImagePool(size=0)
    x = torch.randn(1, 1, 2, 2)
    assert torch.equal(pool.query(x), x) and not pool.images


def test_pool_state_round_trip_continues_identically() -> None:
    a = ImagePool(size=2, seed=5)
    for i in range(5):
        a.query(torch.full((1, 1, 1, 1), float(i)))
    b = ImagePool(size=2, seed=99)
    b.load_state_dict(a.state_dict())
    for i in range(5, 30):
        x = torch.full((1, 1, 1, 1), float(i))
        assert torch.equal(a.query(x), b.query(x))
