"""The offline coding agent: task recognition, the code it writes, and its state machine."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from crucible_emulator import coding_agent
from crucible_emulator.conversation import Message, ModelAnswer, Modifiers, ToolCall, ToolResult
from crucible_emulator.offline_model import answer, task_name
from tests.unit.emulator.builders import assistant_calls, results
from tests.unit.emulator.builders import coding as coding_request

PASSED = "============================== 2 passed in 0.01s ==============================="
FAILED = "FAILED test_x.py::test_a - assert 1 == 2\n========= 1 failed, 1 passed in 0.02s ========="


def parse(text: str) -> coding_agent.CodingTask:
    return coding_agent.parse_task((text, ""))


@pytest.mark.parametrize(
    ("text", "printed", "module"),
    [
        ("Write a Python program that prints 'hello world'.", "hello world", "hello"),
        ('Create a script that prints "Hello, World!"', "Hello, World!", "hello"),
        ("print hello world", "hello world", "hello"),
        ("A hello world program, please.", "hello world", "hello"),
        ("Write greet.py that prints good morning to the console.", "good morning", "greet"),
        ("Write a file named banner.py which prints `Crucible`", "Crucible", "banner"),
    ],
)
def test_print_tasks(text: str, printed: str, module: str) -> None:
    task = parse(text)
    assert (task.kind, task.text, task.module) == ("print", printed, module)
    assert task.program() == f'print("{printed}")\n'


@pytest.mark.parametrize(
    ("text", "key", "function", "module"),
    [
        ("Write a function that adds two numbers.", "add", "add", "add"),
        ("Implement `add_numbers(a, b)` that returns the sum of two numbers in calc.py.", "add", "add_numbers", "calc"),
        ("subtract two numbers", "subtract", "subtract", "subtract"),
        ("A function to multiply two integers.", "multiply", "multiply", "multiply"),
        ("Reverse a string.", "reverse_string", "reverse_string", "reverse_string"),
        ("Check whether a word is a palindrome (reads the same reversed).", "is_palindrome", "is_palindrome", None),
        ("Compute the factorial of n.", "factorial", "factorial", "factorial"),
        ("Return the n-th Fibonacci number.", "fibonacci", "fibonacci", "fibonacci"),
        ("Classic FizzBuzz up to n.", "fizzbuzz", "fizzbuzz", "fizzbuzz"),
        ("Count the vowels in a string.", "count_vowels", "count_vowels", "count_vowels"),
        ("Find the maximum of a list of numbers.", "find_max", "find_max", "find_max"),
        ("Convert Celsius to Fahrenheit.", "celsius_to_fahrenheit", "celsius_to_fahrenheit", None),
        ("Convert fahrenheit to celsius.", "fahrenheit_to_celsius", "fahrenheit_to_celsius", None),
        ("Write a function called is_prime.", "is_prime", "is_prime", "is_prime"),
        ("Greatest common divisor of two ints, function named `hcf`.", "gcd", "hcf", "hcf"),
    ],
)
def test_function_tasks(text: str, key: str, function: str, module: str | None) -> None:
    task = parse(text)
    assert task.kind == "function"
    assert task.spec is not None
    assert task.spec.key == key
    assert task.function == function
    assert task.module == (module or function)
    assert task.test_file == f"test_{task.module}.py"


def test_unknown_function_gets_a_placeholder() -> None:
    task = parse("Create a function `slugify` that turns a title into a URL slug; add tests.")
    assert (task.kind, task.function, task.module) == ("unknown", "slugify", "slugify")
    assert "placeholder" in task.program()


def test_the_user_task_wins_over_the_system_prompt() -> None:
    task = coding_agent.parse_task(
        ("Write a function that reverses a string.", "When done, print VERIFICATION_SUCCESS.")
    )
    assert task.kind == "function"
    assert task.function == "reverse_string"


def _run_in_memory(task: coding_agent.CodingTask, program: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Load the program as its module and call every test function; the names of failing tests."""
    module = types.ModuleType(task.module)
    exec(compile(program, task.program_file, "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, task.module, module)
    namespace: dict[str, Any] = {}
    exec(compile(task.tests(), task.test_file, "exec"), namespace)
    failures: list[str] = []
    tests: list[tuple[str, Callable[[], None]]] = [(n, f) for n, f in namespace.items() if n.startswith("test_")]
    assert tests
    for name, test in tests:
        try:
            test()
        except (Exception, pytest.fail.Exception):
            failures.append(name)
    return failures


@pytest.mark.parametrize("spec", coding_agent.CATALOGUE, ids=lambda s: s.key)
def test_catalogue_code_passes_its_tests_and_bad_code_fails_them(
    spec: coding_agent.FunctionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = coding_agent.CodingTask("function", "solution", "task", function="solution_fn", spec=spec)
    assert _run_in_memory(task, task.program(), monkeypatch) == []
    assert _run_in_memory(task, task.program(bad=True), monkeypatch) != []


def test_placeholder_code_passes_its_tests_and_bad_code_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    task = parse("Create a function `slugify`.")
    assert _run_in_memory(task, task.program(), monkeypatch) == []
    assert _run_in_memory(task, task.program(bad=True), monkeypatch) != []


# ---- the state machine


def drive(
    task: str, run_outcomes: list[str], *, parallel: bool = True, bad_code_turns: tuple[int, ...] = ()
) -> tuple[list[ModelAnswer], list[Message]]:
    """Play the tool side of a conversation until the agent answers with text."""
    turns: list[Message] = []
    answers: list[ModelAnswer] = []
    outcomes = iter(run_outcomes)
    for turn in range(10):
        result = answer(coding_request(task, *turns, parallel=parallel), Modifiers(bad_code=turn in bad_code_turns))
        answers.append(result)
        if result.text is not None:
            return answers, turns
        turns.append(assistant_calls(*result.tool_calls))
        replies = [
            ToolResult(c.id, next(outcomes) if c.name == "run_tests" else f"wrote {c.arguments['path']}")
            for c in result.tool_calls
        ]
        turns.append(results(*replies))
    raise AssertionError("the agent did not finish")


def calls(result: ModelAnswer) -> list[tuple[str, Any]]:
    return [(c.name, c.arguments.get("path")) for c in result.tool_calls]


def test_hello_world_write_then_test_then_success() -> None:
    answers, _ = drive("Write a Python program that prints 'hello world'.", [PASSED])
    assert calls(answers[0]) == [("fs_write_file", "hello.py"), ("fs_write_file", "test_hello.py")]
    assert answers[0].tool_calls[0].arguments["content"] == 'print("hello world")\n'
    assert calls(answers[1]) == [("run_tests", "test_hello.py")]
    assert answers[2].text is not None
    assert answers[2].text.startswith(coding_agent.SUCCESS_TOKEN)
    assert "2 passed" in answers[2].text


def test_a_failed_run_leads_to_one_rewrite_and_a_second_run() -> None:
    answers, _ = drive("Write a function that adds two numbers.", [FAILED, PASSED])
    assert [calls(a) for a in answers[1:4]] == [
        [("run_tests", "test_add.py")],
        [("fs_write_file", "add.py")],
        [("run_tests", "test_add.py")],
    ]
    assert answers[-1].text is not None
    assert coding_agent.SUCCESS_TOKEN in answers[-1].text


def test_two_failed_runs_give_up() -> None:
    answers, _ = drive("Write a function that adds two numbers.", [FAILED, FAILED])
    assert answers[-1].text is not None
    assert answers[-1].text.startswith(coding_agent.FAILURE_TOKEN)
    assert len(answers) == 5


def test_without_parallel_calls_each_file_is_its_own_turn() -> None:
    answers, _ = drive("Compute the factorial of n.", [PASSED], parallel=False)
    assert [calls(a) for a in answers[:3]] == [
        [("fs_write_file", "factorial.py")],
        [("fs_write_file", "test_factorial.py")],
        [("run_tests", "test_factorial.py")],
    ]


def test_bad_code_fault_spoils_the_first_program_only() -> None:
    answers, _ = drive("Write a function that adds two numbers.", [FAILED, PASSED], bad_code_turns=(0,))
    first, rewrite = answers[0].tool_calls[0].arguments["content"], answers[2].tool_calls[0].arguments["content"]
    assert "return a - b" in first
    assert "return a + b" in rewrite


def test_writes_program_only_on_turns_that_write_the_program() -> None:
    task = "Write a function that adds two numbers."
    assert coding_agent.writes_program(coding_request(task))
    _, turns = drive(task, [PASSED])
    assert not coding_agent.writes_program(coding_request(task, *turns[:2]))


def test_a_refused_write_is_retried_once_then_reported() -> None:
    task = "Write a function that adds two numbers."
    first = answer(coding_request(task))
    refused = [ToolResult(c.id, "Error: path escapes the workspace", is_error=True) for c in first.tool_calls]
    turns = [assistant_calls(*first.tool_calls), results(*refused)]
    second = answer(coding_request(task, *turns))
    assert calls(second) == [("fs_write_file", "add.py"), ("fs_write_file", "test_add.py")]
    turns += [assistant_calls(*second.tool_calls), results(*refused)]
    final = answer(coding_request(task, *turns))
    assert final.text is not None
    assert final.text.startswith(coding_agent.FAILURE_TOKEN)


def test_a_retry_after_an_earlier_failure_still_writes_correct_code() -> None:
    request = coding_request(
        "Write a function that adds two numbers.",
        system="You are a coding agent. Previous attempt failed: AssertionError in test_add. Fix it.",
    )
    content = answer(request).tool_calls[0].arguments["content"]
    assert "return a + b" in content


@pytest.mark.parametrize(
    ("content", "passed"),
    [
        (PASSED, True),
        (FAILED, False),
        ("collected 0 items\n no tests ran in 0.01s", False),
        ('{"passed": true, "output": "1 passed"}', True),
        ('{"exit_code": 1, "output": "1 failed"}', False),
        ('{"returncode": 0}', True),
        ('{"failed": 0, "passed": 3}', True),
        ("ERROR collecting test_x.py\nTraceback (most recent call last):", False),
        ("something unexpected", False),
    ],
)
def test_run_tests_results_are_read_like_pytest_output(content: str, passed: bool) -> None:
    assert coding_agent.tests_passed(ToolResult("id", content)) is passed


def test_tool_argument_names_follow_the_tool_schema() -> None:
    request = coding_request("Write a function that adds two numbers.")
    request = request.__class__(
        **{
            **request.__dict__,
            "tools": tuple(
                t.__class__(t.name, t.description, {"type": "object", "properties": {"file_path": {}, "contents": {}}})
                if t.name == "fs_write_file"
                else t
                for t in request.tools
            ),
        }
    )
    assert set(answer(request).tool_calls[0].arguments) == {"file_path", "contents"}


def test_discovery_writes_the_plan_then_answers() -> None:
    task = "Discovery phase: write the implementation plan to implementation_plan.md. Task: print hello world."
    first = answer(coding_request(task))
    assert calls(first) == [("fs_write_file", coding_agent.PLAN_FILE)]
    assert "hello.py" in first.tool_calls[0].arguments["content"]
    turns = [assistant_calls(*first.tool_calls), results(ToolResult(first.tool_calls[0].id, "ok"))]
    final = answer(coding_request(task, *turns))
    assert final.text is not None
    assert coding_agent.PLAN_FILE in final.text
    assert task_name(coding_request(task)) == "discovery"


def test_coding_prompts_that_mention_the_plan_are_not_discovery() -> None:
    task = "Write the code described in implementation_plan.md: a function that adds two numbers."
    assert task_name(coding_request(task)) == "coding_agent"


def test_tool_calls_have_distinct_ids_per_turn() -> None:
    first = answer(coding_request("Write a function that adds two numbers."))
    ids = [c.id for c in first.tool_calls]
    assert len(set(ids)) == len(ids)
    assert isinstance(first.tool_calls[0], ToolCall)


def test_a_verification_turn_only_runs_the_tests_and_reports() -> None:
    from crucible_emulator.conversation import Message, ModelRequest, ToolCall, ToolResult, ToolSpec

    tools = (
        ToolSpec("run_tests", "run pytest", {"type": "object", "properties": {"path": {"type": "string"}}}),
        ToolSpec("fs_read_file", "read", {"type": "object", "properties": {"path": {"type": "string"}}}),
    )
    ask = Message(role="user", text="Verify the sprint: the task was a function add(a, b). Run the tests.")
    first = coding_agent.verification_step(
        ModelRequest(provider="openai", model="m", system="", messages=(ask,), tools=tools)
    )
    assert [name for name, _ in first.calls] == ["run_tests"]
    call = ToolCall("c1", "run_tests", dict(first.calls[0][1]))
    for output, token in (
        ("PASSED: 2 passed in 0.01s", coding_agent.SUCCESS_TOKEN),
        ("FAILED: 1 failed", coding_agent.FAILURE_TOKEN),
    ):
        done = coding_agent.verification_step(
            ModelRequest(
                provider="openai",
                model="m",
                system="",
                messages=(
                    ask,
                    Message(role="assistant", tool_calls=(call,)),
                    Message(role="user", tool_results=(ToolResult("c1", output),)),
                ),
                tools=tools,
            )
        )
        assert done.text is not None
        assert done.text.startswith(token)
