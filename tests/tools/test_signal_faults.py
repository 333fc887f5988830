"""A signal embedding that is empty or holds NaN is refused with a clear error; before, an empty one
crashed in a reshape and a NaN one "succeeded" with score nan, an empty mask and NaN in the record."""

from __future__ import annotations

import pytest
import torch

SIGNAL_DIM = 32  # the tiny profile's planner space


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (torch.empty(0), "is empty"),
        (torch.empty(0, SIGNAL_DIM), "is empty"),
        (torch.full((SIGNAL_DIM,), float("nan")), "NaN or infinite"),
        (torch.tensor([1.0] * (SIGNAL_DIM - 1) + [float("inf")]), "NaN or infinite"),
    ],
)
def test_bad_signals_are_refused(invoke, workspace, photo, values, says):
    signal = workspace.put_embedding(values)
    before = set(workspace.handles())
    result = invoke("segment_image", image=photo.handle, regions=[[0.2, 0.2, 0.8, 0.8]],
                    signal=signal.handle)  # fmt: skip
    assert result.status == "error" and says in result.content, result.content
    assert signal.handle in result.content and "Error" not in result.content
    assert set(workspace.handles()) == before  # nothing was made or re-registered
    assert workspace.describe(photo.handle).source == "user"
