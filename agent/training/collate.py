"""The collator: loaded samples -> one training batch.

It renders each record's conversation with the model's chat template, expands media placeholders
and tokenizes through the same :class:`~vitron.agent.processing.VitronProcessor` inference uses,
keeps labels on the assistant replies only (everything else is ``-100``), and records where the
signal tokens are with :func:`~vitron.agent.modeling.signal_heads.find_signal_positions` — the
function inference's extraction (:func:`extract_signal_embeddings`) calls, so training reads
signal embeddings from exactly the states inference reads them from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from vitron.agent.inputs import RegionInput, Turn, VideoInput
from vitron.agent.invocation import INSTRUCTION_CLOSE, MODULE_OPEN
from vitron.agent.modeling.signal_heads import find_signal_positions
from vitron.agent.modeling.synergy import invocation_mask
from vitron.agent.parsing import parse_reply
from vitron.agent.processing import VitronProcessor
from vitron.agent.training.dataset import LoadedSample

IGNORE_INDEX = -100
_PLACEHOLDERS = ("<image>", "<video>", "<region>")


@dataclass
class SignalSupervision:
    """What one signal token of the batch should produce (aligned with ``Batch.signal_positions``).

    ``image`` is the picture a mask target is on (a video's first frame for ``[TRK]``), ``mask``
    its (H, W) float target, ``box`` the invocation's first ``<Region>`` (normalised), which the
    backend uses as SAM's box prompt; ``caption`` the text a diffusion-space signal should match.
    """

    token: str
    space: str
    image: Image.Image | None = None
    mask: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    caption: str | None = None
    module: str | None = None
    """The invocation's module: which backend consumes this signal."""
    target_image: Image.Image | None = None
    """The wanted output image, for the denoising loss through the frozen UNet."""


@dataclass
class Batch:
    """Model inputs plus supervision. ``inputs`` go to ``model(**inputs)``; ``labels`` (B, L);
    ``signal_positions`` (batch_index, position, token_id) in row/position order, one
    :class:`SignalSupervision` each in ``signals``; ``task_ids`` (B,) with -1 for no task;
    ``invocation_mask`` (B, L) the spans synergy pools over."""

    inputs: dict[str, Any]
    labels: torch.Tensor
    signal_positions: list[tuple[int, int, int]]
    signals: list[SignalSupervision]
    task_ids: torch.Tensor
    invocation_mask: torch.Tensor
    ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()
        }
        return Batch(
            moved,
            self.labels.to(device),
            self.signal_positions,
            self.signals,
            self.task_ids.to(device),
            self.invocation_mask.to(device),
            self.ids,
        )


class Collator:
    """``collate(samples)`` -> :class:`Batch`; ``None`` samples (skipped loads) are dropped.

    ``modules`` is the model's task order (``config.modules``); ``token_spaces`` its signal
    token id -> (token, space) map (``config.signal_token_id_map``).
    """

    def __init__(
        self,
        processor: VitronProcessor,
        modules: Sequence[str],
        token_spaces: dict[int, tuple[str, str]],
        *,
        max_length: int | None = None,
    ) -> None:
        self.processor = processor
        self.modules = list(modules)
        self.token_spaces = dict(token_spaces)
        self.max_length = max_length
        ids = processor.token_ids
        self.module_open = ids.tags[MODULE_OPEN]
        self.invocation_ends = {*ids.signals.values(), ids.tags[INSTRUCTION_CLOSE]}

    def __call__(self, samples: Sequence[LoadedSample | None]) -> Batch | None:
        samples = [s for s in samples if s is not None]
        if not samples:
            return None
        texts, spans, rows = [], [], []
        images: list[Image.Image] = []
        videos: list[VideoInput] = []
        regions: list[RegionInput] = []
        for sample in samples:
            text, reply_spans, media = self._render(sample)
            texts.append(text)
            spans.append(reply_spans)
            row_videos = [m for m in media if isinstance(m, VideoInput)]
            row_images = [m for m in media if isinstance(m, Image.Image)]
            rows.append((row_videos, sample.regions, row_images))
            regions += [RegionInput(r.mask, _shift(r.image, len(images))) for r in sample.regions]
            images += row_images
            videos += row_videos
        encoded = self.processor(texts, images, videos, regions, padding_side="right")
        input_ids = encoded["input_ids"]
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for row, (text, reply_spans, (row_videos, row_regions, row_images)) in enumerate(
            zip(texts, spans, rows, strict=True)
        ):
            sampled = [self.processor.sample_video(v) for v in row_videos]
            objects = self.processor.find_objects(row_images)  # cached: found once per picture
            self._label_row(
                row, text, reply_spans, (sampled, row_regions, objects), input_ids, labels
            )
        labels[encoded["attention_mask"] == 0] = IGNORE_INDEX
        if self.max_length is not None and input_ids.shape[1] > self.max_length:
            raise ValueError(
                f"a batch is {input_ids.shape[1]} tokens long, above max_length "
                f"{self.max_length}; shorten the samples or raise max_length"
            )
        positions = find_signal_positions(input_ids, self.token_spaces)
        signals = self._signals(samples, positions)
        task_ids = torch.tensor(
            [self.modules.index(s.record.task) if s.record.task in self.modules else -1
             for s in samples]
        )  # fmt: skip
        inv = invocation_mask(input_ids, self.module_open, self.invocation_ends)
        return Batch(
            dict(encoded),
            labels,
            positions,
            signals,
            task_ids,
            inv,
            [s.record.id for s in samples],
        )

    # ---- rendering and labels ----

    def _turns(self, sample: LoadedSample) -> list[Turn]:
        """Messages as processor turns: placeholder text split into text and media parts."""
        media = iter(sample.media)
        regions = iter(sample.regions)
        turns = []
        for message in sample.record.messages:
            parts: list[Any] = []
            rest = message.text
            while True:
                hits = [(rest.find(p), p) for p in _PLACEHOLDERS if p in rest]
                if not hits:
                    break
                where, token = min(hits)
                parts.append(rest[:where])
                # the processor writes its own "\n" after an image or video placeholder
                rest = rest[where + len(token) :]
                if token == "<region>":
                    parts.append(next(regions))
                else:
                    parts.append(next(media))
                    rest = rest.removeprefix("\n")
            parts.append(rest)
            turns.append(Turn(message.role, [p for p in parts if not isinstance(p, str) or p]))
        return turns

    def _render(self, sample: LoadedSample) -> tuple[str, list[tuple[int, int]], list[Any]]:
        """Full text (placeholders unexpanded), assistant reply character spans (each reply
        plus its EOS: what the model learns to write), and the media in order."""
        turns = self._turns(sample)
        prompt = self.processor.render(turns, add_generation_prompt=False)
        spans = []
        for k, turn in enumerate(turns):
            if turn.role != "assistant":
                continue
            before = self.processor.render(turns[:k], add_generation_prompt=True).text
            after = self.processor.render(turns[: k + 1], add_generation_prompt=False).text
            spans.append((len(before), len(after)))
        return prompt.text, spans, [*prompt.images, *prompt.videos]

    def _label_row(
        self,
        row: int,
        text: str,
        spans: list[tuple[int, int]],
        media: tuple[list[Any], list[RegionInput], list[list[Any]] | None],
        input_ids: torch.Tensor,
        labels: torch.Tensor,
    ) -> None:
        """Label the tokens of ``row`` whose characters fall in a reply span.

        Spans are measured in the unexpanded text; each start is moved by what the expansion
        of the text before it adds (replies hold no placeholders), then tokens are matched
        through the tokenizer's offsets in the expanded text — the text the processor tokenized,
        which is checked. ``media``: the row's sampled videos, regions and objects per picture.
        """

        def expand(part: str) -> str:
            # the processor's own expansion, so token counts and timestamp lines are identical
            return self.processor._expand([part], *media).texts[0]

        shifted = []
        for start, end in spans:
            begin = len(expand(text[:start]))
            shifted.append((begin, begin + end - start))
        encoding = self.processor.tokenizer(expand(text), return_offsets_mapping=True)
        ids = encoding["input_ids"]
        if ids != input_ids[row, : len(ids)].tolist():
            raise RuntimeError(
                "the collator's tokenization of a sample differs from the processor's"
            )
        for t, (start, end) in enumerate(encoding["offset_mapping"]):
            if end > start and any(s <= start and end <= e for s, e in shifted):
                labels[row, t] = input_ids[row, t]

    # ---- signals ----

    def _signals(
        self, samples: Sequence[LoadedSample], positions: list[tuple[int, int, int]]
    ) -> list[SignalSupervision]:
        out: list[SignalSupervision] = []
        for row, sample in enumerate(samples):
            found = [p for p in positions if p[0] == row]
            tokens = sample.record.signal_tokens()
            if len(found) != len(tokens):
                raise ValueError(
                    f"sample {sample.record.id}: the reply has {len(tokens)} signal token(s) but "
                    f"{len(found)} were tokenized as signal tokens"
                )
            boxes, modules = _invocations(sample.record.assistant_text(), len(tokens))
            for k, (_, _, token_id) in enumerate(found):
                token, space = self.token_spaces[token_id]
                supervision = SignalSupervision(token, space, box=boxes[k], module=modules[k])
                if sample.record.signals:
                    target = sample.record.signals[k]
                    supervision.caption = target.caption
                    if sample.target_images:
                        supervision.target_image = sample.target_images[k]
                    if sample.target_masks[k] is not None and target.media is not None:
                        supervision.mask = sample.target_masks[k]
                        supervision.image = _picture(sample.media[target.media])
                out.append(supervision)
        return out


def _shift(image: int | None, offset: int) -> int | None:
    """A sample's image index in the batch's image numbering."""
    return None if image is None else image + offset


def _picture(item: Image.Image | VideoInput) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    frame = item.frames[0]
    return frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame))


def _invocations(
    text: str, count: int
) -> tuple[list[tuple[float, float, float, float] | None], list[str | None]]:
    """Per signal token (text order): the first ``<Region>`` of its invocation (if any) and the
    module it belongs to (``None`` for a token outside a well-formed invocation)."""
    boxes: list[tuple[float, float, float, float] | None] = [None] * count
    modules: list[str | None] = [None] * count
    for invocation in parse_reply(text).invocations:
        index = invocation.signal_index
        if index is not None and index < count:
            modules[index] = invocation.module
            if invocation.regions:
                boxes[index] = invocation.regions[0]
    return boxes, modules
