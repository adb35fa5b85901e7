"""Local Lambda workers: warm processes with nothing but the artifact on their import path.

Each test writes a tiny function into a temporary code directory and runs it through the
same worker the local runtime uses for the template's functions.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.local.worker import FunctionError, FunctionTimeout, LocalFunction, WorkerSpec

REPO = Path(__file__).resolve().parents[3]
HANDLERS = """
import json, os, sys, time

CALLS = 0

def count(event, context):
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "pid": os.getpid()}

def fail(event, context):
    raise ValueError(f"bad event {event['n']}")

def not_json(event, context):
    return {"skus": {"a", "b"}}

def slow(event, context):
    time.sleep(event["s"])
    return {"slept": event["s"], "pid": os.getpid()}

def talk(event, context):
    print(json.dumps({"_aws": {}, "StreamLagMilliseconds": 12.5}))
    print("no newline at the end", end="")
    os.write(1, b"raw bytes on fd 1 never reach the protocol\\n")
    return {"remaining_ms": context.get_remaining_time_in_millis() > 0}

def environment(event, context):
    return {"path": sys.path, "flags": [sys.flags.isolated, sys.flags.no_site],
            "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "request_id": context.aws_request_id}

def leave(event, context):
    sys.exit(3)
"""


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLERS)
    return code


def function(code_dir: Path, handler: str, *, timeout_s: float = 30.0) -> LocalFunction:
    layer = code_dir.parent / "layer" / "python"
    layer.mkdir(parents=True, exist_ok=True)
    return LocalFunction(
        WorkerSpec(
            function="TestFunction",
            code_dir=code_dir,
            layers=(layer,),
            handler=handler,
            environment={"AWS_LAMBDA_FUNCTION_NAME": "TestFunction"},
            timeout_s=timeout_s,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:TestFunction",
        )
    )


def test_given_two_invocations_then_one_warm_worker_keeps_its_module_state(code_dir) -> None:
    with function(code_dir, "app.count") as fn:
        first, second = fn({}), fn({})

    assert (first["calls"], second["calls"]) == (1, 2)
    assert first["pid"] == second["pid"]


def test_given_a_handler_exception_then_lambdas_error_and_the_worker_stays_warm(code_dir) -> None:
    with function(code_dir, "app.fail") as fn:
        with pytest.raises(FunctionError) as raised:
            fn({"n": 7})
        assert fn.workers == 1

    error = raised.value
    assert (error.error_type, error.error_message) == ("ValueError", "bad event 7")
    assert error.payload["errorMessage"] == "bad event 7"
    assert 'app.py", line 12, in fail\n    raise ValueError' in "".join(error.stack_trace)
    assert "lambda_bootstrap" not in "".join(error.stack_trace)


def test_given_a_response_that_is_not_json_then_a_marshal_error_and_a_warm_worker(
    code_dir,
) -> None:
    with function(code_dir, "app.not_json") as fn:
        with pytest.raises(FunctionError) as raised:
            fn({})
        assert fn.workers == 1

    assert raised.value.error_type == "Runtime.MarshalError"
    assert raised.value.error_message == (
        "Unable to marshal response: Object of type set is not JSON serializable"
    )


def test_given_an_invocation_over_the_timeout_then_timed_out_and_the_next_one_starts_cold(
    code_dir,
) -> None:
    # The cold starts (the first call's and the one after the timeout) are not timed by
    # the function's 1 s: a loaded machine may take longer to start an interpreter.
    with function(code_dir, "app.slow", timeout_s=1.0) as fn:
        warm = fn({"s": 0})
        started = time.monotonic()
        with pytest.raises(FunctionTimeout) as raised:
            fn({"s": 30})
        waited = time.monotonic() - started
        assert fn.workers == 0
        again = fn({"s": 0})

    assert raised.value.error_type == "Sandbox.Timedout"
    assert raised.value.error_message.endswith("Error: Task timed out after 1.00 seconds")
    assert 1.0 <= waited < 30
    assert again["pid"] != warm["pid"]


def test_given_a_cold_start_longer_than_the_timeout_then_the_invocation_still_runs(
    code_dir,
) -> None:
    # As Lambda's init phase: the function's timeout starts once the module is loaded.
    (code_dir / "slow_init.py").write_text(
        "import time\ntime.sleep(1.5)\n\ndef handler(event, context):\n    return event\n"
    )

    with function(code_dir, "slow_init.handler", timeout_s=1.0) as fn:
        response = fn({"n": 1})

    assert response == {"n": 1}


def test_given_a_handler_that_exits_then_a_runtime_exit_error(code_dir) -> None:
    with function(code_dir, "app.leave") as fn, pytest.raises(FunctionError) as raised:
        fn({})

    assert raised.value.error_type == "Runtime.ExitError"
    assert raised.value.error_message.endswith("Error: Runtime exited with error: exit status 3")


def test_given_handler_output_then_it_reaches_the_invoking_threads_stdout(
    code_dir, capsys: pytest.CaptureFixture[str]
) -> None:
    with function(code_dir, "app.talk") as fn:
        response = fn({})

    captured = capsys.readouterr()
    assert response == {"remaining_ms": True}
    assert captured.out == ('{"_aws": {}, "StreamLagMilliseconds": 12.5}\nno newline at the end')


def test_given_a_worker_then_its_path_is_the_code_the_layer_and_the_standard_library(
    code_dir,
) -> None:
    layer = code_dir.parent / "layer" / "python"
    with function(code_dir, "app.environment") as fn:
        seen = fn({})

    assert seen["path"][:2] == [str(code_dir), str(layer)]
    assert all(p.startswith(sys.base_prefix) for p in seen["path"][2:])
    assert not any(p.startswith(str(REPO)) for p in seen["path"])
    assert seen["flags"] == [1, 1]
    assert seen["name"] == "TestFunction"


def test_given_a_handler_importing_the_working_tree_then_it_fails_naming_the_module(
    code_dir,
) -> None:
    (code_dir / "tree.py").write_text("from pipeline.local.stack import LocalStack\n")

    with function(code_dir, "tree.handler") as fn, pytest.raises(FunctionError) as raised:
        fn({})

    assert raised.value.error_type == "Runtime.ImportModuleError"
    assert raised.value.error_message == (
        "Unable to import module 'tree': No module named 'pipeline'"
    )


def test_given_a_missing_handler_function_then_handler_not_found(code_dir) -> None:
    with function(code_dir, "app.nothing") as fn, pytest.raises(FunctionError) as raised:
        fn({})

    assert raised.value.error_type == "Runtime.HandlerNotFound"
    assert raised.value.error_message == "Handler 'nothing' missing on module 'app'"


def test_given_concurrent_invocations_then_each_gets_its_own_worker(code_dir) -> None:
    results: list[dict[str, float]] = []
    with function(code_dir, "app.slow") as fn:
        threads = [threading.Thread(target=lambda: results.append(fn({"s": 1}))) for _ in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fn.workers == 2

    assert len({r["pid"] for r in results}) == 2
