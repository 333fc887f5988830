"""Heavy backends on Ray Serve: a session through the graph with two served backends, a replica
killed mid-session, and the client's error contract."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from tests.scale.planner import HandlePlanner
from tests.scale.threads_script import photo_for
from vitron.graphs import Context, build_graph, user_message
from vitron.tools import serving
from vitron.tools.backend import build_tools, registered_backends
from vitron.tools.profiles import load_profile

SERVED_PROFILE = """
name = "tiny-ray"
extends = "tiny"

[components.sam]
serve = "ray"
num_cpus = 0.1
memory = "1GB"

[components.grounding_dino]
serve = "ray"
num_cpus = 0.1
"""


def test_a_profile_says_which_backends_are_served_and_with_what(tmp_path):
    path = tmp_path / "tiny-ray.toml"
    path.write_text(SERVED_PROFILE)
    profile, backends = load_profile(path), registered_backends()
    assert sorted(serving.served_backends(profile, backends)) == ["ground", "segment_image"]
    assert serving.remote_backend(load_profile("tiny"), backends["ground"]) is None
    options = serving.deployment_options(profile, backends["segment_image"])
    assert options["ray_actor_options"] == {"num_cpus": 0.1, "memory": 10**9}
    assert options["num_replicas"] == 1
    everything = tmp_path / "all.toml"
    everything.write_text('extends = "tiny"\nserve = "ray"\n')
    served = serving.served_backends(load_profile(everything), backends)
    assert {"segment_image", "ground", "generate_image", "track_video"} <= set(served)


class FlakyHandle:
    """A deployment handle whose first ``fail`` calls die like a killed replica."""

    def __init__(self, fail: int, reply: dict) -> None:
        self.fail, self.reply, self.calls = fail, reply, 0

    def remote(self, request: dict) -> FlakyHandle:
        self.calls += 1
        return self

    def result(self, timeout_s: float) -> dict:
        from ray.exceptions import ActorDiedError

        if self.calls <= self.fail:
            raise ActorDiedError()
        return self.reply


@pytest.mark.parametrize("fail", [1, 2])
def test_a_dead_replica_is_retried_once_then_a_clear_error(monkeypatch, fail):
    reply = {"ok": True, "content": "done", "created": [], "data": {}, "notes": [], "notices": []}
    handle = FlakyHandle(fail, reply)
    monkeypatch.setattr(serving, "_handle", lambda app: handle)
    client = serving.RayBackendClient("vitron-tiny-ground", "ground", timeout=5)
    if fail == 1:
        assert client._call({}) == reply and handle.calls == 2
    else:
        with pytest.raises(Exception, match="replica died twice in a row") as info:
            client._call({})
        assert type(info.value).__name__ == "ToolException" and handle.calls == 2


@pytest.fixture(scope="module")
def ray_serve():
    """A local Ray cluster on loopback, small (2 CPUs, 200 MB object store), with Serve (no HTTP)."""
    ray = pytest.importorskip("ray")
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}})  # fmt: skip
    try:
        serve.start(proxy_location="Disabled")
        yield serve
    finally:
        serving.forget_handles()
        serve.shutdown()
        ray.shutdown()


def replica_actor(app: str) -> str:
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    found = [n for n in names if n.startswith(f"SERVE_REPLICA::{app}#")]
    assert len(found) == 1, names
    return found[0]


@pytest.mark.heavy
@pytest.mark.timeout(1500)  # 90 s on an idle 2-core box; Ray's workers start slowly when it is busy
def test_a_session_keeps_answering_when_a_served_replica_dies(
    ray_serve, tmp_path, capsys, monkeypatch, caplog
):
    import ray

    from vitron.apps.cli import main

    profile_path = tmp_path / "tiny-ray.toml"
    profile_path.write_text(SERVED_PROFILE)
    assert main(["serve", "--profile", str(profile_path), "--device", "cpu"]) == 0  # vitron serve
    deployed = capsys.readouterr().out.split()
    assert sorted(deployed) == ["deployed", "deployed", "vitron-tiny-ray-ground",
                                "vitron-tiny-ray-segment_image"]  # fmt: skip

    context = Context(profile=str(profile_path), workspace=str(tmp_path / "ws"), device="cpu",
                      approve_before=[])  # fmt: skip
    graph = build_graph(HandlePlanner(), checkpointer=InMemorySaver())
    thread = "ray-session"
    config = {"configurable": {"thread_id": thread}}
    workspace = context.services().workspace.for_thread(thread)

    def turn(text: str, image_seed: str | None = None) -> list:
        media = [workspace.put_image(photo_for(image_seed))] if image_seed else []
        inputs = {"messages": [user_message(text, media=media)],
                  "media": {m.handle: m.to_state() for m in media}}  # fmt: skip
        before = len(graph.get_state(config).values.get("messages") or [])
        graph.invoke(inputs, config, context=context)
        return graph.get_state(config).values["messages"][before:]

    def tool_result(messages: list) -> ToolMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        assert len(results) == 1, messages
        return results[0]

    first = tool_result(turn("segment the astronaut", image_seed="a"))
    assert first.name == "segment_image" and first.status == "success", first.content
    mask = first.artifact["masks"][0]
    assert workspace.exists(mask)  # the replica wrote into the same workspace
    second = tool_result(turn("what is next to it?"))
    assert second.name == "ground" and second.status == "success", second.content
    assert f"nearest to {mask}" in second.content
    # the models ran in the replicas, not here
    assert not {"sam", "grounding_dino"} & set(context.services().models.loaded())
    # a backend's error in a replica is an error ToolMessage here, in the local wording
    ground = next(t for t in build_tools(context.services()) if t.name == "ground")
    missing = "img_" + "ab" * 8
    failed = ground.invoke({"type": "tool_call", "id": "c1", "name": "ground",
                            "args": {"image": missing, "instruction": "object"}},
                           config)  # fmt: skip
    assert failed.status == "error" and f"{missing} is not in this conversation" in failed.content

    # kill the segmentation replica between turns: the next call waits for its replacement
    killed = replica_actor("vitron-tiny-ray-segment_image")
    ray.kill(ray.get_actor(killed, namespace="serve"), no_restart=True)
    third = tool_result(turn("and segment this one", image_seed="b"))
    assert third.name == "segment_image" and third.status == "success", third.content
    assert replica_actor("vitron-tiny-ray-segment_image") != killed

    # kill the grounding replica once it has the call (the real handle, the real replica; only
    # the moment is chosen): the call is retried once and the turn answers from the replacement
    victim = replica_actor("vitron-tiny-ray-ground")
    real_handle = serving._handle

    class KillAfterSend:
        def __init__(self, handle: object) -> None:
            self.handle = handle

        def remote(self, request: dict) -> object:
            response = self.handle.remote(request)
            response._to_object_ref_sync()  # wait until a replica has the request
            with contextlib.suppress(ValueError):  # already gone: the retry's call
                ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
            return response

    monkeypatch.setattr(serving, "_handle", lambda app: KillAfterSend(real_handle(app)))
    with caplog.at_level("WARNING", logger="vitron.tools.serving"):
        fourth = turn("what is next to it now?")
    monkeypatch.setattr(serving, "_handle", real_handle)
    lost = [r.getMessage() for r in caplog.records if "replica lost" in r.getMessage()]
    assert len(lost) == 1 and "(attempt 1)" in lost[0]  # died under the call, retried once
    assert replica_actor("vitron-tiny-ray-ground") != victim
    result = tool_result(fourth)
    assert result.name == "ground" and result.status == "success", result.content
    assert fourth[-1].type == "ai" and fourth[-1].content.startswith("ground answered")
    history = graph.get_state(config).values["messages"]
    assert [m.type for m in history] == ["human", "ai", "tool", "ai"] * 4


def test_an_undeployed_served_backend_is_an_error_message(ray_serve, tmp_path):
    path = tmp_path / "tiny-ray.toml"
    path.write_text(SERVED_PROFILE.replace('name = "tiny-ray"', 'name = "tiny-nowhere"'))
    context = Context(profile=str(path), workspace=str(tmp_path / "ws"), device="cpu",
                      approve_before=[])  # fmt: skip
    graph = build_graph(HandlePlanner(), checkpointer=InMemorySaver())
    workspace = context.services().workspace.for_thread("t")
    photo = workspace.put_image(photo_for("c"))
    inputs = {"messages": [user_message("segment", media=[photo])],
              "media": {photo.handle: photo.to_state()}}  # fmt: skip
    out = graph.invoke(inputs, {"configurable": {"thread_id": "t"}}, context=context)
    result = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert result.status == "error" and "is not deployed" in result.content
    assert out["messages"][-1].content.startswith("segment_image failed")


def test_the_gpu_plan_profile_serves_every_model_backend_within_four_gpus():
    """deploy/vitron-7b-ray.toml (README "Scaling"): what `vitron serve` would ask Ray for."""
    profile = load_profile(Path(__file__).resolve().parents[2] / "deploy" / "vitron-7b-ray.toml")
    backends = registered_backends()
    with_models = sorted(n for n, b in backends.items()
                         if b.components and b.components[0] in profile.components)  # fmt: skip
    assert sorted(serving.served_backends(profile, backends)) == with_models
    total = 0.0
    for name in with_models:
        options = serving.deployment_options(profile, backends[name])
        gpus = options["ray_actor_options"]["num_gpus"]
        assert 0 < gpus <= 1 and options["ray_actor_options"]["memory"] > 0, (name, options)
        total += gpus * options["num_replicas"]
    assert total <= 4
    assert serving.deployment_options(profile, backends["segment_image"])["num_replicas"] == 2


def test_the_serve_config_file_deploys_the_plan_under_the_names_the_client_calls():
    import re

    root = Path(__file__).resolve().parents[2]
    profile = load_profile(root / "deploy" / "vitron-7b-ray.toml")
    text = (root / "deploy" / "ray-serve.yaml").read_text()
    apps = re.findall(r"name: (\S+), route_prefix: null, import_path: \"vitron.tools.serve_ray:app\", "
                      r"args: \{backend: (\w+), profile: \S+/deploy/vitron-7b-ray.toml\}", text)  # fmt: skip
    served = serving.served_backends(profile, registered_backends())
    assert sorted(backend for _, backend in apps) == sorted(served)
    assert all(name == serving.app_name(profile, backend) for name, backend in apps)
