"""SAM 2 video object segmentation through transformers (``Sam2VideoModel``, ``Sam2VideoProcessor``).

:class:`Sam2VideoEngine` follows one target given on one frame (a box, points or a mask, in pixels
of the original frame, origin top-left) through a video, in SAM 2's streaming mode: frames are fed
one at a time, so only the frames up to the prompt frame are ever held (they are needed again in
reverse order to track backwards), and what SAM 2's memory can no longer reach is dropped as the
tracking moves on, so memory stays flat however long the video is.

Signal conditioning: transformers gives no argument for extra prompt tokens, so the engine registers
one forward hook on the model's prompt encoder that appends the tokens of a context variable to the
sparse prompt embeddings. The variable is set only while the prompt frame is decoded, so the signal
shapes that frame's mask and the memory and object pointer every later frame reads; unset (no
signal), the hook returns the encoder's output untouched.

Appearance check (``appearance_check``, a profile option, off unless set): in each mask but the
prompt frame's, the connected parts whose colours do not match the prompt frame's mask are
removed (:mod:`vitron.tools.appearance`). SAM 2's memory is left as it is; only what the call
yields changes. nano sets it, because its tracker follows a neighbour once its target has left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from transformers import (
    Sam2HieraDetConfig,
    Sam2VideoConfig,
    Sam2VideoModel,
    Sam2VideoProcessor,
    Sam2VideoVideoProcessor,
    Sam2VisionConfig,
)

try:
    from transformers import Sam2ImageProcessor
except ImportError:  # transformers < 5.2x names only the fast processor
    from transformers import Sam2ImageProcessorFast as Sam2ImageProcessor

from vitron.tools.appearance import AppearanceCheck
from vitron.tools.checkpoints import load_pretrained
from vitron.tools.errors import MediaError, VitronToolError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader

DEFAULT_MAX_FRAMES = 600
OBJECT_ID = 1

_HOOKED = "_vitron_extra_tokens_hook"
_extra_prompt_tokens: ContextVar[torch.Tensor | None] = ContextVar(
    "sam2_extra_prompt_tokens", default=None
)


def build_tiny_sam2_video(
    seed: int = 0, **overrides: Any
) -> tuple[Sam2VideoModel, Sam2VideoProcessor]:
    """A 12 M-parameter SAM 2 video model with random weights at 256 px (``overrides`` go to
    ``Sam2VideoConfig``). Every size-dependent field agrees with the 256 px input; a global
    attention block must not open a stage (its window would pool to size 0)."""
    backbone = Sam2HieraDetConfig(
        hidden_size=16, blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2], global_attention_blocks=[3],
        image_size=[256, 256],
    )  # fmt: skip
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]],
    )  # fmt: skip
    config = Sam2VideoConfig(
        vision_config=vision, image_size=256,
        prompt_encoder_config={"image_size": 256, "patch_size": 16},
        memory_attention_rope_feat_sizes=[16, 16], **overrides,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam2VideoModel(config)
    size = {"height": 256, "width": 256}
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size),
        target_size=256,
    )
    return model.eval(), processor


@dataclass(frozen=True)
class VideoPrompt:
    """The target on the prompt frame, in pixels of the original frame (origin top-left).

    A box (``x1, y1, x2, y2``) and points may be combined; a mask (``H x W`` bool, the frame's
    size) stands alone.
    """

    box: list[float] | None = None
    points: list[list[float]] | None = None
    point_labels: list[int] | None = None
    mask: np.ndarray | None = None


class Sam2VideoEngine:
    """A loaded SAM 2 video model with its processor; each :meth:`track` call is independent."""

    def __init__(
        self,
        model: Sam2VideoModel,
        processor: Sam2VideoProcessor,
        max_frames: int = DEFAULT_MAX_FRAMES,
        appearance_check: float = 0.0,
    ) -> None:
        self.model = model
        self.processor = processor
        self.max_frames = max_frames
        """The most frames one call may track (a profile option; ``stride`` subsamples longer)."""
        AppearanceCheck(appearance_check)  # a threshold outside 0..1 fails here, not mid-call
        self.appearance_check = appearance_check
        """The least colour-histogram overlap with the prompt frame's mask that a later mask
        needs to be kept (0: every mask kept)."""
        if not getattr(model.prompt_encoder, _HOOKED, False):  # one hook per model, however wrapped
            model.prompt_encoder.register_forward_hook(_append_extra_tokens)
            setattr(model.prompt_encoder, _HOOKED, True)

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def prompt_dim(self) -> int:
        """Width of one sparse prompt token (what a signal projector must produce)."""
        return int(self.model.config.prompt_encoder_config.hidden_size)

    @property
    def memory_window(self) -> int:
        """How many frames back SAM 2 reads (mask memories and object pointers)."""
        config = self.model.config
        return max(config.num_maskmem, config.max_object_pointers_in_encoder)

    def track(
        self,
        frames: Iterable[np.ndarray],
        prompt_frame: int,
        prompt: VideoPrompt,
        *,
        extra_tokens: torch.Tensor | None = None,
        memory_window: int | Literal["auto"] | None = "auto",
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield one ``H x W`` bool mask per frame of ``frames`` (``H x W x 3`` uint8), in order.

        Frames ``0..prompt_frame`` are read first and held: the prompt frame is segmented, then
        tracking runs backwards to frame 0; later frames are then tracked forwards as they are
        read, so the two directions only share the prompt frame's memory. ``extra_tokens``
        (``N x prompt_dim``) join the prompt frame's sparse prompt embeddings. ``memory_window``:
        frames further back than this are forgotten (``"auto"``: what the model can read;
        ``None``: keep everything). ``progress`` gets the number of frames done after each one.
        With an ``appearance_check``, the parts of a mask whose colours do not match the prompt
        frame's are removed (all of them: the mask comes out empty).
        """
        window = self.memory_window if memory_window == "auto" else memory_window
        stream = iter(frames)
        held: list[np.ndarray | None] = [
            frame for _, frame in zip(range(prompt_frame + 1), stream, strict=False)
        ]
        if len(held) <= prompt_frame:
            raise MediaError(
                f"the video ended after {len(held)} frame(s), before prompt frame {prompt_frame}"
            )
        size = held[0].shape[:2]
        session = self.processor.init_video_session(
            inference_device=self._device, dtype=self._dtype
        )
        self._add_prompt(session, prompt_frame, prompt, size)
        appearance = AppearanceCheck(self.appearance_check)
        done = 0

        def step(index: int, frame: np.ndarray, reverse: bool = False) -> np.ndarray:
            nonlocal done
            mask = self._step(session, index, frame, size, reverse=reverse)
            done += 1
            if progress:
                progress(done)
            return mask if index == prompt_frame else appearance.check(frame, mask)

        with _extra_tokens(extra_tokens):
            prompt_pixels = held.pop()
            prompt_mask = step(prompt_frame, prompt_pixels)
        appearance.set_reference(prompt_pixels, prompt_mask)
        before: list[np.ndarray] = []
        for index in range(prompt_frame - 1, -1, -1):
            before.append(step(index, held.pop(), reverse=True))
            if window is not None:
                _forget(session, index + window)
        # The forward pass starts from the prompt frame's memory alone, as if it ran first.
        _forget(session, *range(prompt_frame))

        yield from reversed(before)
        yield prompt_mask
        for index, frame in enumerate(stream, start=prompt_frame + 1):
            if frame.shape[:2] != size:
                raise MediaError(
                    f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, not {size[1]}x{size[0]}"
                )
            mask = step(index, frame)
            if window is not None:
                _forget(session, index - window)
            yield mask

    def _add_prompt(
        self, session: Any, frame_idx: int, prompt: VideoPrompt, size: tuple[int, int]
    ) -> None:
        if prompt.mask is not None:
            if prompt.mask.shape != size:
                raise VitronToolError(
                    f"the prompt mask is {prompt.mask.shape[1]}x{prompt.mask.shape[0]}, the video "
                    f"frames are {size[1]}x{size[0]}"
                )
            self.processor.add_inputs_to_inference_session(
                session, frame_idx=frame_idx, obj_ids=OBJECT_ID,
                input_masks=torch.as_tensor(prompt.mask, dtype=torch.bool),
                original_size=size,
            )  # fmt: skip
            return
        inputs: dict[str, Any] = {}
        if prompt.box is not None:
            inputs["input_boxes"] = [[list(map(float, prompt.box))]]
        if prompt.points:
            labels = prompt.point_labels or [1] * len(prompt.points)
            inputs["input_points"] = [[[list(map(float, p)) for p in prompt.points]]]
            inputs["input_labels"] = [[list(map(int, labels))]]
        if not inputs:
            raise VitronToolError("a video prompt needs a box, points or a mask")
        self.processor.add_inputs_to_inference_session(
            session, frame_idx=frame_idx, obj_ids=OBJECT_ID, original_size=size, **inputs
        )

    def _step(
        self,
        session: Any,
        frame_idx: int,
        frame: np.ndarray,
        size: tuple[int, int],
        reverse: bool = False,
    ) -> np.ndarray:
        """Feed one frame, decode the target's mask on it, and drop the frame's pixels again."""
        pixels = self.processor(images=frame, return_tensors="pt")["pixel_values"][0]
        with torch.inference_mode():
            output = self.model(
                inference_session=session, frame_idx=frame_idx, frame=pixels, reverse=reverse
            )
            masks = self.processor.post_process_masks(
                [output.pred_masks], original_sizes=[list(size)], binarize=True
            )[0]
        session.processed_frames.pop(
            frame_idx, None
        )  # its features are cached; pixels no longer read
        return masks[0, 0].cpu().numpy().astype(bool)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def _append_extra_tokens(
    module: torch.nn.Module, args: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Forward hook of the prompt encoder: ``(B, P, N, C)`` sparse embeddings gain the context's
    extra tokens as ``(B, P, N + k, C)``; returns ``None`` (output unchanged) when there are none."""
    extra = _extra_prompt_tokens.get()
    if extra is None:
        return None
    sparse, dense = output
    tokens = extra.reshape(-1, sparse.shape[-1]).to(sparse)
    tokens = tokens.expand(*sparse.shape[:2], *tokens.shape)
    return torch.cat([sparse, tokens], dim=2), dense


@contextmanager
def _extra_tokens(tokens: torch.Tensor | None) -> Iterator[None]:
    """Make the prompt encoder append ``tokens`` within this block (this context only)."""
    reset = _extra_prompt_tokens.set(tokens)
    try:
        yield
    finally:
        _extra_prompt_tokens.reset(reset)


def _forget(session: Any, *frames: int) -> None:
    """Drop SAM 2's tracked (non-prompt) outputs for ``frames``: memory no later frame reads."""
    for outputs in session.output_dict_per_obj.values():
        for frame in frames:
            outputs["non_cond_frame_outputs"].pop(frame, None)
    for tracked in session.frames_tracked_per_obj.values():
        for frame in frames:
            tracked.pop(frame, None)


@component_loader("sam2_video")
def load_sam2_video(spec: ComponentSpec, context: LoadContext) -> Sam2VideoEngine:
    try:  # checked before any weights are read
        appearance_check = float(spec.options.get("appearance_check", 0.0))
        AppearanceCheck(appearance_check)
    except (TypeError, ValueError) as exc:
        raise VitronToolError(
            f"profile {spec.profile!r}: component {spec.name!r} option appearance_check: {exc}"
        ) from exc
    if spec.is_tiny:
        model, processor = build_tiny_sam2_video(int(spec.options.get("seed", 0)))
    else:
        model = load_pretrained(spec, Sam2VideoModel.from_pretrained)
        processor = load_pretrained(spec, Sam2VideoProcessor.from_pretrained)
    model = model.to(device=context.device, dtype=context.dtype).eval()
    max_frames = int(spec.options.get("max_frames", DEFAULT_MAX_FRAMES))
    return Sam2VideoEngine(model, processor, max_frames=max_frames,
                           appearance_check=appearance_check)  # fmt: skip
