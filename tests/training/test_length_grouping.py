"""``group_by_length``: every record once per epoch, batches of similar length, seeded order."""

from __future__ import annotations

from tests.training.conftest import tiny_config
from vitron.agent.training.trainer import Trainer


def _spread(trainer: Trainer, batches: list[list[int]]) -> float:
    """Mean over batches of (longest - shortest) record length: the padding a batch carries."""
    lengths = [[trainer.dataset.length(i) for i in batch] for batch in batches]
    return sum(max(b) - min(b) for b in lengths) / len(lengths)


def test_grouped_batches_cover_the_epoch_with_less_spread_and_are_seeded(squares, tmp_path):
    plain = Trainer(tiny_config(squares, tmp_path / "plain", "align", batch_size=2))
    grouped = Trainer(
        tiny_config(squares, tmp_path / "grouped", "align", batch_size=2, group_by_length=True)
    )
    for epoch in (0, 1):
        batches = grouped.epoch_order(epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(grouped.dataset)))
        assert batches == grouped.epoch_order(epoch)  # same seed and epoch, same batches
        assert _spread(grouped, batches) < _spread(plain, plain.epoch_order(epoch))
    assert grouped.epoch_order(0) != grouped.epoch_order(1)
