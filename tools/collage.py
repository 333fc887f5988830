"""A box layout drawn as a collage: each phrase drawn alone by text-to-image, cut out and put
into its box.

For a profile whose GLIGEN does not place (nano's: ``tools/profiles/nano/README.md``), the
text-to-image model still draws one named object on a named background well. Collage Diffusion
(Sarukkai et al., 2023) and other training-free layout methods build the picture from pieces like
these. The placement here is the tool's; what is drawn is the model's. Images are H x W x 3 uint8;
boxes are normalised ``[x1, y1, x2, y2]`` with the origin at the top left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vitron.tools.compositing import grow, paste

STANDS_OUT = 40.0
"""RGB distance from the background colour above which a pixel belongs to the drawn object."""

_BACKGROUND = re.compile(r"\b(?:on|against|over) (?:an? |the )?(?:[\w-]+ ){0,3}background\b", re.I)
_SIZE = re.compile(r"\b(?:small|little|tiny|large|big|huge)\b", re.I)


def background_words(description: str) -> str:
    """The description's background clause (``"on a grey background"``), or ``""``."""
    found = _BACKGROUND.search(description)
    return found.group(0) if found else ""


def object_prompt(phrase: str, description: str) -> str:
    """What to draw one phrase alone: the phrase in the centre, on the description's background,
    its size word made "large" (``"a small red circle"`` on a grey background -> ``"a large red
    circle in the centre on a grey background"``). The box sets the size; a large drawing has the
    detail a small one lacks (nano's shapes were read right 0.87 of the time drawn large and
    scaled down, 0.73 drawn small: tools/profiles/nano/README.md). The centre keeps the whole
    object in the picture, away from the edges it would be cut at."""
    background = background_words(description)
    drawn = _SIZE.sub("large", phrase.strip())
    return f"{drawn} in the centre" + (f" {background}" if background else "")


def background_colour(image: np.ndarray) -> np.ndarray:
    """The median RGB (float, shape 3) of the image's one-pixel border."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def cut_out(image: np.ndarray, threshold: float = STANDS_OUT) -> np.ndarray:
    """H x W bool mask of the drawn object: the largest connected region whose colour stands out
    from the border's by more than ``threshold``, holes filled (a striped or dotted texture
    stays whole). All false when nothing stands out."""
    from scipy import ndimage

    distance = np.linalg.norm(image.astype(np.float32) - background_colour(image), axis=2)
    regions, count = ndimage.label(distance > threshold)
    if count == 0:
        return np.zeros(image.shape[:2], dtype=bool)
    sizes = np.bincount(regions.ravel())[1:]
    return ndimage.binary_fill_holes(regions == 1 + int(sizes.argmax()))


def cleared(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the object under ``mask`` (grown by a pixel, for its soft edge) painted
    over in the background colour: the drawn picture's background, left empty."""
    out = image.copy()
    out[grow(mask, 1)] = np.round(background_colour(image)).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Piece:
    """One phrase drawn alone, and the box it goes into."""

    drawing: np.ndarray
    """H x W x 3 uint8, the text-to-image model's picture of the phrase alone."""
    box: Sequence[float]


def compose(
    pieces: Sequence[Piece], backdrop: np.ndarray | None = None
) -> tuple[np.ndarray, list[bool]]:
    """The collage: the background of ``backdrop`` (a drawing on the asked background; default:
    the first piece's drawing), its object painted out, then every piece's object scaled into
    its box, in order (a later one covers an earlier one where they overlap). Also returns, per
    piece, whether an object was found in its drawing (a piece without one leaves its box
    empty). Every drawing has one size, the picture's."""
    if not pieces:
        raise ValueError("a collage needs at least one piece")
    masks = [cut_out(piece.drawing) for piece in pieces]
    if backdrop is None:
        canvas = cleared(pieces[0].drawing, masks[0])
    else:
        canvas = cleared(backdrop, cut_out(backdrop))
    for piece, mask in zip(pieces, masks, strict=True):
        if mask.any():
            canvas, _ = paste(canvas, piece.drawing, mask, list(piece.box))
    return canvas, [bool(mask.any()) for mask in masks]
