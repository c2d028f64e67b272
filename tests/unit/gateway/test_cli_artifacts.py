"""The CLI reads the paginated artifact listing of the gateway to its last page."""

from __future__ import annotations

from typing import Any

import pytest

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_cli import sprints as cli_sprints
from tests.unit.gateway.conftest import starlette_client
from tests.unit.gateway.fakes import SPRINT_ID, Call, Fakes, FakeSprints

PAGES = {"": (["a.py", "b.py"], "p2"), "p2": (["c/d.md"], "p3"), "p3": ([], "")}


class PagedSprints(FakeSprints):
    async def ListArtifacts(
        self, request: sprint_pb.ListArtifactsRequest, timeout: float | None = None
    ) -> sprint_pb.ListArtifactsResponse:
        self.calls.append(Call("ListArtifacts", request, timeout))
        paths, token = PAGES[request.page_token]
        return sprint_pb.ListArtifactsResponse(
            artifacts=[sprint_pb.Artifact(path=p, size=len(p)) for p in paths], next_page_token=token
        )


def test_the_cli_follows_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(sprints=PagedSprints())
    with starlette_client(fakes) as gateway:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            response = gateway.request(method, path, **kwargs)
            assert response.status_code == 200, response.text
            return response.json()

        monkeypatch.setattr(cli_sprints, "call", call)
        listing = cli_sprints._all_artifacts(SPRINT_ID)

    assert listing == {
        "artifacts": [{"path": "a.py", "size": 4}, {"path": "b.py", "size": 4}, {"path": "c/d.md", "size": 6}]
    }
    assert [c.request for c in fakes.sprints.calls] == [
        sprint_pb.ListArtifactsRequest(sprint_id=SPRINT_ID, page_token=token) for token in ("", "p2", "p3")
    ]
