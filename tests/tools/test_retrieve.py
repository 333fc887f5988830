"""retrieve on the tiny profile: rankings over the session or given handles, video pooling, the
feature cache, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from vitron.tools.models.clip import ClipEngine, pooled_video_feature, tiny_tokenizer


@pytest.fixture
def clip_engine(tiny_models) -> ClipEngine:
    return tiny_models.get("clip")


@pytest.fixture
def coffee(workspace):
    return workspace.put_image(data.coffee())


def test_ranks_every_image_and_video_of_the_session(invoke, photo, coffee, square_video):
    result = invoke("retrieve", instruction="a cup of coffee on a table")
    assert result.status == "success", result.content
    ranking = result.artifact["ranking"]
    assert {r["handle"] for r in ranking} == {photo.handle, coffee.handle, square_video.handle}
    kinds = {r["handle"]: r["kind"] for r in ranking}
    assert kinds[square_video.handle] == "video" and kinds[photo.handle] == "image"
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert sum(r["probability"] for r in ranking) == pytest.approx(1.0, abs=1e-3)
    assert ranking[0]["handle"] in result.content and "best first" in result.content


def test_ranked_media_are_named_by_their_place_in_the_conversation(
    invoke, photo, coffee, square_video
):
    """So an answer can say "picture 2" without looking a handle up."""
    result = invoke("retrieve", instruction="a cup of coffee on a table")
    places = {r["handle"]: r["place"] for r in result.artifact["ranking"]}
    assert places == {photo.handle: "picture 1", coffee.handle: "picture 2",
                      square_video.handle: "video 1"}  # fmt: skip
    for handle, place in places.items():
        assert f"{handle} ({place}) score" in result.content


def test_named_candidates_are_numbered_among_themselves(invoke, photo, coffee, square_video):
    """Media a call names are the ones the request is about ("which of these shows …?"), so
    "picture 1" is the first of them, in the order named, whatever came before in the
    conversation; a frame has no place."""
    frame = f"{square_video.handle}#2"
    named = invoke("retrieve", instruction="red", media=[frame, coffee.handle, photo.handle])
    places = {r["handle"]: r["place"] for r in named.artifact["ranking"]}
    assert places == {frame: None, coffee.handle: "picture 1", photo.handle: "picture 2"}
    assert f"{frame} (frame) score" in named.content
    assert f"{coffee.handle} (picture 1)" in named.content


def test_the_tools_overlays_are_left_out_unless_named(invoke, photo, coffee, square_video):
    overlays = []
    for tool, args in (("segment_image", {"image": photo.handle, "regions": [[0.1, 0.1, 0.6, 0.6]]}),
                       ("ground", {"image": coffee.handle, "instruction": "a cup"}),
                       ("track_video", {"video": square_video.handle,
                                        "regions": [[0.2, 0.2, 0.5, 0.5]]})):  # fmt: skip
        made = invoke(tool, **args)
        assert made.status == "success", made.content
        if made.artifact.get("overlay"):
            overlays.append(made.artifact["overlay"])
    assert len(overlays) >= 2  # segment_image and track_video always draw one
    result = invoke("retrieve", instruction="a cup of coffee on a table")
    ranked = {r["handle"] for r in result.artifact["ranking"]}
    assert ranked == {photo.handle, coffee.handle, square_video.handle}, result.content
    named = invoke("retrieve", instruction="a cup", media=[overlays[0], photo.handle])
    assert overlays[0] in {r["handle"] for r in named.artifact["ranking"]}  # named: ranked


def test_given_handles_frames_and_top_k(invoke, photo, coffee, square_video):
    frame = f"{square_video.handle}#2"
    result = invoke("retrieve", instruction="red", media=[photo.handle, frame, coffee.handle],
                    top_k=2)  # fmt: skip
    assert result.status == "success", result.content
    ranking = result.artifact["ranking"]
    assert len(ranking) == 2
    assert result.content.startswith("2 of 3 media ranked")
    full = invoke("retrieve", instruction="red", media=[photo.handle, frame, coffee.handle])
    assert full.artifact["ranking"][:2] == ranking
    assert {r["kind"] for r in full.artifact["ranking"]} == {"image", "frame"}


def test_scores_are_cosine_similarities_and_videos_pool_sampled_frames(
    invoke, square_video, workspace, clip_engine
):
    result = invoke(
        "retrieve", instruction="a square", media=[square_video.handle], frames_per_video=3
    )
    assert result.status == "success", result.content
    frames = workspace.get_video(square_video.handle).frames
    sampled = [Image.fromarray(frames[i]) for i in (0, 2, 5)]  # evenly from first to last
    expected = pooled_video_feature(clip_engine.image_features(sampled))
    text = clip_engine.text_features("a square")
    assert result.artifact["ranking"][0]["score"] == pytest.approx(float(expected @ text), abs=1e-4)
    assert float(expected.norm()) == pytest.approx(1.0, abs=1e-5)


def test_features_are_cached_per_handle(invoke, photo, square_video, clip_engine):
    assert invoke("retrieve", instruction="a person").status == "success"
    encoded = clip_engine.images_encoded
    again = invoke("retrieve", instruction="a video of a moving square")
    assert again.status == "success"
    assert clip_engine.images_encoded == encoded  # only the new text was encoded


def test_a_cached_feature_does_not_let_another_conversation_name_the_media(invoke, photo):
    assert invoke("retrieve", instruction="a person", media=[photo.handle]).status == "success"
    other = invoke("retrieve", thread="another-thread", instruction="x", media=[photo.handle])
    assert other.status == "error" and "not in this conversation" in other.content


def test_rankings_reproduce(invoke, photo, coffee):
    first = invoke("retrieve", instruction="a person in a space suit")
    second = invoke("retrieve", instruction="a person in a space suit")
    assert first.artifact["ranking"] == second.artifact["ranking"]


def test_tokenizer_needs_no_files_and_reads_any_text():
    tokenizer = tiny_tokenizer()
    ids = tokenizer("Ünïcode café ☕ 42!").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids[1:-1]
    long = tokenizer("word " * 200, truncation=True, max_length=77).input_ids
    assert len(long) == 77


def test_unreadable_session_media_are_skipped_but_named_media_fail(invoke, photo, workspace):
    # a video no other test ranks, so no cached feature hides the damage
    clip = workspace.put_video([np.full((16, 16, 3), v, np.uint8) for v in (7, 9)], fps=2)
    workspace.path(clip.handle).write_bytes(b"not a video at all")
    skipped = invoke("retrieve", instruction="anything")
    assert skipped.status == "success", skipped.content
    assert [r["handle"] for r in skipped.artifact["ranking"]] == [photo.handle]
    assert clip.handle in skipped.content and "Skipped" in skipped.content
    named = invoke("retrieve", instruction="anything", media=[clip.handle])
    assert named.status == "error" and "cannot read" in named.content


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "say what to look for"),
        ({"instruction": "x", "regions": [[0.1, 0.1, 0.5, 0.5]]}, "takes no regions"),
        ({"instruction": "x", "media": ["mask_0123456789abcdef"]}, "takes img_"),
        ({"instruction": "x", "media": ["img_0123456789abcdef"]}, "not in this conversation"),
        ({"instruction": "x", "top_k": 0}, "top_k"),
    ],
)
def test_bad_requests_are_errors_that_say_why(invoke, photo, args, expected):
    result = invoke("retrieve", **args)
    assert result.status == "error"
    assert expected in result.content


def test_an_empty_conversation_has_nothing_to_rank(invoke):
    result = invoke("retrieve", instruction="a dog")
    assert result.status == "error" and "no images or videos" in result.content


def test_signal_is_accepted_and_said_to_be_unused(invoke, photo, workspace):
    signal = workspace.put_embedding(torch.zeros(64))
    result = invoke("retrieve", instruction="x", signal=signal.handle)
    assert result.status == "success" and "not used by retrieve" in result.content
    assert np.isfinite(result.artifact["ranking"][0]["score"])
