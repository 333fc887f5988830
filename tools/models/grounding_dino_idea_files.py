"""The files an IDEA-format Grounding DINO is made of, read without running anything.

A Python config (``GroundingDINO_SwinT_OGC.py``: parsed, never executed), a ``.pth`` checkpoint
(``torch.load(weights_only=True)``) and a BERT text-encoder folder. For tests and the ``tiny`` profile
this module also writes small ones: :data:`TINY_IDEA_CONFIG` and a 1-layer BERT whose vocabulary
has Grounding DINO's separators at BERT's ids.
"""

from __future__ import annotations

import argparse
import ast
import string
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from vitron.tools.errors import MissingCheckpointError, VitronToolError

SPECIAL_TOKEN_IDS = {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}
"""Where BERT's uncased vocabulary has Grounding DINO's phrase separators; transformers' port
hard-codes these ids, so a tiny vocabulary must put the tokens there too."""

TINY_IDEA_CONFIG: dict[str, Any] = {
    "batch_size": 1,
    "modelname": "groundingdino",
    "backbone": "swin_T_224_1k",
    "backbone_params": {"embed_dim": 32, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "window_size": 7},
    "position_embedding": "sine",
    "pe_temperatureH": 20,
    "pe_temperatureW": 20,
    "return_interm_indices": [1, 2, 3],
    "backbone_freeze_keywords": None,
    "enc_layers": 1,
    "dec_layers": 2,
    "pre_norm": False,
    "dim_feedforward": 64,
    "hidden_dim": 256,  # groundingdino-py's text position embedding is fixed at 256 features
    "dropout": 0.0,
    "nheads": 2,  # the text enhancer and fusion layers use nheads // 2
    "num_queries": 20,
    "query_dim": 4,
    "num_patterns": 0,
    "num_feature_levels": 4,
    "enc_n_points": 4,
    "dec_n_points": 4,
    "two_stage_type": "standard",
    "two_stage_bbox_embed_share": False,
    "two_stage_class_embed_share": False,
    "transformer_activation": "relu",
    "dec_pred_bbox_embed_share": True,
    "dn_box_noise_scale": 1.0,
    "dn_label_noise_ratio": 0.5,
    "dn_label_coef": 1.0,
    "dn_bbox_coef": 1.0,
    "embed_init_tgt": True,
    "dn_labelbook_size": 2000,
    "max_text_len": 256,
    "text_encoder_type": "bert-base-uncased",
    "use_text_enhancer": True,
    "use_fusion_layer": True,
    "use_checkpoint": False,
    "use_transformer_ckpt": False,
    "use_text_cross_attention": True,
    "text_dropout": 0.0,
    "fusion_dropout": 0.0,
    "fusion_droppath": 0.0,
    "sub_sentence_present": True,
}  # fmt: skip
"""GroundingDINO_SwinT_OGC's settings at a size a 2-core CPU runs in a fraction of a second."""

TINY_TEXT_ENCODER = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
}


class IdeaConfigError(VitronToolError, ValueError):
    """An IDEA config file that is missing or holds more than plain ``name = value`` settings."""


# --- config files ---------------------------------------------------------------------------------


def read_idea_config(source: str | Path) -> dict[str, Any]:
    """Settings of an IDEA Python config, read without running it.

    ``source`` is a ``.py`` path or the name of a config shipped with groundingdino-py
    (``GroundingDINO_SwinT_OGC``, ``GroundingDINO_SwinB_cfg``). groundingdino-py's own ``SLConfig``
    executes the file; here only top-level ``name = literal`` assignments are accepted, so a config
    from elsewhere cannot run code.
    """
    path = Path(source).expanduser()
    if not path.is_file():
        shipped = _shipped_config(str(source))
        if shipped is None:
            raise IdeaConfigError(
                f"no Grounding DINO config at {path}; give a .py config file or the name of one "
                "groundingdino-py ships (GroundingDINO_SwinT_OGC, GroundingDINO_SwinB_cfg)"
            )
        text, origin = shipped, f"groundingdino-py's {source}"
    else:
        text, origin = path.read_text(), str(path)
    try:
        tree = ast.parse(text, filename=origin)
    except SyntaxError as exc:
        raise IdeaConfigError(f"{origin} is not a Python config: {exc}") from exc
    settings: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            raise IdeaConfigError(
                f"{origin} line {node.lineno}: only `name = value` settings are read from a "
                "Grounding DINO config (no imports, calls or code)"
            )
        try:
            settings[node.targets[0].id] = _literal(node.value)
        except ValueError as exc:
            raise IdeaConfigError(f"{origin} line {node.lineno}: {exc}") from exc
    missing = [
        k for k in ("modelname", "backbone", "hidden_dim", "enc_layers") if k not in settings
    ]
    if missing:
        raise IdeaConfigError(f"{origin} is not a Grounding DINO config: no {', '.join(missing)}")
    return settings


def write_idea_config(settings: dict[str, Any], path: str | Path) -> Path:
    """Write ``settings`` as an IDEA-style Python config (``name = value`` lines)."""
    path = Path(path)
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    return path


def _literal(node: ast.expr) -> Any:
    """A literal, also accepting ``dict(a=1)`` (IDEA configs write dicts that way)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
    ):
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{ast.unparse(node)!r} is not a literal value") from None


def _shipped_config(name: str) -> str | None:
    name = name.removesuffix(".py")
    if not name or "/" in name or "\\" in name:
        return None
    try:
        resource = resources.files("groundingdino") / "config" / f"{name}.py"
        return resource.read_text() if resource.is_file() else None
    except ModuleNotFoundError:
        return None


# --- the tiny text encoder ------------------------------------------------------------------------


def tiny_text_vocab() -> list[str]:
    """A WordPiece vocabulary of 1100 tokens with BERT's special ids (see ``SPECIAL_TOKEN_IDS``).

    Characters (and their ``##`` continuations) cover any lower-case English text; the other slots
    are ``[unusedN]`` fillers.
    """
    vocab = [f"[unused{i}]" for i in range(1100)]
    vocab[0], vocab[100], vocab[103] = "[PAD]", "[UNK]", "[MASK]"
    for token, index in SPECIAL_TOKEN_IDS.items():
        vocab[index] = token
    others = [c for c in string.punctuation if c not in SPECIAL_TOKEN_IDS]
    chars = string.ascii_lowercase + string.digits
    pieces = [*others, *chars, *(f"##{c}" for c in chars)]
    vocab[200 : 200 + len(pieces)] = pieces
    return vocab


def save_tiny_text_encoder(folder: str | Path, seed: int = 0) -> Path:
    """Write a random 1-layer BERT (hidden 32) with :func:`tiny_text_vocab` to ``folder``.

    The folder loads with ``AutoTokenizer`` / ``BertModel.from_pretrained``, as groundingdino-py's
    ``text_encoder_type`` needs.
    """
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    vocab = tiny_text_vocab()
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), **TINY_TEXT_ENCODER)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def read_idea_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of an IDEA ``.pth``, read with ``weights_only=True``.

    IDEA's training scripts save their ``argparse.Namespace`` of settings beside the weights; that
    one class is allowed (it only receives attribute values, which the restricted unpickler limits
    to plain data). Any other object in the file is refused. ``module.`` prefixes (from
    DistributedDataParallel) are removed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingCheckpointError(f"no IDEA Grounding DINO checkpoint at {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError and friends: name the file and the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VitronToolError(
            f"cannot read {path} as an IDEA Grounding DINO checkpoint with weights_only=True "
            f"({reason}); only tensors, plain containers and argparse.Namespace are loaded"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VitronToolError(
            f"{path} holds no state dict of tensors (under 'model' or at the top)"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}
