"""Properties generation, record conversion and the daemon command line."""

from __future__ import annotations

import base64
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import ConfigurationError
from pipeline.kcl import jars, worker
from pipeline.kcl.properties import KclConfig, KclTiming, parse, render
from pipeline.kcl.records import from_kcl_record
from pipeline.local.kcl import require_h2c, speaks_h2c

#: Every key the generator writes, spelled as KCL 3.1's MultiLangDaemonConfiguration setters
#: (plus executableName and processingLanguage, read by MultiLangDaemonConfig). The daemon
#: ignores a mis-spelled key silently, so this list is the guard.
KCL_KEYS = {
    "executableName",
    "streamName",
    "applicationName",
    "tableName",
    "regionName",
    "initialPositionInStream",
    "AwsCredentialsProvider",
    "processingLanguage",
    "retrievalMode",
    "metricsLevel",
    "disableWorkerMetrics",
    "failoverTimeMillis",
    "idleTimeBetweenReadsInMillis",
    "shardSyncIntervalMillis",
    "parentShardPollIntervalMillis",
    "taskBackoffTimeMillis",
    "leaseAssignmentIntervalMillis",
    "gracefulLeaseHandoffTimeoutMillis",
    "workerMetricsReporterFreqInMillis",
    "maxRecords",
    "workerId",
    "kinesisEndpoint",
    "dynamoDBEndpoint",
}


def config(**kwargs: object) -> KclConfig:
    base: dict[str, object] = {
        "stream_name": "t1-sales",
        "application_name": "t1-kcl",
        "region": "us-east-1",
        "command": ["/venv/bin/python", "-m", "stream_consumers.kcl.app"],
        "endpoint_url": "http://127.0.0.1:5000",
        "worker_id": "worker-1",
    }
    base.update(kwargs)
    return KclConfig(**base)  # type: ignore[arg-type]


def test_given_local_config_when_rendered_then_only_known_case_exact_keys() -> None:
    props = parse(render(config()))
    assert set(props) == KCL_KEYS
    assert props["retrievalMode"] == "POLLING"
    assert props["metricsLevel"] == "NONE"
    assert props["disableWorkerMetrics"] == "true"
    assert props["kinesisEndpoint"] == props["dynamoDBEndpoint"] == "http://127.0.0.1:5000"
    assert props["tableName"] == props["applicationName"] == "t1-kcl"
    assert props["initialPositionInStream"] == "TRIM_HORIZON"
    assert props["executableName"] == "/venv/bin/python -m stream_consumers.kcl.app"


def test_given_no_endpoint_when_rendered_then_no_endpoint_keys() -> None:
    props = parse(render(config(endpoint_url=None, worker_id=None)))
    assert set(props) == KCL_KEYS - {"kinesisEndpoint", "dynamoDBEndpoint", "workerId"}


def test_given_timing_when_rendered_then_values_in_millis() -> None:
    props = parse(render(config(timing=KclTiming(failover_ms=1234, max_records=7))))
    assert (props["failoverTimeMillis"], props["maxRecords"]) == ("1234", "7")


def test_given_kcl_record_when_converted_then_utc_arrival_and_decoded_data() -> None:
    record = {
        "action": "record",
        "data": base64.b64encode(b'{"a":1}').decode(),
        "partitionKey": "SKU-1#STORE-1",
        "sequenceNumber": "4959",
        "subSequenceNumber": 0,
        "approximateArrivalTimestamp": 1740820630123,
    }
    converted = from_kcl_record(record, "shardId-000000000000")
    assert converted.data == b'{"a":1}'
    assert converted.approximate_arrival == datetime(2025, 3, 1, 9, 17, 10, 123000, tzinfo=UTC)
    assert (converted.shard_id, converted.sequence_number) == ("shardId-000000000000", "4959")
    assert converted.sub_sequence is None
    assert converted.defect is None


def test_given_kpl_user_record_when_converted_then_sub_sequence_kept() -> None:
    record = {
        "data": "e30=",
        "partitionKey": "k",
        "sequenceNumber": "1",
        "subSequenceNumber": 3,
        "approximateArrivalTimestamp": 0,
    }
    assert from_kcl_record(record, "s").sub_sequence == 3


def test_given_invalid_base64_when_converted_then_defect_keeps_raw_bytes() -> None:
    record = {
        "data": "no!",
        "partitionKey": "k",
        "sequenceNumber": "1",
        "subSequenceNumber": 0,
        "approximateArrivalTimestamp": 0,
    }
    converted = from_kcl_record(record, "s")
    assert (converted.defect, converted.data) == ("invalid_base64", b"no!")


def test_given_files_when_daemon_command_built_then_cbor_off_and_daemon_class(
    tmp_path: Path,
) -> None:
    files = worker.write_files(config(), tmp_path / "w")
    command = worker.daemon_command(files, java="/usr/bin/java")
    assert command[0] == "/usr/bin/java"
    assert "-Daws.cborEnabled=false" in command
    assert command[-3:] == [jars.DAEMON_CLASS, "--properties-file", str(files.properties)]
    classpath = command[command.index("-cp") + 1].split(os.pathsep)
    assert any(Path(p).name.startswith(jars.DAEMON_JAR_PREFIX) for p in classpath)
    assert classpath[-1] == str(files.properties.parent)
    assert 'level="INFO"' in files.logback.read_text()


def test_given_worker_env_when_built_then_project_root_on_pythonpath() -> None:
    env = worker.worker_environment({"PYTHONPATH": "/x"}, {"RAW_BUCKET": "raw"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(worker.PROJECT_ROOT), "/x"]
    assert env["RAW_BUCKET"] == "raw"
    assert (worker.PROJECT_ROOT / "stream_consumers" / "kcl" / "app.py").is_file()


def _one_shot_server(reply: bytes) -> tuple[int, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(reply)
        server.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_given_http1_only_server_when_probed_then_not_h2c_and_clear_error() -> None:
    port, thread = _one_shot_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ConfigurationError) as exc:
        require_h2c(url)
    thread.join(5)
    assert str(exc.value).startswith(f"the emulator at {url} does not speak HTTP/2 (h2c)")


def test_given_h2_server_when_probed_then_h2c() -> None:
    settings_frame = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    port, thread = _one_shot_server(settings_frame)
    assert speaks_h2c(f"http://127.0.0.1:{port}")
    thread.join(5)
