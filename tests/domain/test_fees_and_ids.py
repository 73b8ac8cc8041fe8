"""The fee schedule (walkthrough 2.5-2.6, 6.1) and deterministic ids (DESIGN.md "Ids")."""

from __future__ import annotations

from decimal import Decimal as D
from uuid import UUID, uuid5

import msgspec
import pytest

from odted.domain.fees import FeeSchedule, order_fees
from odted.domain.ids import (
    DRY_RUN_ORDER_ID,
    ORDER_NAMESPACE,
    fill_transaction_id,
    order_id,
    position_id,
    settlement_transaction_id,
)


def test_the_default_schedule_is_the_platform_schedule_field_for_field():
    body = msgspec.json.decode(msgspec.json.encode(FeeSchedule.default()))
    assert body == {
        "buy_equity": "0.0008",
        "sell_equity": "0.003986",
        "buy_to_open_option": "1.72",
        "sell_to_open_option": "1.72",
        "buy_to_close_option": "0.72",
        "sell_to_close_option": "0.72",
        "exercise_option": "5",
    }


def test_fees_are_per_contract_per_action():
    s = FeeSchedule.default()
    assert order_fees(s, [("buy to open", 1), ("sell to open", 1)]) == D("3.44")
    assert order_fees(s, [("buy to close", 2), ("sell to close", 3)]) == D("3.60")
    assert s.settlement_fee("exercise", 2) == D(10) and s.settlement_fee("assignment", 1) == D(5)
    assert s.settlement_fee("expiration", 4) == 0


def test_a_user_override_decodes_and_bad_values_are_refused_by_field():
    ok = b'{"buy_equity":"0.001","sell_equity":"0.005","buy_to_open_option":"2.000","sell_to_open_option":"2.000","buy_to_close_option":"0.250","sell_to_close_option":"0.250","exercise_option":"7.50"}'
    s = msgspec.json.decode(ok, type=FeeSchedule)
    assert s.exercise_option == D("7.50")
    with pytest.raises(msgspec.ValidationError, match="exercise_option must be at most 50"):
        msgspec.json.decode(ok.replace(b'"7.50"', b'"50.01"'), type=FeeSchedule)
    with pytest.raises(msgspec.ValidationError, match="buy_equity must be a non-negative"):
        msgspec.json.decode(ok.replace(b'"0.001"', b'"-0.001"'), type=FeeSchedule)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(ok.replace(b'"buy_equity":"0.001",', b""), type=FeeSchedule)


def test_an_order_id_is_the_client_id_else_the_keyed_uuid5_else_fresh():
    fresh = UUID(int=42)
    client = UUID("9f8a7b6c-5d4e-3f2a-1b0c-9d8e7f6a5b4c")
    user = UUID(int=3)
    assert order_id(client_order_id=client, user_id=user, idempotency_key="k", new_uuid=lambda: fresh) == client
    keyed = order_id(client_order_id=None, user_id=user, idempotency_key="ord-2025-05-07-001", new_uuid=lambda: fresh)
    assert keyed == uuid5(ORDER_NAMESPACE, f"{user}:ord-2025-05-07-001") and keyed.version == 5
    assert keyed != order_id(client_order_id=None, user_id=UUID(int=4), idempotency_key="ord-2025-05-07-001", new_uuid=lambda: fresh)
    assert order_id(client_order_id=None, user_id=user, idempotency_key=None, new_uuid=lambda: fresh) == fresh


def test_derived_ids_are_stable_and_distinct():
    sim = UUID(int=1)
    sym = "SPXW  250115C05950000"
    assert position_id(sim, sym, "long") == position_id(sim, sym, "long")
    assert position_id(sim, sym, "long") != position_id(sim, sym, "short")
    assert settlement_transaction_id(sim, sym, "long") != position_id(sim, sym, "long")
    assert fill_transaction_id(UUID(int=9), 0) != fill_transaction_id(UUID(int=9), 1)
    assert DRY_RUN_ORDER_ID == UUID("00000000-0000-0000-0000-000000000000")
