"""The offline LLM emulator: an offline stand-in for the OpenAI and Anthropic APIs, not a language model.

It is a local HTTP server that speaks the OpenAI Chat Completions and Anthropic Messages wire
protocols on loopback, so the real ``openai`` and ``anthropic`` SDKs talk to it exactly as to the real
providers, and the whole of Crucible runs without API keys. Behind the protocols sits a deterministic
offline model made of rules and templates (``offline_model``, ``tasks``, ``coding_agent``): the same request
always gets the same answer, and the answers are schema-valid and depend on the prompt, but nothing
here understands language. Do not read quality into its output.

Start it::

    crucible-emulator                      # or: python -m crucible_emulator
    CRUCIBLE_EMULATOR_HOST=127.0.0.1 CRUCIBLE_EMULATOR_PORT=8090 crucible-emulator

and point the SDKs at it (any non-empty key is accepted)::

    openai.AsyncOpenAI(base_url="http://127.0.0.1:8090/openai/v1", api_key="emulator")
    anthropic.AsyncAnthropic(base_url="http://127.0.0.1:8090/anthropic", api_key="emulator")

Endpoints:

* ``POST /openai/v1/chat/completions`` and ``POST /anthropic/v1/messages`` (``n`` = 1), streamed with
  ``"stream": true`` as the real APIs stream: server-sent ``chat.completion.chunk`` objects ending in
  ``data: [DONE]`` (with a usage chunk when ``stream_options.include_usage``), and Anthropic's
  ``message_start``, ``ping``, ``content_block_start`` / ``_delta`` / ``_stop``, ``message_delta``,
  ``message_stop`` events. A streamed answer is the non-streamed one cut into pieces of a few words (a
  malformed one streams its spoiled text); the faults answered with an HTTP error, and the ``timeout``
  stall, come before the stream starts; a ``truncated`` answer is a 200 whose connection closes
  part-way: after half the body (sent with its full ``Content-Length``), or after half the events;
* ``GET /emulator/config``; ``PUT /emulator/config`` with the fields to change (``faults`` replaces the
  whole rule list; invalid input is a 400); ``POST /emulator/reset`` zeroes the counters and the request
  sequence and drops the fault rules; ``GET /emulator/stats`` (requests by provider and task, faults
  injected, and ``answered`` / ``answered_by_task``: the answers delivered in full with a 200, malformed
  ones included, to a caller still connected); ``GET /healthz``.

Structured output is requested with OpenAI ``response_format`` ``json_schema`` (or a forced function)
and with an Anthropic forced tool; the schema's name selects the task: ``planning_questions``,
``judge_decision``, ``architect_reply``, ``problem_spec_refinement``, ``world_model_refinement``,
``design_candidates``, ``scenarios``, ``evaluation``, ``sprint_plan`` (contracts in ``tasks``), any other
name gets a generic schema-valid instance. Offering ``fs_write_file`` and ``run_tests`` tools starts the
coding agent (contract in ``coding_agent``). Latency, jitter and faults (HTTP 500, 429, malformed
structured output, code that fails its tests, a stall of ``timeout_seconds`` (60 s) before a normal answer,
an answer cut off on the wire) are configured by ``EmulatorConfig``, initially from
``CRUCIBLE_EMULATOR_LATENCY_MS``, ``_JITTER_MS``, ``_ERROR_RATE``, ``_RATE_LIMIT_RATE``,
``_MALFORMED_RATE``, ``_TIMEOUT_RATE``, ``_TRUNCATED_RATE``, ``_TIMEOUT_SECONDS``, ``_SEED`` and
``_STREAM_CHUNK_DELAY_MS``. A streamed answer waits the latency
(and jitter) before its first event, then ``stream_chunk_delay_ms`` (default 0) between two events. A
fault rule's ``task`` is the snake-case schema name, or ``coding_agent``, ``discovery``, ``tool_use``,
``json_object``, ``chat``; for example::

    PUT /emulator/config {"faults": [{"match": {"provider": "openai", "task": "judge_decision"},
                                      "kind": "rate_limit", "count": 2}]}
"""

from crucible_emulator.app import create_app
from crucible_emulator.config import EmulatorConfig, EmulatorSettings, FaultMatch, FaultRule
from crucible_emulator.tasks import TASKS

__all__ = ["TASKS", "EmulatorConfig", "EmulatorSettings", "FaultMatch", "FaultRule", "create_app"]
