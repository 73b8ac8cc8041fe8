import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from md_fixtures import TOKEN, calendar, config, market, ticks_of  # noqa: F401 - fixtures
from odted.store.ticks import TickStore, atm_extrinsic, otm_bids

UTC = dt.UTC
D13, D14, D15 = dt.date(2025, 1, 13), dt.date(2025, 1, 14), dt.date(2025, 1, 15)
AUTH = {"Authorization": TOKEN}


@pytest.fixture
async def recorded(db, calendar, market):
    """Three recorded days; market time is 2025-01-15 10:00 ET (the 15th in progress)."""
    store = TickStore(db)
    days = {}
    for day, start in ((D13, dt.time(15, 59, 50)), (D14, dt.time(15, 59, 50)), (D15, dt.time(9, 59, 50))):
        ticks = ticks_of(calendar, day, start=start, n=11, strikes_each_side=4)
        s = calendar.session(day)
        await store.append(day, s.open_utc, s.close_utc, ticks)
        days[day] = ticks
    market.bus.set_speed("max")
    market.bus.publish(days[D15][-1])  # market time: 15:00:00 UTC
    return days


async def test_sessions_list_current_and_restricted_for_a_caller_without_a_token(client, recorded):
    body = (await client.get("/market-data/sessions")).json()
    assert list(body) == ["2025-01-13", "2025-01-14", "2025-01-15"]
    assert body["2025-01-15"] == {
        "start-time": "2025-01-15T14:30:00Z",
        "end-time": "2025-01-15T21:00:00Z",
        "data-start-time": "2025-01-15T14:59:50Z",
        "data-end-time": "2025-01-15T15:00:00Z",
        "current": True,
    }
    assert body["2025-01-14"]["end-time"] == "2025-01-14T21:00:00Z" and "restricted" not in body["2025-01-14"]
    assert body["2025-01-13"]["restricted"] is True and "current" not in body["2025-01-13"]


async def test_a_token_sees_no_session_restricted(client, recorded):
    body = (await client.get("/market-data/sessions", headers=AUTH)).json()
    assert not any("restricted" in s for s in body.values())
    assert body["2025-01-15"]["current"] is True


async def test_strikes_of_a_day(client, recorded):
    r = await client.get("/market-data/strikes/2025-01-14")
    assert r.status_code == 200
    assert r.json() == list(recorded[D14][0].strikes) == [5930, 5935, 5940, 5945, 5950, 5955, 5960, 5965, 5970]


async def test_a_snapshot_has_call_and_put_keys_with_numbers(client, recorded):
    tick = recorded[D15][3]
    r = await client.get(f"/market-data/option-chain-snapshots/{tick.ts:%Y-%m-%dT%H:%M:%S}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body)[:4] == ["call_5930", "put_5930", "call_5935", "put_5935"]
    s = tick.at(5950)
    assert body["call_5950"] == {"bid": float(s.call.bid), "ask": float(s.call.ask), "delta": s.call.delta}
    assert body["put_5950"] == {"bid": float(s.put.bid), "ask": float(s.put.ask), "delta": s.put.delta}
    assert b'"bid":' + str(s.call.bid).encode() in r.content  # numbers, as recorded


async def test_a_snapshot_in_a_gap_is_the_last_quote_before_it(client, recorded, db, calendar):
    (early,) = ticks_of(calendar, D15, start=dt.time(9, 59, 30), n=1, strikes_each_side=4)
    s = calendar.session(D15)
    await TickStore(db).append(D15, s.open_utc, s.close_utc, [early])  # 14:59:30, then 14:59:50 on
    r = await client.get("/market-data/option-chain-snapshots/2025-01-15T14:59:45Z")
    assert r.status_code == 200, r.text
    assert r.json()["call_5950"]["bid"] == float(early.at(5950).call.bid)


async def test_the_second_in_progress_comes_from_the_bus(client, recorded, market):
    latest = msgspec.structs.replace(recorded[D15][-1], seq=10_000, ts=recorded[D15][-1].ts + dt.timedelta(seconds=1))
    market.bus.publish(latest)  # not recorded (yet)
    r = await client.get(f"/market-data/option-chain-snapshots/{latest.ts:%Y-%m-%dT%H:%M:%S}")
    assert r.status_code == 200 and len(r.json()) == 18


async def test_historical_defaults_to_spx_and_expected_move(client, recorded):
    r = await client.get("/market-data/historical/2025-01-14")
    assert r.status_code == 200
    rows = r.json()
    t = recorded[D14][0]
    assert len(rows) == 11
    assert rows[0] == {"datetime": "2025-01-14T20:59:50Z", "datetimeUnix": int(t.ts.timestamp()),
                       "spx": str(t.spx), "spx_expected_move": str(t.spx_expected_move)}
    assert rows[-1]["datetime"] == "2025-01-14T21:00:00Z"


async def test_historical_every_series_as_decimal_strings(client, recorded):
    r = await client.get("/market-data/historical/2025-01-15",
                         params={"series": "spx,vix,spxExpectedMove,spxOTMBids,spxExtrinsic"})
    rows = r.json()
    t = recorded[D15][0]
    assert rows[0] == {
        "datetime": "2025-01-15T14:59:50Z", "datetimeUnix": int(t.ts.timestamp()),
        "spx": str(t.spx), "vix": str(t.vix), "spx_expected_move": str(t.spx_expected_move),
        "spx_otm_bids": str(otm_bids(t)), "spx_extrinsic": str(atm_extrinsic(t)),
    }
    assert Decimal(rows[0]["spx_otm_bids"]) > 0
    again = await client.get("/market-data/historical/2025-01-14", params={"series": "vix"})
    assert set(again.json()[0]) == {"datetime", "datetimeUnix", "vix"}


async def test_historical_of_a_completed_day_is_served_from_cache_the_second_time(client, recorded, db):
    first = await client.get("/market-data/historical/2025-01-14", params={"series": "spx"})
    second = await client.get("/market-data/historical/2025-01-14", params={"series": "spx"})
    assert first.content == second.content


async def test_an_older_session_needs_a_token(client, recorded):
    for path in OLDER:
        r = await client.get(path)
        assert r.status_code == 401 and r.text.startswith("unauthorized:"), path
        r = await client.get(path, headers={"Authorization": "not-a-token"})
        assert r.status_code == 401, path
        assert (await client.get(path, headers=AUTH)).status_code == 200, path


OLDER = [
    "/market-data/strikes/2025-01-13",
    "/market-data/historical/2025-01-13",
    "/market-data/option-chain-snapshots/2025-01-13T20:59:55",
]

MALFORMED = [
    "/market-data/strikes/2025-13-01",
    "/market-data/strikes/20250115",
    "/market-data/strikes/2025-02-30",
    "/market-data/historical/2025-1-15",
    "/market-data/historical/2025-01-15?series=spx,price",
    "/market-data/historical/2025-01-15?series=",
    "/market-data/historical/2025-01-15?series=SPX",
    "/market-data/option-chain-snapshots/2025-01-15",
    "/market-data/option-chain-snapshots/2025-01-15T15:00",
    "/market-data/option-chain-snapshots/2025-01-15 15:00:00",
    "/market-data/option-chain-snapshots/2025-01-15T25:00:00",
    "/market-data/option-chain-snapshots/1736953200",
]


async def test_malformed_dates_timestamps_and_series_are_400(client, recorded):
    for path in MALFORMED:
        for headers in ({}, AUTH):
            r = await client.get(path, headers={"Accept": "application/json", **headers})
            assert r.status_code == 400, (path, r.text)
            assert r.json()["code"] == "invalid_input"


UNKNOWN = [
    "/market-data/strikes/2025-01-16",
    "/market-data/historical/2024-08-05",
    "/market-data/option-chain-snapshots/2025-01-16T15:00:00",
    "/market-data/option-chain-snapshots/2025-01-15T14:30:00",  # before the recorded data
    "/market-data/option-chain-snapshots/2025-01-14T21:00:01",  # after it
]


async def test_unknown_sessions_and_seconds_are_404(client, recorded):
    for path in UNKNOWN:
        for headers in ({}, AUTH):
            r = await client.get(path, headers=headers)
            assert r.status_code == 404, (path, r.text)
            assert r.text.startswith("not_found:")


async def test_without_any_recording_the_list_is_empty(client, market):
    assert (await client.get("/market-data/sessions")).json() == {}


async def test_the_routes_are_in_the_openapi_document_with_their_costs(client):
    text = (await client.get("/openapi.yaml")).text
    for path in ("/market-data/sessions", "/market-data/strikes/{day}",
                 "/market-data/option-chain-snapshots/{timestamp}", "/market-data/historical/{day}"):
        assert f'"{path}":' in text
    assert '"x-rate-limit-cost": 5' in text and '"x-rate-limit-cost": 20' in text
    assert '"MarketSession":' in text and '"HistoricalRow":' in text

