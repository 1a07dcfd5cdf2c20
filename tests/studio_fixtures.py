"""A real Label Studio server for integration tests.

Load with ``pytest_plugins = ["studio_fixtures"]``. ``studio_server`` (session scope) starts
the server from ``.venv-studio`` via ``sectioncls.studio.server`` on a free port, with a data
dir in a pytest tmp dir copied from the migrated template in ``.studio/`` (built once, then
reused: a start takes seconds), yields ``(url, token)`` and stops it by PID at the end.

Without ``.venv-studio`` the tests are skipped, unless ``SECTIONCLS_REQUIRE_STUDIO`` is set
(CI that has the server env), in which case they fail: a silently skipped integration suite
must not pass as green there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from sectioncls.studio import server

REPO = Path(__file__).resolve().parents[1]
STUDIO_VENV = Path(os.environ.get("SECTIONCLS_STUDIO_VENV") or REPO / ".venv-studio")
TEMPLATE_HOME = REPO / ".studio"


class StudioServer(NamedTuple):
    url: str
    token: str


def _require() -> bool:
    return os.environ.get("SECTIONCLS_REQUIRE_STUDIO", "").strip() not in ("", "0", "false")


# url -> (username, password) of the server's account, for tests that log in with a browser.
_LOGIN: dict[str, tuple[str, str]] = {}


@pytest.fixture(scope="session")
def studio_login(studio_server: StudioServer) -> tuple[str, str]:
    """The account of the running server (email, password), as an annotator logs in."""
    return _LOGIN[studio_server.url]


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    if not (STUDIO_VENV / "bin" / "label-studio").exists():
        reason = f"Label Studio server env {STUDIO_VENV.name}/ is absent; run `make studio-env`"
        if _require():
            pytest.fail(f"{reason} (SECTIONCLS_REQUIRE_STUDIO is set)")
        pytest.skip(f"{reason} (set SECTIONCLS_REQUIRE_STUDIO=1 to fail instead)")
    home = tmp_path_factory.mktemp("studio-home")
    t0 = time.monotonic()
    state = server.start(
        home=home,
        port=server.free_port(),
        venv=STUDIO_VENV,
        template_home=TEMPLATE_HOME,
        timeout=240,
    )
    print(f"\nLabel Studio up at {state.url} in {time.monotonic() - t0:.1f}s (pid {state.pid})")
    _LOGIN[state.url] = (state.username, state.password)
    try:
        yield StudioServer(state.url, state.token)
    finally:
        server.stop(home)
        assert not server.status(home).alive
