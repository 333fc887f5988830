"""A backend from outside the package plugs in with one module and one profile entry."""

from __future__ import annotations

import numpy as np
from langchain_core.messages import AIMessage, ToolMessage

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.tools.backend import build_tools, registered_backends

PROFILE = """
extends = "tiny"
name = "tiny-plus-colours"

[components.colour_namer]
loader = "tests.graphs.plugin_backend:load_colour_namer"
checkpoint = "tiny"
palette = { red = [255, 0, 0], grey = [128, 128, 128] }
"""


def test_an_outside_backend_is_routed_to_and_its_model_loads_from_the_profile(tmp_path):
    import tests.graphs.plugin_backend  # noqa: F401  (registers the backend)

    assert "mean_colour" in registered_backends()
    profile = tmp_path / "mine.toml"
    profile.write_text(PROFILE)
    context = Context(profile=str(profile), workspace=str(tmp_path / "ws"), device="cpu")
    image = (
        context.services()
        .workspace.for_thread("t")
        .put_image(np.full((8, 8, 3), 130, dtype=np.uint8))
    )

    steps = [tool_call("mean_colour", image=image.handle, digits=0), AIMessage(content="grey")]
    graph = build_graph(ScriptedChatModel(steps=steps), tools=build_tools())
    result = graph.invoke(
        {"messages": [user_message("what colour?", media=[image])]},
        {"configurable": {"thread_id": "t"}},
        context=context,
    )
    (answer,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answer.status == "success", answer.content
    assert answer.artifact == {"media": {}, "rgb": [130.0, 130.0, 130.0], "name": "grey"}
    assert context.services().models.profile.component("sam").profile == "tiny-plus-colours"
