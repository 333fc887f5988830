"""ChatVitron as the graph's planner: a tiny Vitron LLM fitted in a few dozen CPU steps to one
short conversation reproduces its invocation inside the graph, with a signal embedding that
reaches segment_image; the tool result comes back to the model, which answers; and
``stream_mode="messages"`` shows the answer token by token."""

from __future__ import annotations

import random
import re

import pytest
import torch
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from skimage import data

import vitron.agent.rendering as rendering
import vitron.tools.steps.masks as mask_step
from vitron.agent.build import build_tiny_vitron
from vitron.agent.chat_model import ChatVitron
from vitron.agent.inputs import Turn
from vitron.agent.invocation import format_invocation
from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.scripted import ScriptedChatModel, tool_call

REGION = [0.1, 0.1, 0.6, 0.9]
INVOCATION = format_invocation("segment_image", "the astronaut", [REGION])
ANSWER = "Done: the astronaut is segmented, see the mask."


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Context:
    workspace = tmp_path_factory.mktemp("chat-vitron-graph") / "workspace"
    return Context(profile="tiny", workspace=str(workspace), device="cpu", step_limit=3)


def ask(context: Context, thread: str) -> tuple[dict, dict]:
    """Inputs (the astronaut photo with a drawn region) and config for one turn on ``thread``."""
    photo = context.services().workspace.for_thread(thread).put_image(data.astronaut())
    message = user_message(
        "segment the astronaut",
        media=[photo],
        regions=[{"media": photo.handle, "box": REGION}],
    )
    inputs = {"messages": [message], "media": {photo.handle: photo.to_state()}}
    return inputs, {"configurable": {"thread_id": thread}}


def seen_by_planner(context: Context) -> list[list]:
    """The messages the vitron_llm node gives its planner at each step of the scripted turn
    (a scripted planner makes the same tool call the fitted model is to learn, minus the signal).
    """
    seen: list[list] = []

    def call_tool(messages):
        seen.append(list(messages))
        image = messages[1].additional_kwargs["regions"][0]["media"]
        return tool_call(
            "segment_image", image=image, instruction="the astronaut", regions=[REGION]
        )

    def answer(messages):
        seen.append(list(messages))
        return AIMessage(content=ANSWER)

    graph = build_graph(ScriptedChatModel(steps=[call_tool, answer]))
    graph.invoke(*ask(context, "capture"), context=context)
    return seen


def with_other_numbers(messages: list, seed: int) -> list:
    """The same messages with every digit and handle hex of the tool result changed: the fitted
    answer must not hang on the exact mask the scripted run made (the signal changes it)."""
    rng = random.Random(seed)
    *head, result = messages
    hexes = re.sub(
        r"\b(img|mask)_[0-9a-f]+",
        lambda m: m.group(1) + "_" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
        result.content,
    )
    text = re.sub(r"(?<![a-z_0-9])\d+", lambda m: str(rng.randrange(10 ** len(m.group()))), hexes)
    return [*head, result.model_copy(update={"content": text})]


@pytest.fixture(scope="module")
def fitted(context):
    """The tiny model fitted to both steps of the turn (plain supervised loop, answer tokens only)."""
    model, processor = build_tiny_vitron(seed=0)
    renderer = ChatVitron.from_model(model, processor, workspace=context.workspace, device="cpu")
    first, second = seen_by_planner(context)
    variants = [second, *(with_other_numbers(second, seed) for seed in range(2))]
    examples = []
    for messages, target in [(first, INVOCATION), *((v, ANSWER) for v in variants)]:
        turns = renderer.render(messages, thread_id="capture").turns
        prompt = processor.encode_chat(turns)
        full = processor.encode_chat(
            [*turns, Turn("assistant", target)], add_generation_prompt=False
        )
        start = prompt["input_ids"].shape[1]
        assert torch.equal(full["input_ids"][:, :start], prompt["input_ids"])
        labels = full["input_ids"].clone()
        labels[:, :start] = -100
        examples.append((full, labels))

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    model.train()
    for _step in range(80):
        losses = []
        for batch, labels in examples:
            loss = model(**batch, labels=labels).loss
            loss.backward()
            losses.append(float(loss.detach()))
        optimizer.step()
        optimizer.zero_grad()
        if max(losses) < 0.05:
            break
    model.eval()
    assert max(losses) < 0.1, f"the tiny model did not fit: losses {losses}"
    return model, processor


@pytest.fixture
def planner(fitted) -> ChatVitron:
    model, processor = fitted
    return ChatVitron.from_model(model, processor, max_new_tokens=64)


@pytest.mark.heavy
def test_the_graph_runs_with_chat_vitron_signals_reach_the_backend_and_the_result_comes_back(
    context, planner, monkeypatch
):
    prompts: list[list[Turn]] = []
    render = rendering.render_messages

    def spy_render(messages, workspace, **kwargs):
        rendered = render(messages, workspace, **kwargs)
        prompts.append(rendered.turns)
        return rendered

    received: list[str | None] = []
    project = mask_step.project_signal

    def spy_signal(signal, component, call, **kwargs):
        received.append(signal)
        return project(signal, component, call, **kwargs)

    monkeypatch.setattr(rendering, "render_messages", spy_render)
    monkeypatch.setattr(mask_step, "project_signal", spy_signal)

    inputs, config = ask(context, "fitted")
    result = build_graph(planner).invoke(inputs, config, context=context)
    human, call, tool, answer = result["messages"]

    # the model reproduced its invocation; the parsed call carries image, region and signal
    assert call.response_metadata["parse_errors"] == []
    (parsed,) = call.tool_calls
    assert parsed["name"] == "segment_image"
    assert parsed["args"]["image"] == human.additional_kwargs["regions"][0]["media"]
    assert parsed["args"]["instruction"] == "the astronaut"
    assert parsed["args"]["regions"] == [pytest.approx(REGION, abs=1e-3)]
    signal = parsed["args"]["signal"]
    workspace = context.services().workspace.for_thread("fitted")
    embedding = workspace.get_embedding(signal)
    assert embedding.shape == (64,)  # the tiny profile's "sam" signal space
    assert workspace.describe(signal).extra == {"space": "sam", "token": "[SEG]"}
    assert call.usage_metadata["input_tokens"] > 64 and call.usage_metadata["output_tokens"] > 5

    # segment_image got the signal handle and used it (through the sam_signal projector)
    assert received == [signal]
    assert isinstance(tool, ToolMessage) and tool.status == "success", tool.content
    assert tool.content.startswith("mask_")

    # the result went back to the model for the next step, which answered in words
    assert len(prompts) == 2
    assert prompts[1][-1] == Turn("tool", f"segment_image returned: {tool.content}")
    assert INVOCATION in prompts[1][-2].content
    assert isinstance(answer, AIMessage) and answer.content == ANSWER and not answer.tool_calls


@pytest.mark.heavy
def test_graph_stream_messages_yields_vitron_llm_tokens_one_by_one(context, planner):
    inputs, config = ask(context, "streamed")
    graph = build_graph(planner)
    chunks, final = [], None
    for mode, item in graph.stream(
        inputs, config, context=context, stream_mode=["messages", "values"]
    ):
        if mode == "values":
            final = item["messages"]
        elif item[1]["langgraph_node"] == "vitron_llm" and isinstance(item[0], AIMessageChunk):
            chunks.append(item[0])
    first, answer = final[1], final[3]

    by_message: dict[str, list[AIMessageChunk]] = {}
    for chunk in chunks:
        by_message.setdefault(chunk.id, []).append(chunk)
    step_one, step_two = by_message.values()

    # step one: markup is held back; the last chunk carries the tool call and its signal
    assert all(c.content == "" for c in step_one)
    assert len(step_one) == first.usage_metadata["output_tokens"] + 1
    assert step_one[-1].tool_call_chunks[0]["name"] == "segment_image"
    assert '"signal": "emb_' in step_one[-1].tool_call_chunks[0]["args"]

    # step two: one chunk per generated token, the text arriving piece by piece
    assert len(step_two) == answer.usage_metadata["output_tokens"] + 1
    pieces = [c.content for c in step_two if c.content]
    assert len(pieces) >= 5
    assert "".join(pieces) == answer.content == ANSWER
