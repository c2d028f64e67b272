"""The offline coding agent: small programs and their tests, written through workspace tool calls.

Contract. A request is a coding-agent turn when the tools ``fs_write_file(path, content)`` and
``run_tests(path?)`` are offered (``fs_read_file`` and ``fs_list_dir`` may be too) and no structured
output is forced. The task is read from the user messages, then the system text:

* "print <text>", "prints 'hello world'", "a hello world program": ``hello.py`` (or the ``name.py`` the
  task mentions) containing exactly ``print("<text>")``, and ``test_hello.py`` running it and checking
  stdout;
* a small pure function: add / sum two numbers, subtract, multiply, reverse a string, is_palindrome,
  factorial, fibonacci, fizzbuzz, count vowels, max of a list, celsius <-> fahrenheit, is_prime, gcd.
  The function name comes from the task when given (``a function `add_numbers` ``, ``def f(``,
  ``called f``), the module from a mentioned ``name.py``, else the function name; tests go to
  ``test_<module>.py``;
* anything else: a placeholder module defining the requested name, a trivial passing test, and a final
  answer that says the task was not recognised.

The conversation is a state machine: first the files are written (several calls in one turn unless
parallel tool calls are disabled), then ``run_tests`` is called; a passing result (pytest "N passed",
no failures) ends with a text containing ``VERIFICATION_SUCCESS``; a failing one triggers one rewrite
of the program and a second run; a second failure ends with ``VERIFICATION_FAILED``. A ``bad_code``
fault makes the program written in that turn fail its tests.

Verification: when ``run_tests`` is offered but ``fs_write_file`` is not, the agent may only check:
it calls ``run_tests`` once and answers ``VERIFICATION_SUCCESS`` when the tests pass, else
``VERIFICATION_FAILED`` with the failing summary.

Discovery: when only ``fs_write_file`` matters and the prompt asks to write ``implementation_plan.md``
(e.g. "write the plan to implementation_plan.md", or a Discovery phase prompt), the agent writes the
plan there and then answers with its summary.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from crucible_emulator.conversation import JsonObject, ModelRequest, ToolCall, ToolResult
from crucible_emulator.text import summary, word_set

WRITE_TOOL = "fs_write_file"
RUN_TESTS_TOOL = "run_tests"
PLAN_FILE = "implementation_plan.md"
SUCCESS_TOKEN = "VERIFICATION_SUCCESS"
FAILURE_TOKEN = "VERIFICATION_FAILED"
MAX_TEST_RUNS = 2


@dataclass(frozen=True)
class FunctionSpec:
    key: str
    default_name: str
    params: str
    doc: str
    body: str
    bad_body: str
    tests: str
    pattern: re.Pattern[str]
    aliases: tuple[str, ...] = ()
    # Extra code appended after the main function (e.g. the inverse conversion).
    extra: str = ""


def _spec(
    key: str,
    name: str,
    params: str,
    doc: str,
    body: str,
    bad_body: str,
    tests: str,
    pattern: str,
    aliases: tuple[str, ...] = (),
    extra: str = "",
) -> FunctionSpec:
    return FunctionSpec(key, name, params, doc, body, bad_body, tests, re.compile(pattern, re.I), aliases, extra)


# Order matters: the more specific patterns come first ("palindrome" texts mention reversing).
CATALOGUE: tuple[FunctionSpec, ...] = (
    _spec(
        "is_palindrome",
        "is_palindrome",
        "text",
        "Return True when text reads the same backwards, ignoring case and non-alphanumerics.",
        "    cleaned = [c.lower() for c in text if c.isalnum()]\n    return cleaned == cleaned[::-1]\n",
        "    return False\n",
        "def test_{f}_true_cases():\n    assert {f}('racecar') is True\n"
        "    assert {f}('A man, a plan, a canal: Panama') is True\n\n\n"
        "def test_{f}_false_case():\n    assert {f}('hello') is False\n",
        r"\bpalindrom",
        ("palindrome",),
    ),
    _spec(
        "fizzbuzz",
        "fizzbuzz",
        "n",
        "Return the FizzBuzz sequence from 1 to n as strings.",
        "    out = []\n    for i in range(1, n + 1):\n        if i % 15 == 0:\n            out.append('FizzBuzz')\n"
        "        elif i % 3 == 0:\n            out.append('Fizz')\n        elif i % 5 == 0:\n"
        "            out.append('Buzz')\n        else:\n            out.append(str(i))\n    return out\n",
        "    out = []\n    for i in range(1, n + 1):\n        if i % 3 == 0:\n            out.append('Buzz')\n"
        "        elif i % 5 == 0:\n            out.append('Fizz')\n        else:\n            out.append(str(i))\n"
        "    return out\n",
        "def test_{f}_sequence():\n    result = {f}(15)\n    assert len(result) == 15\n    assert result[0] == '1'\n"
        "    assert result[2] == 'Fizz'\n    assert result[4] == 'Buzz'\n    assert result[14] == 'FizzBuzz'\n",
        r"\bfizz\s*-?\s*buzz\b",
    ),
    _spec(
        "factorial",
        "factorial",
        "n",
        "Return n! for a non-negative integer n.",
        "    if n < 0:\n        raise ValueError('factorial is not defined for negative numbers')\n    result = 1\n"
        "    for i in range(2, n + 1):\n        result *= i\n    return result\n",
        "    result = 1\n    for i in range(2, n):\n        result *= i\n    return result\n",
        "import pytest\n\n\ndef test_{f}_values():\n    assert {f}(0) == 1\n    assert {f}(1) == 1\n"
        "    assert {f}(5) == 120\n\n\ndef test_{f}_negative():\n    with pytest.raises(ValueError):\n"
        "        {f}(-1)\n",
        r"\bfactorial",
    ),
    _spec(
        "fibonacci",
        "fibonacci",
        "n",
        "Return the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1.",
        "    if n < 0:\n        raise ValueError('n must be non-negative')\n    a, b = 0, 1\n    for _ in range(n):\n"
        "        a, b = b, a + b\n    return a\n",
        "    a, b = 0, 1\n    for _ in range(n + 1):\n        a, b = b, a + b\n    return a\n",
        "def test_{f}_values():\n    assert {f}(0) == 0\n    assert {f}(1) == 1\n    assert {f}(10) == 55\n",
        r"\bfib(onacci)?\b",
        ("fib",),
    ),
    _spec(
        "is_prime",
        "is_prime",
        "n",
        "Return True when n is a prime number.",
        "    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
        "            return False\n        i += 1\n    return True\n",
        "    return n % 2 == 1\n",
        "def test_{f}_primes():\n    assert {f}(2) is True\n    assert {f}(13) is True\n\n\n"
        "def test_{f}_non_primes():\n    assert {f}(0) is False\n    assert {f}(1) is False\n"
        "    assert {f}(15) is False\n",
        r"\bprimes?\b|\bprimality\b",
        ("prime",),
    ),
    _spec(
        "gcd",
        "gcd",
        "a, b",
        "Return the greatest common divisor of a and b.",
        "    a, b = abs(a), abs(b)\n    while b:\n        a, b = b, a % b\n    return a\n",
        "    return min(a, b)\n",
        "def test_{f}_values():\n    assert {f}(12, 18) == 6\n    assert {f}(17, 5) == 1\n    assert {f}(0, 9) == 9\n",
        r"\bgcd\b|greatest common divisor|highest common factor",
        ("greatest_common_divisor",),
    ),
    _spec(
        "count_vowels",
        "count_vowels",
        "text",
        "Return the number of vowels (a, e, i, o, u) in text, ignoring case.",
        "    return sum(1 for c in text.lower() if c in 'aeiou')\n",
        "    return sum(1 for c in text.lower() if c in 'aeio')\n",
        "def test_{f}_values():\n    assert {f}('hello') == 2\n    assert {f}('AEIOU') == 5\n"
        "    assert {f}('rhythm') == 0\n    assert {f}('education') == 5\n",
        r"\bvowels?\b",
    ),
    _spec(
        "celsius_to_fahrenheit",
        "celsius_to_fahrenheit",
        "celsius",
        "Convert a temperature from degrees Celsius to degrees Fahrenheit.",
        "    return celsius * 9 / 5 + 32\n",
        "    return celsius * 5 / 9 + 32\n",
        "import pytest\n\nfrom {m} import fahrenheit_to_celsius\n\n\ndef test_{f}():\n"
        "    assert {f}(0) == pytest.approx(32)\n    assert {f}(100) == pytest.approx(212)\n\n\n"
        "def test_fahrenheit_to_celsius():\n    assert fahrenheit_to_celsius(32) == pytest.approx(0)\n"
        "    assert fahrenheit_to_celsius(212) == pytest.approx(100)\n",
        r"celsius\b.{0,40}\bfahrenheit|\bc\s*to\s*f\b",
        ("c_to_f",),
        extra="def fahrenheit_to_celsius(fahrenheit):\n"
        '    """Convert a temperature from degrees Fahrenheit to degrees Celsius."""\n'
        "    return (fahrenheit - 32) * 5 / 9\n",
    ),
    _spec(
        "fahrenheit_to_celsius",
        "fahrenheit_to_celsius",
        "fahrenheit",
        "Convert a temperature from degrees Fahrenheit to degrees Celsius.",
        "    return (fahrenheit - 32) * 5 / 9\n",
        "    return (fahrenheit - 32) * 9 / 5\n",
        "import pytest\n\nfrom {m} import celsius_to_fahrenheit\n\n\ndef test_{f}():\n"
        "    assert {f}(32) == pytest.approx(0)\n    assert {f}(212) == pytest.approx(100)\n\n\n"
        "def test_celsius_to_fahrenheit():\n    assert celsius_to_fahrenheit(0) == pytest.approx(32)\n",
        r"fahrenheit\b.{0,40}\bcelsius|\bf\s*to\s*c\b",
        ("f_to_c",),
        extra="def celsius_to_fahrenheit(celsius):\n"
        '    """Convert a temperature from degrees Celsius to degrees Fahrenheit."""\n'
        "    return celsius * 9 / 5 + 32\n",
    ),
    _spec(
        "find_max",
        "find_max",
        "values",
        "Return the largest item of a non-empty sequence.",
        "    if not values:\n        raise ValueError('find_max() of an empty sequence')\n    best = values[0]\n"
        "    for value in values[1:]:\n        if value > best:\n            best = value\n    return best\n",
        "    best = values[0]\n    for value in values[1:]:\n        if value < best:\n            best = value\n"
        "    return best\n",
        "import pytest\n\n\ndef test_{f}_values():\n    assert {f}([1, 5, 3]) == 5\n"
        "    assert {f}([-4, -2, -9]) == -2\n"
        "    assert {f}([7]) == 7\n\n\ndef test_{f}_empty():\n    with pytest.raises(ValueError):\n        {f}([])\n",
        r"\b(max|maximum|largest|biggest|greatest)\b.{0,40}\b(list|array|sequence|numbers|values)\b",
        ("max_of_list", "maximum", "largest"),
    ),
    _spec(
        "reverse_string",
        "reverse_string",
        "text",
        "Return text reversed.",
        "    return text[::-1]\n",
        "    return text\n",
        "def test_{f}_values():\n    assert {f}('abc') == 'cba'\n    assert {f}('') == ''\n"
        "    assert {f}('Hello, World') == 'dlroW ,olleH'\n",
        r"\brevers\w*\b.{0,40}\bstrings?\b|\bstrings?\b.{0,40}\brevers",
        ("reverse", "reversed_string"),
    ),
    _spec(
        "multiply",
        "multiply",
        "a, b",
        "Return the product of a and b.",
        "    return a * b\n",
        "    return a + b\n",
        "def test_{f}_values():\n    assert {f}(3, 4) == 12\n    assert {f}(-2, 5) == -10\n    assert {f}(0, 7) == 0\n",
        r"\b(multiply|multiplies|multiplication|product of)\b",
        ("product", "mul"),
    ),
    _spec(
        "subtract",
        "subtract",
        "a, b",
        "Return a minus b.",
        "    return a - b\n",
        "    return b - a\n",
        "def test_{f}_values():\n    assert {f}(5, 3) == 2\n    assert {f}(0, 4) == -4\n"
        "    assert {f}(2.5, 0.5) == 2.0\n",
        r"\b(subtract|subtracts|subtraction|difference between)\b",
        ("sub", "minus", "difference"),
    ),
    _spec(
        "add",
        "add",
        "a, b",
        "Return the sum of a and b.",
        "    return a + b\n",
        "    return a - b\n",
        "def test_{f}_values():\n    assert {f}(2, 3) == 5\n    assert {f}(-1, 1) == 0\n"
        "    assert {f}(0.5, 0.25) == 0.75\n",
        r"\b(add|adds|adding|sum|sums|summing)\b.{0,30}\b(two|2|numbers?|integers?|ints|floats?|values)\b|"
        r"\baddition\b",
        ("sum", "add_numbers", "sum_two", "plus"),
    ),
)
_BY_NAME = {alias: spec for spec in CATALOGUE for alias in (spec.default_name, *spec.aliases)}

_QUOTED_PRINT_RE = re.compile(
    r"\bprints?\s+(?:out\s+)?(?:the\s+(?:text|string|message|words?|line)\s+)?"
    r"(?:\"(?P<d>[^\"\n]+)\"|'(?P<s>[^'\n]+)'|`(?P<b>[^`\n]+)`|“(?P<q>[^”\n]+)”)",
    re.IGNORECASE,
)
_PLAIN_PRINT_RE = re.compile(
    r"\bprints?\s+(?:out\s+)?(?:the\s+(?:text|string|message|words?|line)\s+)?(?P<t>[A-Za-z][^\n.;:!?`\"']{0,60}?)"
    r"(?:\s+(?:to|on)\s+(?:stdout|the console|the screen|standard output|the terminal))?\s*(?:[.;:!?\n]|$)",
    re.IGNORECASE,
)
_HELLO_RE = re.compile(r"\bhello,?\s+world\b", re.IGNORECASE)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FUNCTION_NAME_RES = (
    re.compile(rf"\bdef\s+({_IDENT})\s*\("),
    re.compile(rf"`({_IDENT})\s*\([^`]*\)`"),
    re.compile(rf"\bfunctions?\s+(?:called\s+|named\s+)?`({_IDENT})`"),
    re.compile(rf"`({_IDENT})`\s+function\b"),
    re.compile(rf"\b(?:called|named)\s+`?({_IDENT})\b(?!\.\w)"),
    re.compile(rf"\bfunction\s+({_IDENT})\s*\("),
)
_MODULE_RE = re.compile(rf"`?\b({_IDENT})\.py\b`?")
_NOT_NAMES = word_set(
    """
    that which to in for the a an returns return takes take and or with is it called named function def test
    """
)
TaskKind = Literal["print", "function", "unknown"]


@dataclass(frozen=True)
class CodingTask:
    kind: TaskKind
    module: str
    description: str
    function: str | None = None
    spec: FunctionSpec | None = None
    text: str | None = None

    @property
    def program_file(self) -> str:
        return f"{self.module}.py"

    @property
    def test_file(self) -> str:
        return f"test_{self.module}.py"

    def program(self, *, bad: bool = False) -> str:
        if self.kind == "print":
            assert self.text is not None
            shown = self.text + "!" if bad else self.text
            return f"print({json.dumps(shown, ensure_ascii=False)})\n"
        name = self.function or "solve"
        if self.spec is None:
            result = "None" if bad else "args[0] if args else None"
            return (
                f'"""Placeholder for: {_docline(self.description)}.\n\n'
                "The offline emulator did not recognise this task; the function returns its first argument.\n"
                f'"""\n\n\ndef {name}(*args, **kwargs):\n'
                f'    """Return the first argument unchanged (placeholder)."""\n    return {result}\n'
            )
        body = self.spec.bad_body if bad else self.spec.body
        source = (
            f'"""{_docline(self.description)}."""\n\n\n'
            f'def {name}({self.spec.params}):\n    """{self.spec.doc}"""\n{body}'
        )
        if self.spec.extra:
            source += "\n\n" + self.spec.extra
        return source

    def tests(self) -> str:
        if self.kind == "print":
            assert self.text is not None
            return (
                "import subprocess\nimport sys\nfrom pathlib import Path\n\n"
                f"EXPECTED = {json.dumps(self.text, ensure_ascii=False)}\n\n\n"
                f"def test_{self.module}_prints_expected_text():\n"
                f'    script = Path(__file__).with_name("{self.program_file}")\n'
                "    result = subprocess.run(\n"
                "        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False\n"
                "    )\n"
                "    assert result.returncode == 0, result.stderr\n"
                '    assert result.stdout == EXPECTED + "\\n"\n'
            )
        name = self.function or "solve"
        if self.spec is None:
            return (
                f"from {self.module} import {name}\n\n\n"
                f"def test_{name}_is_callable():\n    assert callable({name})\n\n\n"
                f"def test_{name}_returns_its_input():\n    assert {name}('x') == 'x'\n"
            )
        body = self.spec.tests.replace("{f}", name).replace("{m}", self.module)
        import_line = f"from {self.module} import {name}\n"
        if body.startswith(("import ", "from ")):
            # The spec's own imports stay at the top, followed by the function under test.
            imports, _, tests = body.partition("\n\n\n")
            return f"{imports}\n{import_line}\n\n{tests}"
        return f"{import_line}\n\n{body}"

    @property
    def signature(self) -> str:
        if self.kind == "print":
            return f"{self.program_file} printing {self.text!r}"
        params = self.spec.params if self.spec else "*args, **kwargs"
        return f"`{self.function}({params})` in `{self.program_file}`"


def _docline(text: str) -> str:
    line = summary(text, 100).replace('"""', "'''").replace("\\", "/") or "Solution"
    return line[0].upper() + line[1:]


def task_sources(request: ModelRequest) -> tuple[str, str]:
    """The user's words (not tool output) and the system text, where the task is described."""
    user = "\n".join(m.text for m in request.messages if m.role == "user" and m.text)
    return user, request.system


def parse_task(sources: tuple[str, str]) -> CodingTask:
    """Recognise the task, preferring the user's words over the system text."""
    user, system = sources
    for text in (user, f"{user}\n{system}"):
        task = _parse(text)
        if task.kind != "unknown":
            return task
    return _parse(user or system)


def _parse(text: str) -> CodingTask:
    description = summary(text, 140) or "the requested program"
    module = _module_name(text)
    name = _function_name(text)
    spec = _BY_NAME.get(name) if name else None
    if spec is None:
        spec = next((s for s in CATALOGUE if s.pattern.search(text)), None)
    if spec is not None:
        function = name or spec.default_name
        return CodingTask("function", module or function, description, function=function, spec=spec)
    printed = _printed_text(text)
    if printed is not None and name is None:
        return CodingTask("print", module or "hello", description, text=printed)
    function = name or "solve"
    return CodingTask("unknown", module or function, description, function=function)


def _module_name(text: str) -> str | None:
    for match in _MODULE_RE.finditer(text):
        name = match.group(1)
        if not name.startswith("test_") and name not in ("implementation_plan", "setup", "conftest"):
            return name
    return None


def _function_name(text: str) -> str | None:
    for pattern in _FUNCTION_NAME_RES:
        for match in pattern.finditer(text):
            name = match.group(1)
            if name.lower() not in _NOT_NAMES and not name.isupper():
                return name
    return None


def _printed_text(text: str) -> str | None:
    for match in _QUOTED_PRINT_RE.finditer(text):
        value = next(v for v in match.group("d", "s", "b", "q") if v is not None)
        if "VERIFICATION_" not in value:
            return value
    hello = _HELLO_RE.search(text)
    if hello:
        return "hello world"
    for match in _PLAIN_PRINT_RE.finditer(text):
        value = match.group("t").strip()
        if value and "VERIFICATION_" not in value and len(value.split()) <= 8:
            return value
    return None


# ---- plans ----


@dataclass(frozen=True)
class Plan:
    summary: str
    steps: tuple[str, ...]
    files: tuple[str, ...]
    tests: tuple[str, ...]
    markdown: str


def plan_for(task: CodingTask) -> Plan:
    if task.kind == "print":
        text = task.text or ""
        plan_summary = f"Write {task.program_file}, a script that prints {text!r}, and verify its output."
        steps = (
            f"Create {task.program_file} containing exactly print({json.dumps(text, ensure_ascii=False)}).",
            f"Add {task.test_file}, which runs the script with the current interpreter and checks stdout.",
            "Run the tests and confirm they pass.",
        )
        files: tuple[str, ...] = (task.program_file,)
        tests: tuple[str, ...] = (f"{task.test_file}::test_{task.module}_prints_expected_text",)
    else:
        name = task.function or "solve"
        recognised = task.spec is not None
        behaviour = task.spec.doc if task.spec else "Behaviour not recognised by the offline model; a placeholder."
        plan_summary = f"Implement {task.signature} with pytest tests in `{task.test_file}`. {behaviour}"
        steps = (
            f"Create {task.program_file} with the function {name}: {behaviour}",
            f"Write pytest tests in {task.test_file} covering typical values"
            + (" and edge cases." if recognised else " (a trivial check only)."),
            "Run the tests and fix the implementation until they pass.",
        )
        files = (task.program_file, task.test_file)
        tests = tuple(f"{task.test_file}::{t}" for t in re.findall(r"^def (test_\w+)", task.tests(), re.M))
    markdown = "\n".join(
        [
            "# Implementation plan",
            "",
            "## Summary",
            "",
            plan_summary,
            "",
            "## Steps",
            "",
            *(f"{i}. {step}" for i, step in enumerate(steps, 1)),
            "",
            "## Files",
            "",
            *(f"- `{f}`" for f in files),
            "",
            "## Tests",
            "",
            *(f"- `{t}`" for t in tests),
            "",
        ]
    )
    return Plan(plan_summary, steps, files, tests, markdown)


# ---- the agent's state machine ----


@dataclass(frozen=True)
class AgentStep:
    """The agent's next move: tool calls to make, or a final text."""

    calls: tuple[tuple[str, JsonObject], ...] = ()
    text: str | None = None


_DISCOVERY_WRITE_RE = re.compile(
    r"\b(write|create|produce|draft|prepare|generate|save|put)\s+(?:(?:a|an|the|short|brief|detailed|file|your|"
    r"plan|to|into|in|it)\s+){0,4}`?implementation[ _]plan",
    re.IGNORECASE,
)
_DISCOVERY_WORD_RE = re.compile(r"\bdiscovery\b", re.IGNORECASE)
_CODING_WORD_RE = re.compile(r"\b(coding phase|write the code|implement the)\b", re.IGNORECASE)


def is_coding_request(request: ModelRequest) -> bool:
    names = {t.name for t in request.tools}
    return WRITE_TOOL in names and RUN_TESTS_TOOL in names


def is_verification_request(request: ModelRequest) -> bool:
    names = {t.name for t in request.tools}
    return RUN_TESTS_TOOL in names and WRITE_TOOL not in names


def verification_step(request: ModelRequest) -> AgentStep:
    """Run the tests once, then report what they say; never touch the files."""
    task = parse_task(task_sources(request))
    runs = [e for e in _history(request) if e.call.name == RUN_TESTS_TOOL and e.result is not None]
    if not runs:
        return AgentStep(calls=((RUN_TESTS_TOOL, _arguments(request, RUN_TESTS_TOOL, path=task.test_file)),))
    if tests_passed(runs[-1].result):
        return AgentStep(text=f"{SUCCESS_TOKEN}\n\nrun_tests: {_outcome_line(runs[-1].result)}.")
    return AgentStep(text=f"{FAILURE_TOKEN}\n\nrun_tests: {_outcome_line(runs[-1].result)}.")


def is_discovery(request: ModelRequest) -> bool:
    if request.tool(WRITE_TOOL) is None:
        return False
    text = "\n".join(task_sources(request))
    if PLAN_FILE not in text and "implementation plan" not in text.lower():
        return False
    if _DISCOVERY_WRITE_RE.search(text):
        return True
    return bool(_DISCOVERY_WORD_RE.search(text)) and not _CODING_WORD_RE.search(text)


@dataclass(frozen=True)
class _Exchange:
    call: ToolCall
    result: ToolResult | None


def _history(request: ModelRequest) -> list[_Exchange]:
    results = {r.call_id: r for m in request.messages for r in m.tool_results}
    return [_Exchange(call, results.get(call.id)) for m in request.messages for call in m.tool_calls]


def _write_path(call: ToolCall) -> str | None:
    for key in ("path", "file_path", "filename", "file"):
        value = call.arguments.get(key)
        if isinstance(value, str):
            return value[2:] if value.startswith("./") else value
    return None


_ERROR_RESULT_RE = re.compile(r"^\s*\W*\s*(error|exception|failed|failure|denied|refused|traceback)\b", re.I)


def _failed(result: ToolResult | None) -> bool:
    if result is None:
        return True
    if result.is_error:
        return True
    parsed = _json(result.content)
    if isinstance(parsed, dict):
        return parsed.get("ok") is False or parsed.get("success") is False or bool(parsed.get("error"))
    return bool(_ERROR_RESULT_RE.search(result.content))


def tests_passed(result: ToolResult | None) -> bool:
    """Whether a run_tests result says pytest passed: an explicit flag or exit code, else pytest's summary."""
    if result is None or result.is_error:
        return False
    parsed = _json(result.content)
    text = result.content
    if isinstance(parsed, dict):
        for key in ("passed", "success", "ok"):
            if isinstance(parsed.get(key), bool):
                return parsed[key] is True
        for key in ("exit_code", "returncode", "exitcode", "return_code", "status_code"):
            if isinstance(parsed.get(key), int) and not isinstance(parsed.get(key), bool):
                return bool(parsed[key] == 0)
        failed = parsed.get("failed")
        if isinstance(failed, int) and not isinstance(failed, bool):
            return failed == 0 and bool(parsed.get("passed"))
        text = " ".join(str(parsed.get(k, "")) for k in ("output", "stdout", "stderr", "summary", "result"))
    if re.search(r"\b\d+ (failed|errors?)\b|\bno tests ran\b|\bTraceback\b|\bFAILED\b", text):
        return False
    return bool(re.search(r"\b\d+ passed\b", text))


def _outcome_line(result: ToolResult | None) -> str:
    if result is None:
        return "no result"
    parsed = _json(result.content)
    text = result.content
    if isinstance(parsed, dict):
        text = " ".join(str(parsed.get(k, "")) for k in ("summary", "output", "stdout", "result")) or text
    match = re.search(r"\d+ (?:passed|failed|errors?)[^\n]*", text)
    if match:
        return match.group(0).strip(" =")
    return summary(text, 160) or "no output"


def _json(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _arguments(request: ModelRequest, tool: str, *, path: str, content: str | None = None) -> JsonObject:
    spec = request.tool(tool)
    props: JsonObject = (spec.parameters.get("properties") or {}) if spec else {}
    path_key = next((k for k in ("path", "file_path", "filename", "file") if k in props), "path")
    if content is None:
        return {path_key: path} if path_key in props else {}
    content_key = next((k for k in ("content", "contents", "text", "data") if k in props), "content")
    return {path_key: path, content_key: content}


def writes_program(request: ModelRequest) -> bool:
    """Whether the next coding turn writes the program (the turn a ``bad_code`` fault spoils)."""
    if not is_coding_request(request) or is_discovery(request):
        return False
    task = parse_task(task_sources(request))
    step = next_step(request, bad_code=False, task=task)
    return any(_arg_path(args) == task.program_file for name, args in step.calls if name == WRITE_TOOL)


def _arg_path(args: JsonObject) -> str | None:
    return next((v for k, v in args.items() if k in ("path", "file_path", "filename", "file")), None)


def next_step(request: ModelRequest, *, bad_code: bool, task: CodingTask | None = None) -> AgentStep:
    """The coding agent's next move for this conversation."""
    task = task or parse_task(task_sources(request))
    history = _history(request)
    runs = [e for e in history if e.call.name == RUN_TESTS_TOOL and e.result is not None]
    if runs and tests_passed(runs[-1].result):
        return AgentStep(text=_success_text(task, runs[-1].result))
    if len(runs) >= MAX_TEST_RUNS:
        return AgentStep(text=_failure_text(task, runs[-1].result))
    after_last_run = history[history.index(runs[-1]) + 1 :] if runs else history
    written = {_write_path(e.call) for e in after_last_run if e.call.name == WRITE_TOOL and not _failed(e.result)}
    write_failures = [e for e in after_last_run if e.call.name == WRITE_TOOL and _failed(e.result)]
    failures_by_path = Counter(_write_path(e.call) for e in write_failures)
    if failures_by_path and max(failures_by_path.values()) >= 2:
        return AgentStep(text=_write_failure_text(task, write_failures[-1].result))
    wanted = [(task.program_file, task.program(bad=bad_code))]
    if not runs:
        wanted.append((task.test_file, task.tests()))
    pending = [(path, content) for path, content in wanted if path not in written]
    if pending:
        if not request.tool_choice.parallel:
            pending = pending[:1]
        return AgentStep(
            calls=tuple((WRITE_TOOL, _arguments(request, WRITE_TOOL, path=p, content=c)) for p, c in pending)
        )
    return AgentStep(calls=((RUN_TESTS_TOOL, _arguments(request, RUN_TESTS_TOOL, path=task.test_file)),))


def _success_text(task: CodingTask, result: ToolResult | None) -> str:
    lines = [
        SUCCESS_TOKEN,
        "",
        f"Implemented {task.signature}, with pytest tests in `{task.test_file}`.",
        f"run_tests: {_outcome_line(result)}.",
        f"Files: {task.program_file}, {task.test_file}.",
    ]
    if task.kind == "unknown":
        lines.append(
            f"Note: the offline emulator did not recognise the requested behaviour, so `{task.function}` is a "
            "placeholder that returns its first argument and the test only checks that."
        )
    return "\n".join(lines)


def _failure_text(task: CodingTask, result: ToolResult | None) -> str:
    return "\n".join(
        [
            FAILURE_TOKEN,
            "",
            f"The tests for {task.signature} still fail after {MAX_TEST_RUNS} runs and one rewrite.",
            f"Last run_tests: {_outcome_line(result)}.",
        ]
    )


def _write_failure_text(task: CodingTask, result: ToolResult | None) -> str:
    detail = summary(result.content, 160) if result else "no result"
    return f"{FAILURE_TOKEN}\n\nCould not write {task.program_file}: {detail}."


def discovery_step(request: ModelRequest) -> AgentStep:
    """Write implementation_plan.md once, then answer with its summary."""
    task = parse_task(task_sources(request))
    plan = plan_for(task)
    history = _history(request)
    writes = [e for e in history if e.call.name == WRITE_TOOL and _write_path(e.call) == PLAN_FILE]
    if writes and not _failed(writes[-1].result):
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(plan.steps, 1))
        return AgentStep(text=f"Wrote {PLAN_FILE}.\n\n{plan.summary}\n\n{steps}")
    if len(writes) >= 2:
        detail = summary(writes[-1].result.content, 160) if writes[-1].result else "no result"
        return AgentStep(text=f"Could not write {PLAN_FILE}: {detail}.")
    return AgentStep(calls=((WRITE_TOOL, _arguments(request, WRITE_TOOL, path=PLAN_FILE, content=plan.markdown)),))
