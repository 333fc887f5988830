"""LangChain's standard chat-model unit tests for ChatVitron, for every capability it declares.

ChatVitron does not declare LangChain serialisation (``is_lc_serializable``): the suite's
``test_serdes`` loads with ``allowed_objects="all"``, langchain-core's allowlist of its partner
packages, which refuses any other package's class; so that one standard test skips itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from vitron.agent.chat_model import ChatVitron


@pytest.fixture
def benchmark() -> Callable[..., Any]:
    """The suite runs with pytest-benchmark switched off (``-p no:benchmark``); its
    ``test_init_time`` then only needs the function run, which this does (once)."""

    def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return run


class TestChatVitronStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatVitron]:
        return ChatVitron

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite binds arbitrary tools (an adder, pydantic models); Vitron's grammar names only
        # its modules, so the instance under test skips the others instead of raising.
        return {
            "profile": "tiny",
            "unknown_tools": "ignore",
            "workspace": "/tmp/vitron-standard-tests",
            "device": "cpu",
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return False  # only Vitron's modules can be invoked, not an arbitrary schema

    @property
    def supports_image_inputs(self) -> bool:
        return True  # base64 image content blocks

    @property
    def supports_video_inputs(self) -> bool:
        return True  # base64 video content blocks

    @property
    def supports_image_urls(self) -> bool:
        return False  # nothing is fetched over the network

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"VITRON_WORKSPACE": "/tmp/vitron-env-workspace", "VITRON_DEVICE": "cpu"}
        return env, {}, {"workspace": env["VITRON_WORKSPACE"], "device": "cpu"}
