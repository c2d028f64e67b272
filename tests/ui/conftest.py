"""Browser tests: the real stack (`crucible up`, emulator included) driven in Debian's chromium.

One stack per module. Each test's page fails on a console error; ``look`` keeps a screenshot of a
screen in ``tests/ui/artifacts/`` (git-ignored) and fails on a serious or critical axe violation.
A missing chromium fails the tests (`.ci/run` installs it): a browser test never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import ConsoleMessage, Page
from sqlalchemy.engine import make_url

from crucible_common.embedded_postgres import drop_database, ensure_database
from tests.system.conftest import start_stack

T = TypeVar("T")
ARTIFACTS = Path(__file__).parent / "artifacts"
SERIOUS = ("serious", "critical")
# A project without a ProblemSpec or WorldModel answers 404 for it: the workspace shows
# "none yet", and Chrome logs the 404 as a console error, which is expected only there.
EXPECTED_404 = re.compile(r"/api/projects/[^/]+/(problem-spec|world-model)$")


def chromium_executable() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    executable = chromium_executable()
    if executable is None:
        # A failure, never a skip: a suite that silently left out the browser would pass untested.
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (.ci/run does it)")
    return {**browser_type_launch_args, "executable_path": executable}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """None: each module's stack has its own address (``ui_stack.url``), and the tests use it whole.

    Ours, so that pytest-playwright's fallback for it (a fixture on a plugin instance, which pytest 9
    deprecates with a warning in every run) is not the one used.
    """
    return None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}, "accept_downloads": True}


def _blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    # Playwright's sync API keeps an event loop running in this thread: async work goes to another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def ui_database(admin_url: str, label: str) -> Iterator[str]:
    name = f"t_ui_{re.sub(r'[^a-z0-9]+', '_', label.lower())[-30:]}_{uuid.uuid4().hex[:8]}"
    _blocking(ensure_database(admin_url, name))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _blocking(drop_database(admin_url, name))


@dataclass(frozen=True)
class UiStack:
    url: str


@pytest.fixture(scope="module")
def ui_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    # CRUCIBLE_UI_TEST_URL points the tests at a stack already up (while working on the UI).
    given = os.environ.get("CRUCIBLE_UI_TEST_URL")
    if given:
        yield UiStack(given.rstrip("/"))
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with ui_database(admin_url, request.module.__name__.rsplit(".", 1)[-1]) as database_url:
        running = start_stack(tmp_path_factory.mktemp("ui-stack"), database_url)
        yield UiStack(running.url)
        assert running.stop() == 0, "\n".join(running.output)


@pytest.fixture
def api(ui_stack: UiStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_stack.url, timeout=30) as client:
        yield client


class ConsoleErrors:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed_404: list[re.Pattern[str]] = [EXPECTED_404]

    def allow_404(self, url: str) -> None:
        """A test that opens a missing resource on purpose expects Chrome to log its 404."""
        self.allowed_404.append(re.compile(re.escape(url) + "$"))

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if "404" in message.text and any(pattern.search(url) for pattern in self.allowed_404):
            return
        self.errors.append(f"{message.text} ({url})")

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def console() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def ui(page: Page, ui_stack: UiStack, console: ConsoleErrors) -> Iterator[Page]:
    """A page on the stack's UI that fails the test on any console error."""
    errors = console
    page.on("console", errors.console)
    page.on("pageerror", errors.page_error)
    page.set_default_timeout(15_000)
    page.goto(ui_stack.url + "/")
    yield page
    assert errors.errors == [], errors.errors


def look(page: Page, name: str) -> None:
    """Keep a screenshot of the screen, and check it with axe-core: no serious or critical violation."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]
    assert bad == [], f"{name}: accessibility violations:\n" + "\n".join(bad)
