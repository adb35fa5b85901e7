"""The API's behaviour through the local gateway: answers, pages, 400 messages, idempotency."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.api.forecasts import ForecastQuery, query_forecasts
from pipeline.local.users import create_user, sign_in
from tests.support.api_stack import GENERATED_AT, RUN_ID, Api, put_forecasts

EVENTS = Path(__file__).resolve().parents[3] / "infra" / "events"
DAYS_JAN = [f"2025-01-{d:02d}" for d in range(1, 29)]


def _sku() -> str:
    return f"S{uuid.uuid4().hex[:8]}"


def _order(**overrides: Any) -> dict[str, Any]:
    body = {"sku_id": "S1", "location_id": "L1", "quantity": 12, "needed_by": "2099-05-01"}
    return {**body, **overrides}


def test_given_28_days_at_one_location_when_read_then_one_page_in_date_order(api: Api) -> None:
    sku = _sku()
    put_forecasts(api.stack, sku, "L1", DAYS_JAN)
    put_forecasts(api.stack, sku, "L2", DAYS_JAN[:3])
    status, body = api.call(
        "GET",
        f"/forecasts?sku_id={sku}&location_id=L1&from=2025-01-01&to=2025-01-28",
        caller="viewer",
    )
    assert status == 200
    assert [i["date"] for i in body["items"]] == DAYS_JAN
    assert body["next_token"] is None
    assert body["items"][0] == {
        "sku_id": sku,
        "location_id": "L1",
        "date": "2025-01-01",
        "forecast_val": 10.0,
        "confidence_lower": 8.0,
        "confidence_upper": 12.0,
        "run_id": RUN_ID,
        "generated_at": GENERATED_AT,
    }


def test_given_no_location_when_read_in_pages_then_every_location_in_range_exactly_once(
    api: Api,
) -> None:
    sku = _sku()
    for location in ("L1", "L2", "L3"):
        put_forecasts(api.stack, sku, location, DAYS_JAN)
    seen: list[tuple[str, str]] = []
    token = None
    pages = 0
    while True:
        query = f"/forecasts?sku_id={sku}&from=2025-01-05&to=2025-01-14&limit=7"
        status, body = api.call("GET", query + (f"&next_token={token}" if token else ""))
        assert status == 200, body
        pages += 1
        seen += [(i["location_id"], i["date"]) for i in body["items"]]
        token = body["next_token"]
        if token is None:
            break
    # From the ByDate index: by date, then location.
    expected = [(loc, f"2025-01-{d:02d}") for d in range(5, 15) for loc in ("L1", "L2", "L3")]
    assert seen == expected
    assert pages == 5  # 30 items, 7 a page


def test_given_a_long_history_when_two_days_are_read_without_location_then_dynamodb_reads_only_them(
    api: Api,
) -> None:
    sku = _sku()
    days = [(date(2024, 1, 1) + timedelta(days=n)).isoformat() for n in range(120)]
    for location in ("L1", "L2", "L3"):
        put_forecasts(api.stack, sku, location, days)
    ddb = api.stack.session().client("dynamodb")
    scanned: list[int] = []
    ddb.meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: scanned.append(parsed["ScannedCount"]),
    )
    query = ForecastQuery.parse(
        sku_id=sku, location_id=None, start="2024-03-01", end="2024-03-02", limit=4
    )

    page = query_forecasts(ddb, api.stack.ref("ForecastTable"), query)
    assert [(i["date"], i["location_id"]) for i in page.items] == [
        ("2024-03-01", "L1"),
        ("2024-03-01", "L2"),
        ("2024-03-01", "L3"),
        ("2024-03-02", "L1"),
    ]
    assert scanned == [5]  # one Query of the page and one more item, of 360 in the partition

    rest = query_forecasts(ddb, api.stack.ref("ForecastTable"), query, page.next_token)
    assert [(i["date"], i["location_id"]) for i in rest.items] == [
        ("2024-03-02", "L2"),
        ("2024-03-02", "L3"),
    ]
    assert rest.next_token is None
    assert scanned == [5, 2]


def test_given_a_token_of_another_sku_when_replayed_then_400(api: Api) -> None:
    sku = _sku()
    put_forecasts(api.stack, sku, "L1", DAYS_JAN)
    _, first = api.call("GET", f"/forecasts?sku_id={sku}&from=2025-01-01&to=2025-01-28&limit=2")
    status, body = api.call(
        "GET",
        f"/forecasts?sku_id=OTHER&from=2025-01-01&to=2025-01-28&next_token={first['next_token']}",
    )
    assert (status, body) == (
        400,
        {"message": "next_token is not a token this API issued for this query"},
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sku_id=S1&from=2025-01-01&to=2025-02-30", "to is not a calendar date: '2025-02-30'"),
        ("sku_id=S1&from=2025-03-01&to=2025-02-01", "to (2025-02-01) is before from (2025-03-01)"),
        (
            "sku_id=S1&from=2024-01-01&to=2025-01-01",
            "from..to spans 367 days; at most 366 are allowed",
        ),
        (
            "sku_id=S%231&from=2025-01-01&to=2025-01-02",
            "query.sku_id: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
        (
            "sku_id=S1&location_id=a%2Fb&from=2025-01-01&to=2025-01-02",
            "query.location_id: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
        (
            "sku_id=S1&from=01-01-2025&to=2025-01-02",
            "query.from: String should match pattern '^\\d{4}-\\d{2}-\\d{2}$'",
        ),
        ("sku_id=S1&to=2025-01-02", "query.from: Field required"),
        (
            "sku_id=S1&from=2025-01-01&to=2025-01-02&limit=0",
            "query.limit: Input should be greater than or equal to 1",
        ),
        (
            "sku_id=S1&from=2025-01-01&to=2025-01-02&limit=ten",
            "query.limit: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_given_bad_forecast_query_when_called_then_400_with_the_reason(
    api: Api, query: str, message: str
) -> None:
    assert api.call("GET", f"/forecasts?{query}", caller="viewer") == (400, {"message": message})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_order(quantity=0), "body.quantity: Input should be greater than 0"),
        (_order(quantity="5"), "body.quantity: Input should be a valid integer"),
        (_order(quantity=2.5), "body.quantity: Input should be a valid integer"),
        (_order(sku_id="S#1"), "body.sku_id: String should match pattern '^[A-Za-z0-9_-]{1,64}$'"),
        (
            _order(needed_by="tomorrow"),
            "body.needed_by: Input should be a valid date or datetime, input is too short",
        ),
        (_order(needed_by="2001-01-01"), "needed_by (2001-01-01) is in the past"),
        (_order(color="red"), "body.color: Extra inputs are not permitted"),
        (b"{not json", "body: is not valid JSON"),
    ],
)
def test_given_a_bad_order_when_posted_then_400_with_the_reason(
    api: Api, body: Any, message: str
) -> None:
    status, answer = api.call(
        "POST",
        "/orders",
        caller="planner",
        body=body,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert (status, answer) == (400, {"message": message})


def test_given_no_idempotency_key_when_posted_then_400(api: Api) -> None:
    assert api.call("POST", "/orders", caller="planner", body=_order()) == (
        400,
        {"message": "header.idempotency-key: Field required"},
    )


def test_given_a_key_when_reused_then_same_order_and_with_another_body_409(api: Api) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    created = api.call("POST", "/orders", caller="planner", body=_order(), headers=key)
    replayed = api.call("POST", "/orders", caller="planner", body=_order(), headers=key)
    conflict = api.call("POST", "/orders", caller="planner", body=_order(quantity=13), headers=key)
    assert created[0] == 201
    assert replayed == (200, created[1])
    assert conflict == (
        409,
        {
            "message": f"Idempotency-Key '{key['Idempotency-Key']}' was already used"
            " with a different body"
        },
    )
    stored = (
        api.stack.session()
        .client("dynamodb")
        .get_item(
            TableName=api.stack.ref("OrdersTable"),
            Key={"PK": {"S": f"ORDER#{created[1]['order_id']}"}},
        )["Item"]
    )
    assert stored["quantity"] == {"N": "12"}
    assert created[1]["created_by"] == "planner"


def test_given_the_same_key_from_two_users_then_two_orders(api: Api) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.call("POST", "/orders", caller="planner", body=_order(), headers=key)
    second = api.call("POST", "/orders", caller="admin", body=_order(), headers=key)
    assert (first[0], second[0]) == (201, 201)
    assert first[1]["order_id"] != second[1]["order_id"]


def test_given_quarantined_objects_when_status_is_read_then_they_are_counted(api: Api) -> None:
    s3 = api.stack.session().client("s3")
    bucket = api.stack.ref("RawBucket")
    before = api.call("GET", "/admin/status")[1]["quarantine"]["objects"]
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"quarantine/2025/01/0{n + 1}/x-{n}.json", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="sales/2025/01/01/x.json", Body=b"{}\n")
    put_forecasts(api.stack, _sku(), "L1", DAYS_JAN[:1])
    status, body = api.call("GET", "/admin/status")
    assert status == 200
    assert body["quarantine"]["objects"] == before + 3
    assert body["quarantine"]["complete"] is True
    latest = date.fromisoformat(body["forecasts"]["latest_run_at"][:10])
    assert abs(latest - date.today()) <= timedelta(days=1)


def test_given_a_compaction_commit_when_status_is_read_then_its_time_is_reported(
    api: Api,
) -> None:
    s3 = api.stack.session().client("s3")
    bucket = api.stack.ref("CuratedBucket")
    s3.put_object(Bucket=bucket, Key="_state/compaction/manifest.json", Body=b"{}")
    written = s3.head_object(Bucket=bucket, Key="_state/compaction/manifest.json")
    status, body = api.call("GET", "/admin/status")
    assert status == 200
    assert body["compaction"] == {
        "configured": True,
        "last_run_at": written["LastModified"].isoformat(),
    }


def test_given_a_user_when_added_and_removed_from_a_group_then_the_list_follows(api: Api) -> None:
    def groups_of(name: str) -> list[str]:
        users = api.call("GET", "/users")[1]["users"]
        return next(u["groups"] for u in users if u["username"] == name)

    assert api.call("PUT", "/users/nogroup/groups/PlannerGroup")[0] == 200
    assert groups_of("nogroup") == ["PlannerGroup"]
    assert api.call("DELETE", "/users/nogroup/groups/PlannerGroup")[0] == 200
    assert groups_of("nogroup") == []


def test_given_an_unknown_user_or_group_when_changed_then_404_or_400(api: Api) -> None:
    assert api.call("PUT", "/users/ghost/groups/ViewerGroup") == (
        404,
        {"message": "user 'ghost' does not exist"},
    )
    assert api.call("PUT", "/users/viewer/groups/RootGroup") == (
        400,
        {"message": "group must be one of AdminGroup, PlannerGroup, ViewerGroup"},
    )


GRANT_REFUSED = (
    "AdminGroup cannot be granted through the API, only PlannerGroup or ViewerGroup;"
    " grant it in the user pool itself"
)


def _groups_of(api: Api, name: str) -> list[str]:
    users = api.call("GET", "/users")[1]["users"]
    return next(u["groups"] for u in users if u["username"] == name)


def _audit(output: str) -> list[dict[str, Any]]:
    """The audit records among the function's log lines (Powertools JSON, one a line)."""
    records = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "audit" in entry:
            records.append(entry)
    return records


def test_given_an_admin_when_granting_admin_group_then_403_with_the_reason(api: Api) -> None:
    assert api.call("PUT", "/users/planner/groups/AdminGroup") == (
        403,
        {"message": GRANT_REFUSED},
    )
    assert _groups_of(api, "planner") == ["PlannerGroup"]


def test_given_a_second_admin_when_removed_then_signed_out_and_the_last_admin_stays(
    api: Api,
) -> None:
    second = f"admin-{uuid.uuid4().hex[:8]}"
    create_user(api.stack, second, groups=["AdminGroup"])
    access_token = sign_in(api.stack, second).access_token
    cognito = api.stack.session().client("cognito-idp")
    assert cognito.get_user(AccessToken=access_token)["Username"] == second

    assert api.call("DELETE", f"/users/{second}/groups/AdminGroup") == (
        200,
        {"username": second, "group": "AdminGroup", "member": False, "signed_out": True},
    )
    assert _groups_of(api, second) == []
    # Signed out everywhere: Cognito no longer accepts the access token it issued.
    with pytest.raises(cognito.exceptions.NotAuthorizedException):
        cognito.get_user(AccessToken=access_token)

    assert api.call("DELETE", "/users/admin/groups/AdminGroup") == (
        409,
        {
            "message": "'admin' is the last enabled member of AdminGroup; grant AdminGroup"
            " to another user in the user pool before removing it"
        },
    )
    assert _groups_of(api, "admin") == ["AdminGroup"]


def test_given_a_group_change_through_the_gateway_then_one_audit_record_in_the_functions_log(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert api.call("PUT", "/users/nogroup/groups/ViewerGroup")[0] == 200
    assert api.call("DELETE", "/users/nogroup/groups/ViewerGroup")[0] == 200
    assert api.call("PUT", "/users/nogroup/groups/AdminGroup")[0] == 403
    records = _audit(capsys.readouterr().out)

    # The function's own Powertools Logger wrote them (its service, its invocation).
    assert {r["service"] for r in records} == {"admin-api"}
    assert all(r["message"] == "group membership" and r["function_request_id"] for r in records)
    audit = [r["audit"] for r in records]
    request_ids = [a.pop("request_id") for a in audit]
    assert len(set(request_ids)) == 3
    assert all(uuid.UUID(r) for r in request_ids)  # API Gateway's requestContext.requestId
    who = {"actor": "admin", "target": "nogroup"}
    assert [{k: a.pop(k) for k in ("actor", "target")} for a in audit] == [who] * 3
    assert all(a.pop("actor_sub") for a in audit)
    assert audit == [
        {"group": "ViewerGroup", "action": "add", "outcome": "applied"},
        {"group": "ViewerGroup", "action": "remove", "outcome": "applied", "signed_out": True},
        {"group": "AdminGroup", "action": "add", "outcome": "refused", "reason": GRANT_REFUSED},
    ]


@pytest.mark.parametrize(
    ("event_file", "status"),
    [("api_get_forecasts.json", 200), ("api_post_order.json", 201), ("api_admin_status.json", 200)],
)
def test_given_a_sample_event_when_invoked_like_local_invoke_then_it_succeeds(
    api: Api, event_file: str, status: int
) -> None:
    from pipeline.local.invoke import invoke_function

    event = json.loads((EVENTS / event_file).read_text())
    function = "AdminApiFunction" if "admin" in event_file else "GetForecastFunction"
    response = invoke_function(api.stack, function, event)
    assert response["statusCode"] == status, response["body"]
