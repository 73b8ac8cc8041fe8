"""Deterministic ids for orders, positions and transactions.

Spec: live-trading-api "Place an order" and api-walkthrough Part 12 (`client_order_id`
is used as the order's id; when omitted, one is derived from the Idempotency-Key, else a
fresh UUID is generated), 6.3 (a position id is a synthetic UUID derived from
simulation + instrument + direction, stable across requests, never stored), 6.0 (a
dry-run answers with the all-zero id). DESIGN.md "Ids".

The namespaces below are fixed forever: changing one changes every derived id, which
would orphan idempotency records and break position ids clients have cached.

| id                      | derivation                                                  |
|-------------------------|-------------------------------------------------------------|
| order                   | `client_order_id`; else uuid5(ORDER_NAMESPACE, f"{user_id}:{idempotency_key}"); else `new_uuid()` |
| position                | uuid5(POSITION_NAMESPACE, f"{simulation_id}:{instrument}:{direction}") |
| fill transaction        | uuid5(order_id, f"fill:{leg_index}")                         |
| settlement transaction  | uuid5(SETTLEMENT_NAMESPACE, f"{simulation_id}:{instrument}:{direction}") |

The uuid4 of an order without a client id or key is the domain's only randomness, so it
is not drawn here: the caller passes `new_uuid` (`uuid.uuid4` in the daemon, a counter
in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

__all__ = [
    "ORDER_NAMESPACE",
    "POSITION_NAMESPACE",
    "SETTLEMENT_NAMESPACE",
    "DRY_RUN_ORDER_ID",
    "order_id",
    "position_id",
    "fill_transaction_id",
    "settlement_transaction_id",
]

ORDER_NAMESPACE = UUID("074f7f71-b5f2-476c-a4d4-d0d83644cf2f")
POSITION_NAMESPACE = UUID("ccfb0297-5a6d-4690-a5d4-5cc3d790ba0c")
SETTLEMENT_NAMESPACE = UUID("b5f1b16f-96d3-446e-8378-0071dd031af9")
DRY_RUN_ORDER_ID = UUID(int=0)


def order_id(
    *,
    client_order_id: UUID | None,
    user_id: UUID | str,
    idempotency_key: str | None,
    new_uuid: Callable[[], UUID],
) -> UUID:
    """The id of a new order (DESIGN.md "Ids"): client id, else keyed uuid5, else fresh."""
    if client_order_id is not None:
        return client_order_id
    if idempotency_key is not None:
        return uuid5(ORDER_NAMESPACE, f"{user_id}:{idempotency_key}")
    return new_uuid()


def position_id(simulation_id: UUID, instrument: str, direction: str) -> UUID:
    """The stable id of the `direction` ("long"/"short") position in `instrument`."""
    return uuid5(POSITION_NAMESPACE, f"{simulation_id}:{instrument}:{direction}")


def fill_transaction_id(order_id: UUID, leg_index: int) -> UUID:
    """The id of the transaction that fills leg `leg_index` of order `order_id`."""
    return uuid5(order_id, f"fill:{leg_index}")


def settlement_transaction_id(simulation_id: UUID, instrument: str, direction: str) -> UUID:
    """The id of the settlement transaction of one position at the close."""
    return uuid5(SETTLEMENT_NAMESPACE, f"{simulation_id}:{instrument}:{direction}")
