"""`Book.copy` is independent of its original and equal to it."""

import datetime as dt
import uuid
from decimal import Decimal

from odted.domain.ledger import Book, Reservation
from odted.domain.transactions import Transaction

TS = dt.datetime(2025, 1, 15, 15, tzinfo=dt.timezone.utc)
CALL = "SPXW  250115C05950000"


def tx(kind: str, value: str) -> Transaction:
    return Transaction(id=uuid.uuid4(), datetime=TS, instrument=CALL, type=kind, quantity=Decimal(1),
                       price=abs(Decimal(value)), value=Decimal(value),
                       effect="debit" if Decimal(value) > 0 else "credit", fees=Decimal("1.72"))


def test_changes_to_a_copy_leave_the_original_untouched():
    book = Book(uuid.uuid4(), Decimal(100000))
    book.apply(tx("buy to open", "430"))
    book.reserve(uuid.uuid4(), Reservation(amount=Decimal(500)))
    before = (book.financials(), book.positions(), book.reserved())
    other = book.copy()
    assert (other.financials(), other.positions(), other.reserved()) == before
    other.apply(tx("sell to close", "-450"))
    other.reserve(uuid.uuid4(), Reservation(amount=Decimal(100)))
    assert (book.financials(), book.positions(), book.reserved()) == before
    assert other.positions() == [] and other.reserved() == Decimal(600)


def test_the_revision_moves_with_every_change_but_a_mark():
    book = Book(uuid.uuid4(), Decimal(100000))
    r0 = book.revision
    book.apply(tx("buy to open", "430"))
    oid = uuid.uuid4()
    book.reserve(oid, Reservation(amount=Decimal(500)))
    r1 = book.revision
    assert r1 == r0 + 2
    book.release(uuid.uuid4())  # nothing held: no change
    assert book.revision == r1
    copy = book.copy()
    assert copy.revision == r1
    copy.release(oid)
    assert copy.revision == r1 + 1 and book.revision == r1
