"""The trading rules: pure, synchronous, deterministic; stdlib and msgspec only.

One concept per module, each naming the spec rule it implements:

- `chain`: the market data every rule reads (`Tick`, `StrikeQuotes`, `OptionQuote`).
- `instruments`: OSI option symbols. `ticks`: SPX price ticks and snapping.
- `orders`: request and order Structs, `OrderDenied` and the table of denial codes.
- `tickets`: validation steps 1-4 (`parse_order`). `validation`: steps 5-7, replacement
  rules, the fill-time re-check. `lifecycle`: the order object through its statuses.
- `pricing`: combo natural sides and mid. `fills`: the fill rule, leg prices,
  transactions. `fees`: the fee schedule. `buying_power`: maintenance and the
  `buying-power-effect` block. `payoff`: expiration payoffs for both.
- `transactions`, `positions`, `ledger` (`Book`): transactions to positions to
  financials, marked to ticks. `settlement`: the close. `ids`: deterministic ids.
  `money`: canonical Decimal forms for the wire.
"""
