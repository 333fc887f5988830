"""A real PostgreSQL for the scale tests: one throw-away cluster per test session.

Where it cannot start (no PostgreSQL installed, no unprivileged user to run it as) the tests that
need it skip, saying why — unless ``VITRON_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where that is
a failure, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.scale.postgres_cluster import PostgresUnavailable, postgres_cluster


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        cluster = postgres_cluster()
        url = cluster.__enter__()
    except PostgresUnavailable as exc:
        if os.environ.get("VITRON_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (VITRON_REQUIRE_POSTGRES=1): {exc}")
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)
