"""Schema-driven fuzzing: schemathesis sends requests generated from the OpenAPI schema (valid and
invalid ones) to every route with an admin key, and none may answer 5xx. Property tests then send
every kind of instant (any year, any offset, with or without one) wherever the API takes a time.

The budget is fixed and the generation derandomised, so CI runs the same few hundred requests in
well under a minute; a failure prints the request that reproduces it."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.app.conftest import Archive
from tests.app.images import image_bytes

EXAMPLES_PER_ROUTE = 20
FUZZ = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    derandomize=True,  # the same requests on every run
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_no_route_answers_5xx(archive: Archive) -> None:
    # schemathesis's pytest plugin does not run on this pytest: drive its strategies directly.
    archive.frame_id(image_bytes(width=32, height=24))  # something to list and look up
    schema = schemathesis.openapi.from_asgi("/openapi.json", archive.client.app)
    headers = archive.as_key("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # every route of the API, not a schema that failed to load

    for operation, mode in [(o, m) for o in operations for m in schemathesis.GenerationMode]:

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def no_server_error(case: schemathesis.Case) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}\nreproduce with: {case.as_curl_command()}"
            )

        try:
            no_server_error()
        except Unsatisfiable:  # a route without parameters has no invalid requests to make
            assert mode is schemathesis.GenerationMode.NEGATIVE


# Any instant Python can hold, at any whole-minute offset, or none: hypothesis favours the edges
# (years 1 and 9999), where the conversion to UTC overflows.
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
INSTANTS = st.datetimes(timezones=st.none() | OFFSETS).map(datetime.isoformat)
NUMBERS = st.integers(-(10**13), 10**13).map(str)


def test_any_instant_as_a_listing_bound_or_cursor_is_not_5xx(archive: Archive) -> None:
    archive.frame_id(image_bytes(width=32, height=24))
    headers = archive.as_key("admin")

    @FUZZ
    @given(start=INSTANTS | NUMBERS, end=INSTANTS, at=INSTANTS)
    def answered(start: str, end: str, at: str) -> None:
        cursor = base64.urlsafe_b64encode(json.dumps([at, "0" * 32]).encode()).decode()
        for params in ({"from": start}, {"to": end}, {"cursor": cursor}):
            response = archive.client.get("/v1/frames", params=params, headers=headers)
            assert response.status_code in (200, 422), (params, response.text[:300])
        body = {"camera_id": "cam-1", "from": start, "to": end}
        response = archive.client.post("/v1/restore-jobs", json=body, headers=headers)
        assert response.status_code < 500, (body, response.text[:300])

    answered()


def expected_status(text: str) -> int:
    """What the contract says of `text` as an instant: 422 unless ISO 8601 with an offset that
    stays within years 1-9999 in UTC (worked out here without the app's code)."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return 422  # an epoch number
    if instant.tzinfo is None:
        return 422
    offset = instant.utcoffset() or timedelta(0)
    naive = instant.replace(tzinfo=None)
    try:
        naive - offset  # the UTC wall time; OverflowError outside years 1-9999
    except OverflowError:
        return 422
    return 201


def test_any_instant_as_captured_at_is_stored_or_422(archive: Archive) -> None:
    data = image_bytes(width=8, height=8)

    @FUZZ
    @given(captured_at=INSTANTS | NUMBERS)
    @example(captured_at="0001-01-01T00:00:00+01:00")
    @example(captured_at="9999-12-31T23:59:59-01:00")
    @example(captured_at="1714564800")
    def answered(captured_at: str) -> None:
        response = archive.upload(data, captured_at=captured_at, key="admin")
        status = {200: 201}.get(response.status_code, response.status_code)  # a repeat is 200
        assert status == expected_status(captured_at), (captured_at, response.text[:300])

    answered()
