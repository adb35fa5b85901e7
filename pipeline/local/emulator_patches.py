"""Patches to moto for the long-running emulator process (``pipeline.local.server``).

moto is built for short tests; under a soak (1,000 events/s for 30 minutes) two of its
internals made the emulator grow by ~880 MB/min and slow down as it grew. A third made draining
a queue's backlog quadratic (SQS attributes rebuilt per message received), and a fourth
filling one (the message counts rebuilt per message sent); a fifth saves the CPU that every
new Cognito user pool spent importing moto's one signing key, and a sixth the backend lookup (a
listing of moto's package directory) that every request made. Each patch changes
only what moto keeps or copies internally, never what an AWS client sees;
``tests/functional/local/test_emulator_patches.py`` checks the AWS behaviour through the
patched server. ``FMCG_EMULATOR_PATCHES=0`` serves plain moto, to measure against.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading
import weakref
from typing import Any

PATCHES_ENV = "FMCG_EMULATOR_PATCHES"


class WeakInstances:
    """Stands in for a moto model class's ``instances_tracked`` list, holding weak references.

    moto appends every model instance it ever creates (each Kinesis record, S3 key, DynamoDB
    item, and every copy of them) to a class-level list that only ``/moto-api/reset`` clears.
    It serves the ``/moto-api/data.json`` dashboard and S3's reset, which only need the live
    ones: held weakly, an instance no longer in the backend's state can be freed.
    """

    def __init__(self, instances: Any = ()) -> None:
        self._refs: list[weakref.ref[Any]] = [weakref.ref(i) for i in instances]
        self._prune_at = 1024

    def append(self, instance: Any) -> None:
        """Track ``instance``; dead references are dropped whenever the list has doubled.

        Two threads appending during a prune may lose one entry of the dashboard; they never
        lose AWS state, which this list does not hold.
        """
        self._refs.append(weakref.ref(instance))
        if len(self._refs) >= self._prune_at:
            self._refs = [ref for ref in self._refs if ref() is not None]
            self._prune_at = max(1024, 2 * len(self._refs))

    def __iter__(self) -> Any:
        # A copy: other request threads may append meanwhile.
        return iter([obj for ref in list(self._refs) if (obj := ref()) is not None])

    def __len__(self) -> int:
        return sum(ref() is not None for ref in list(self._refs))


def track_model_instances_weakly() -> None:
    """Make ``BaseModel.__new__`` track instances in a :class:`WeakInstances`.

    The list is swapped in on a class's first instance, so classes defined later (moto loads
    backends lazily) and lists that ``reset_model_data`` set back to ``[]`` are covered too.
    """
    from moto.core.common_models import BaseModel

    if getattr(BaseModel.__new__, "tracks_weakly", False):
        return

    def __new__(cls: type[Any], *args: Any, **kwargs: Any) -> Any:  # noqa: ARG001 - moto's signature
        instance = super(BaseModel, cls).__new__(cls)
        tracked = cls.instances_tracked
        if not isinstance(tracked, WeakInstances):
            tracked = cls.instances_tracked = WeakInstances(tracked)
        tracked.append(instance)
        return instance

    __new__.tracks_weakly = True  # type: ignore[attr-defined]
    BaseModel.__new__ = __new__  # type: ignore[assignment,method-assign]


class _TablesInTransaction(threading.local):
    """The ids of the tables this request thread's TransactWriteItems is writing."""

    ids: frozenset[int] = frozenset()


_in_transaction = _TablesInTransaction()


class _CopyWithLiveTables:
    """``copy`` as ``moto.dynamodb.models`` sees it: a table in a transaction copies to itself.

    moto's transaction snapshot is ``copy.deepcopy(table)`` and its rollback puts that object
    back in place; handing it the live table makes the rollback a no-op, and
    :func:`snapshot_only_touched_items` restores the touched items instead. Every other
    ``deepcopy`` (UpdateItem's copy of the old item) is the real one.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if id(value) in _in_transaction.ids:
            return value
        return copy.deepcopy(value, memo)


def snapshot_only_touched_items() -> None:
    """Make TransactWriteItems' rollback snapshot copy the items it touches, not whole tables.

    moto deep-copies every table a transaction names, once per action (26 copies of the
    inventory table for a 25-pair transaction and its counter update), to put it back if
    the transaction is cancelled: CPU and garbage grow with the tables' size, not the
    transaction's. Only the items the actions address can change, so copying those
    (``None`` for an absent one) and putting them back on cancellation restores the same
    state. Tables with a DynamoDB stream keep moto's way: its whole-table copy also takes
    back the stream records of the cancelled writes.
    """
    import moto.dynamodb.models as ddb_models

    backend = ddb_models.DynamoDBBackend
    if isinstance(ddb_models.copy, _CopyWithLiveTables):  # type: ignore[attr-defined]
        return
    ddb_models.copy = _CopyWithLiveTables()  # type: ignore[attr-defined,assignment]
    whole_table_snapshot = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        tables = {id(t): t for t in _tables_named(self, transact_items)}
        if any(table.stream_shard is not None for table in tables.values()):
            whole_table_snapshot(self, transact_items)
            return
        before = _touched_items(self, transact_items)
        _in_transaction.ids = frozenset(tables)
        try:
            whole_table_snapshot(self, transact_items)
        except BaseException:
            _restore(before)
            raise
        finally:
            _in_transaction.ids = frozenset()

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


_Touched = dict[tuple[int, Any, Any], tuple[Any, Any]]


def _tables_named(backend: Any, transact_items: list[dict[str, Any]]) -> list[Any]:
    names = {op.get("TableName") for item in transact_items for op in item.values()}
    return [backend.tables[name] for name in names if name in backend.tables]


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> _Touched:
    """``(table id, hash, range) -> (table, copy of the item or None)`` for every action.

    An action whose table or key moto will reject writes nothing, so it needs no snapshot.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    touched: _Touched = {}
    for item in transact_items:
        for op_type, op in item.items():
            table = backend.tables.get(op.get("TableName"))
            key = op.get("Item") if op_type == "Put" else op.get("Key")
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_attr = table.range_key_attr
                range_value = DynamoType(key[range_attr]) if range_attr else None
                current = table.get_item(hash_value, range_value)
            except Exception:  # noqa: BLE001 - moto reports it and writes nothing for it
                continue
            touched[(id(table), hash_value, range_value)] = (table, copy.deepcopy(current))
    return touched


def _restore(touched: _Touched) -> None:
    """Put every touched item back as it was (removing the ones that did not exist)."""
    for (_, hash_value, range_value), (table, item) in touched.items():
        if range_value is None:
            bucket, key = table.items, hash_value
        else:
            bucket, key = table.items[hash_value], range_value
        if item is None:
            bucket.pop(key, None)
        else:
            bucket[key] = item


def sqs_attributes_once() -> None:
    """Make SQS compute a queue's attributes once per call, not per message and per name.

    moto's ``Queue.attributes`` builds every attribute, the message counts among them (a
    pass over the queue's messages each), and ``ReceiveMessage`` asks for it for every
    message it returns (to read the retention period), ``GetQueueAttributes`` three times per
    name asked: draining a backlog of ``n`` messages ten at a time costs ``O(n^2)`` (4,321
    queued S3 events took ~1 s a receive). The retention period is read from the queue, and
    the attributes are built once per ``GetQueueAttributes``; the answers are the same.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.get_queue_attributes, "once", False):
        return
    get_queue_attributes = SQSBackend.get_queue_attributes

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    def attributes_once(self: Any, queue_name: str, attribute_names: list[str]) -> Any:
        queue = self.get_queue(queue_name)  # raises QueueDoesNotExist as moto does
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        if (
            not attribute_names
            or "All" in attribute_names
            or any(name not in valid for name in attribute_names)
        ):
            # moto's answer (and its errors), which builds the attributes once here.
            return get_queue_attributes(self, queue_name, attribute_names)
        computed = queue.attributes
        return {
            name: computed[name]
            for name in attribute_names
            if name in computed and computed[name] is not None
        }

    attributes_once.once = True  # type: ignore[attr-defined]
    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    SQSBackend.get_queue_attributes = attributes_once  # type: ignore[method-assign]


_SENDING = threading.local()
#: The attributes that count a queue's messages (a pass over all of them each).
_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_not_visible",
    "approximate_number_of_messages_delayed",
)


def sqs_send_without_counting() -> None:
    """Make sending a message cost the same however many wait in the queue.

    moto's ``SendMessage`` reads one attribute (``ContentBasedDeduplication``) through
    ``Queue.attributes``, which builds them all, the message counts among them: filling a
    queue of ``n`` messages costs ``O(n^2)``. The raw bucket's S3 event notifications
    fill one (a queued message per raw object): after 7,700 of them, PUTs into the raw
    bucket ran at 3.5 a second instead of ~70. While a message is being sent the counts
    read 0 (nothing in the send uses them); every other call counts as moto does.
    """
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend.send_message, "uncounted", False):
        return
    for name in _COUNTS:
        counted = getattr(Queue, name).fget

        def count(self: Any, _counted: Any = counted) -> int:
            return 0 if getattr(_SENDING, "active", False) else int(_counted(self))

        setattr(Queue, name, property(count))
    send_message = SQSBackend.send_message

    def uncounted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _SENDING.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    uncounted.uncounted = True  # type: ignore[attr-defined]
    SQSBackend.send_message = uncounted  # type: ignore[method-assign]


def apply() -> None:
    """Apply every patch (idempotent), unless ``FMCG_EMULATOR_PATCHES=0``."""
    if os.environ.get(PATCHES_ENV, "1") == "0":
        return
    track_model_instances_weakly()
    snapshot_only_touched_items()
    model_data_skips_failing_attributes()
    sqs_attributes_once()
    sqs_send_without_counting()
    cognito_signing_key_once()
    backends_found_once()


def backends_found_once() -> None:
    """Find the backend of a host name once, not at every request.

    moto's server finds the service of a request by asking whether its host names a backend,
    and answers that by listing moto's package directory (``os.listdir``, then ``isdir`` on
    each of ~170 entries) at every request: 15 % of the emulator's samples in a compaction
    test (py-spy). The package does not change while the server runs, so it is listed once,
    and each host name's answer is kept.
    """
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if not isinstance(backends.list_of_moto_modules(), tuple):
        names = tuple(backends.list_of_moto_modules())
        setattr(backends, "list_of_moto_modules", lambda: names)  # noqa: B010
    # Then it matches the service's host name against each backend's URL patterns in turn
    # (another 4.5 % of its samples): the answer for a host name never changes either.
    lookup = DomainDispatcherApplication.get_backend_for_host
    if not hasattr(lookup, "cache_info"):
        memo = functools.lru_cache(maxsize=4096)(lookup)
        setattr(DomainDispatcherApplication, "get_backend_for_host", memo)  # noqa: B010


class _SigningKeyOnce:
    """Stands in for ``joserfc.jwk`` in moto's Cognito models: ``RSAKey.import_key`` of the
    same key returns the key imported the first time."""

    def __init__(self, jwk: Any) -> None:
        self._jwk = jwk
        self._keys: dict[str, Any] = {}
        self.RSAKey = self  # noqa: N815 - the attribute moto reads

    def import_key(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self._jwk.RSAKey.import_key(value, *args, **kwargs)
        text = json.dumps(value, sort_keys=True)
        if text not in self._keys:
            self._keys[text] = self._jwk.RSAKey.import_key(value)
        return self._keys[text]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jwk, name)


def cognito_signing_key_once() -> None:
    """Make a new Cognito user pool reuse the signing key moto gives every pool.

    moto signs every pool's tokens with one fixed key (its ``jwks-private.json``), but
    imports it again for each new pool, and importing an RSA private key checks it: ~0.1 s
    of CPU a pool, about a sixth of provisioning the template on the emulator. The key is
    the same, so it is imported once; the pools and their tokens are as moto makes them.
    """
    from moto.cognitoidp import models

    jwk = getattr(models, "jwk")  # noqa: B009 - moto imports it, does not export it
    if not isinstance(jwk, _SigningKeyOnce):
        setattr(models, "jwk", _SigningKeyOnce(jwk))  # noqa: B010


def model_data_skips_failing_attributes() -> None:
    """``/moto-api/data.json`` leaves out an attribute whose getter raises, whatever it raises.

    moto skips only ``TypeError``/``AttributeError``/``ValueError``; the ``status`` of an S3
    key written by a multipart upload (pyarrow's S3 client, behind PyIceberg) looks its
    bucket up in another account's backend and raises ``MissingBucket``, so one Iceberg
    table in the emulator made the whole dump a 500.
    """

    from moto.moto_api._internal.responses import MotoAPIResponse

    def model_data(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        from moto.core.model_instances import model_data as tracked

        results: dict[str, dict[str, list[Any]]] = {}
        for service in sorted(tracked):
            results[service] = {}
            for name in sorted(tracked[service]):
                rows = results[service][name] = []
                for instance in tracked[service][name].instances_tracked:  # type: ignore[attr-defined]
                    row = {}
                    for attr in dir(instance):
                        if attr.startswith("_"):
                            continue
                        try:
                            value = getattr(instance, attr)
                            json.dumps(value)
                        except Exception:  # noqa: BLE001, S112 - moto's own rule, widened
                            continue
                        row[attr] = value
                    rows.append(row)
        return 200, {"Content-Type": "application/javascript"}, json.dumps(results)

    MotoAPIResponse.model_data = model_data  # type: ignore[method-assign]


def route_athena_rest_json() -> None:
    """Route every Athena path to moto's Athena handler, not only ``POST /``.

    botocore 1.44.14 and later describe Athena in the ``rest-json`` protocol (``POST
    /workgroups``, ``GET /query-executions/{QueryExecutionId}``), the model AWS now
    publishes. moto (through 5.2.6) already dispatches by the installed botocore's model
    (``moto.core.routing``), so it parses and answers REST-JSON, but its Athena URL table
    still lists only ``/``, the JSON-RPC path, and every other path is a 404 before the
    handler is reached. botocore is right; moto's URL table is behind (as its REST services,
    Batch or Bedrock, it needs a catch-all path). With an older botocore the JSON-RPC path
    still serves. Applied before the server builds its Athena app.
    """
    from moto.athena import urls
    from moto.athena.responses import AthenaResponse

    urls.url_paths.setdefault("{0}/.*$", AthenaResponse.dispatch)
