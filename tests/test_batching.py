from __future__ import annotations

import numpy as np
import pytest

from datadistill.batching import length_batches


def test_length_batches_cover_every_row_once():
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    batches = length_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    plain = length_batches(lengths, 32, None)
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in plain)


def test_training_batches_pad_less_than_random_ones_and_are_seeded():
    # Long-tailed lengths like reviews: grouped batches must cut the padded size well below random ones.
    lengths = np.minimum(np.random.default_rng(0).lognormal(4, 0.7, size=3200).astype(int) + 1, 256)
    grouped = length_batches(lengths, 32, np.random.default_rng(1))
    perm = np.random.default_rng(1).permutation(len(lengths))
    random_ = [perm[i : i + 32] for i in range(0, len(perm), 32)]
    padded = lambda bs: sum(len(b) * lengths[b].max() for b in bs)  # noqa: E731
    assert padded(grouped) < 0.6 * padded(random_)
    again = length_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(grouped, again))
    # batch order is shuffled, not sorted from short to long
    firsts = [lengths[b].max() for b in grouped]
    assert firsts != sorted(firsts)


def test_length_batches_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        length_batches([3, 1, 2], 0)
