"""The agent service forks its sandboxed test runs while it serves gRPC: gRPC's fork support must be off.

With it on, fork() runs gRPC's child handler, which restarts gRPC's threads in the child; while a
call is in flight (a watched sprint's WatchSprint) they crash the child with SIGSEGV before exec.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# In a fresh interpreter, as the service starts: its entry module first (a spy notes the setting
# when grpc is first imported), then uvloop, a server stream in flight, and children started the
# sandbox's way (the loop's subprocess_exec, each in a session of its own).
SERVICE_LIKE = """
import json, os, sys

class Spy:
    seen = "grpc never imported"
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and not hasattr(Spy, "done"):
            Spy.seen, Spy.done = os.environ.get("GRPC_ENABLE_FORK_SUPPORT"), True
        return None

sys.meta_path.insert(0, Spy())
import crucible_agent.entrypoints.main

import asyncio, subprocess, grpc, uvloop

async def stream(request, context):
    while True:
        await asyncio.sleep(0.05)
        yield b"event"

async def main():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "t.T", {"Watch": grpc.unary_stream_rpc_method_handler(stream)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        async def watch():
            async for _ in channel.unary_stream("/t.T/Watch")(b""):
                pass
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        codes = []
        for _ in range(60):
            child = await asyncio.create_subprocess_exec(
                "true", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
            await child.communicate()
            codes.append(child.returncode)
        watcher.cancel()
    await server.stop(0)
    return codes

codes = uvloop.run(main())
print(json.dumps({"fork_support_at_grpc_import": Spy.seen, "exit_codes": sorted(set(codes))}))
"""


def test_children_started_while_a_stream_is_in_flight_reach_exec() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVICE_LIKE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Set by the entry module before anything imports grpc, which reads it once, on import. With
    # fork support on, about one child in ten died of SIGSEGV (-11) here: 60 of 60 is no luck.
    assert result == {"fork_support_at_grpc_import": "0", "exit_codes": [0]}
