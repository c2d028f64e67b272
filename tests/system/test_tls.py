"""The whole stack with TLS between its processes (CRUCIBLE_TLS_*, mutual): the supervisor sees every
service healthy over TLS, the gateway's calls reach the services, and a plaintext client is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from crucible_common.clients import open_channel, service_channel
from crucible_common.settings import Settings
from tests.integration.test_tls import _pki, _serving
from tests.system.conftest import start_stack

pytestmark = pytest.mark.system


async def test_a_stack_with_mutual_tls_serves_and_refuses_plaintext(stack_database_url: str, tmp_path: Path) -> None:
    files = _pki(tmp_path, "stack")
    env = {
        "CRUCIBLE_TLS_CA_FILE": str(files["ca"]),
        "CRUCIBLE_TLS_CERT_FILE": str(files["cert"]),
        "CRUCIBLE_TLS_KEY_FILE": str(files["key"]),
        "CRUCIBLE_TLS_REQUIRE_CLIENT_CERT": "true",
    }
    stack = start_stack(tmp_path / "state", stack_database_url, extra_env=env)
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            health = (await http.get("/healthz")).json()
            created = await http.post("/api/projects", json={"title": "over TLS"})
            read = await http.get(f"/api/projects/{created.json()['id']}")
        settings = Settings(
            tls_ca_file=files["ca"],
            tls_cert_file=files["cert"],
            tls_key_file=files["key"],
            tls_require_client_cert=True,
        )
        async with service_channel(stack.addresses["spec"], settings) as trusted:
            answered = await _serving(trusted)
        async with open_channel(stack.addresses["spec"]) as plaintext:
            refused = await _serving(plaintext)
    finally:
        assert stack.stop() == 0, "\n".join(stack.output)

    assert health["status"] == "ok", health
    assert created.status_code == 201, created.text
    assert read.json()["title"] == "over TLS"
    assert answered is True
    assert refused == "UNAVAILABLE"
