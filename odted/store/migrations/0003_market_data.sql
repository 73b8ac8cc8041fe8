-- Market data: the recorded sessions and every tick a feed published.

-- One row per recorded trading day (America/New_York date), as /market-data/sessions
-- lists it. start_time / end_time: the session's regular hours from the exchange
-- calendar; data_start_time / data_end_time: the first and last tick recorded.
-- strikes: every strike any recorded tick of the day quoted, ascending.
-- ticks: how many ticks are recorded.
CREATE TABLE market_sessions (
    date             date        PRIMARY KEY,
    start_time       timestamptz NOT NULL,
    end_time         timestamptz NOT NULL,
    data_start_time  timestamptz NOT NULL,
    data_end_time    timestamptz NOT NULL,
    strikes          integer[]   NOT NULL DEFAULT '{}',
    ticks            integer     NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per tick (one second). The scalar series are exact NUMERICs, so the
-- historical endpoint reads them without touching the chain. spx_otm_bids and
-- spx_extrinsic are derived from the chain when the tick is recorded (odted/store/ticks.py
-- says how). chain: the option chain packed by odted/store/ticks.py (format byte, then
-- zlib of byte-shuffled, strike-differenced int32 rows: strikes, call bid, call ask,
-- put bid, put ask in cents, call delta, put delta in thousandths), about 0.5 KB for
-- 241 strikes. The first recording of a second wins (ON CONFLICT DO NOTHING).
CREATE TABLE market_ticks (
    session_date       date        NOT NULL REFERENCES market_sessions (date) ON DELETE CASCADE,
    ts                 timestamptz NOT NULL,
    seq                bigint      NOT NULL,
    closing            boolean     NOT NULL,
    spx                numeric     NOT NULL,
    vix                numeric     NOT NULL,
    spx_expected_move  numeric     NOT NULL,
    spx_otm_bids       numeric     NOT NULL,
    spx_extrinsic      numeric     NOT NULL,
    chain              bytea       NOT NULL,
    PRIMARY KEY (session_date, ts)
);

-- The chain is compressed already: never let PostgreSQL try again.
ALTER TABLE market_ticks ALTER COLUMN chain SET STORAGE EXTERNAL;
