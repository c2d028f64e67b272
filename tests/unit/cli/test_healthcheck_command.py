"""``crucible healthcheck``: a gRPC server's health service, or an HTTP URL's status, as an exit code."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from crucible_cli.main import app

runner = CliRunner()


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    """A gRPC server on a free loopback port with only the standard health service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is not the place for access logs."""


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Healthz]]]:
    handler = type("Handler", (_Healthz,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz", handler
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_serving_grpc_server_is_healthy(health_server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    result = runner.invoke(app, ["healthcheck", address])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{address}: SERVING"


def test_a_grpc_server_that_is_not_serving_is_not_healthy(health_server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

    result = runner.invoke(app, ["healthcheck", address])

    assert result.exit_code == 1
    assert "NOT_SERVING" in result.output


def test_one_service_of_the_server_can_be_asked_about(health_server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("crucible.run.v1.RunService", health_pb2.HealthCheckResponse.NOT_SERVING)

    assert runner.invoke(app, ["healthcheck", address, "--service", "crucible.run.v1.RunService"]).exit_code == 1
    unknown = runner.invoke(app, ["healthcheck", address, "--service", "crucible.nope.v1.Nope"])
    assert unknown.exit_code == 1
    assert "NOT_FOUND" in unknown.output


def test_with_crucible_tls_set_the_check_speaks_tls_to_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    files = {"CA": tmp_path / "ca.pem", "CERT": tmp_path / "cert.pem", "KEY": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["CA"]))
    leaf.cert_chain_pems[0].write_to_path(str(files["CERT"]))
    leaf.private_key_pem.write_to_path(str(files["KEY"]))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials([(files["KEY"].read_bytes(), files["CERT"].read_bytes())])
    address = f"127.0.0.1:{server.add_secure_port('127.0.0.1:0', credentials)}"
    server.start()
    try:
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        plaintext = runner.invoke(app, ["healthcheck", address, "--timeout", "2"])
        for name, path in files.items():
            monkeypatch.setenv(f"CRUCIBLE_TLS_{name}_FILE", str(path))
        over_tls = runner.invoke(app, ["healthcheck", address])
        monkeypatch.delenv("CRUCIBLE_TLS_KEY_FILE")
        half_configured = runner.invoke(app, ["healthcheck", address])
    finally:
        server.stop(grace=None)

    assert plaintext.exit_code == 1
    assert over_tls.exit_code == 0, over_tls.output
    assert over_tls.output.strip() == f"{address}: SERVING"
    assert half_configured.exit_code == 1
    assert "CRUCIBLE_TLS_KEY_FILE" in half_configured.output


def test_nothing_listening_is_not_healthy_and_says_why() -> None:
    address = f"127.0.0.1:{_free_port()}"

    result = runner.invoke(app, ["healthcheck", address, "--timeout", "1"])

    assert result.exit_code == 1
    assert "UNAVAILABLE" in result.output


def test_an_http_url_is_healthy_only_with_200(http_server: tuple[str, type[_Healthz]]) -> None:
    url, handler = http_server

    ok = runner.invoke(app, ["healthcheck", url])
    handler.status = 503
    unavailable = runner.invoke(app, ["healthcheck", url])

    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == f"{url}: HTTP 200"
    assert unavailable.exit_code == 1
    assert "HTTP 503" in unavailable.output


def test_an_http_url_with_nothing_listening_is_not_healthy() -> None:
    result = runner.invoke(app, ["healthcheck", f"http://127.0.0.1:{_free_port()}/healthz", "--timeout", "1"])

    assert result.exit_code == 1
    assert "refused" in result.output.lower()


def test_the_executable_checks_health_without_loading_the_rest_of_the_cli(
    health_server: tuple[str, health.HealthServicer],
) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    # What the `crucible` script runs, in a fresh interpreter, reporting which modules it loaded.
    script = (
        "import sys\n"
        "from crucible_cli.launcher import main\n"
        f"sys.argv = ['crucible', 'healthcheck', {address!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'crucible_cli.main' in sys.modules, 'mcp' in sys.modules)\n"
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.splitlines()[-1] == "exit 0 False False"
