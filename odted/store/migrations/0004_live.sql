-- Live trading: accounts, simulations (live sessions), orders, transactions, events,
-- idempotency records, per-second history.
--
-- Orders and transactions keep their whole wire document (`doc`, the msgspec encoding of
-- the domain Struct, decimals as exact strings) next to the columns queries need; an
-- actor rebuilds its state by decoding the documents of its simulation.

-- A trading account: a named, cash-only container with a balance carried day to day.
CREATE TABLE accounts (
    id                uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              text        NOT NULL,
    description       text,
    engine            text        NOT NULL,
    type              text        NOT NULL DEFAULT 'manual' CHECK (type IN ('manual', 'bot')),
    starting_capital  numeric     NOT NULL CHECK (starting_capital > 0),
    cash_balance      numeric     NOT NULL,
    status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'deleted')),
    traded            boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_active_name ON accounts (user_id, type, lower(name)) WHERE status = 'active';
CREATE INDEX accounts_user ON accounts (user_id, created_at);

-- A live simulation: a `/live` manual simulation (account_id NULL) or one trading day
-- of an account (a `live_sim` account's session, or a bot's).
CREATE TABLE simulations (
    id                uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id        uuid        REFERENCES accounts (id) ON DELETE CASCADE,
    date              date        NOT NULL,
    starting_capital  numeric     NOT NULL,
    description       text,
    status            text        NOT NULL DEFAULT 'open'
                                  CHECK (status IN ('open', 'settled', 'abandoned', 'deleted', 'failed')),
    start_time        timestamptz NOT NULL,
    end_time          timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    settled_at        timestamptz,
    closing_balance   numeric,
    traded            boolean     NOT NULL DEFAULT false,
    crashes           integer     NOT NULL DEFAULT 0,
    last_crash        text
);
-- One open manual simulation per user; one live session per account and day.
CREATE UNIQUE INDEX simulations_one_open_live ON simulations (user_id) WHERE account_id IS NULL AND status = 'open';
CREATE UNIQUE INDEX simulations_one_per_account_day ON simulations (account_id, date)
    WHERE account_id IS NOT NULL AND status IN ('open', 'settled');
CREATE INDEX simulations_open ON simulations (status) WHERE status = 'open';
CREATE INDEX simulations_user ON simulations (user_id, created_at);
CREATE INDEX simulations_account ON simulations (account_id, date);

CREATE TABLE orders (
    id                uuid        PRIMARY KEY,
    simulation_id     uuid        NOT NULL REFERENCES simulations (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL,
    status            text        NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    doc               jsonb       NOT NULL,
    UNIQUE (simulation_id, seq)
);

CREATE TABLE transactions (
    id                uuid        PRIMARY KEY,
    simulation_id     uuid        NOT NULL REFERENCES simulations (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL,
    order_id          uuid        REFERENCES orders (id) ON DELETE CASCADE,
    ts                timestamptz NOT NULL,
    doc               jsonb       NOT NULL,
    UNIQUE (simulation_id, seq)
);

-- Events pushed on `simulation_events`; `id` is a per-simulation sequence from 1,
-- committed with the change it reports, never reused.
CREATE TABLE simulation_events (
    simulation_id     uuid        NOT NULL REFERENCES simulations (id) ON DELETE CASCADE,
    id                bigint      NOT NULL,
    type              text        NOT NULL,
    payload           jsonb       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (simulation_id, id)
);

-- `Idempotency-Key` records: the original response of a mutation, replayed for a
-- retry with the same key within the retention window.
CREATE TABLE idempotency_keys (
    user_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key               text        NOT NULL,
    request_hash      text        NOT NULL,
    status            integer     NOT NULL,
    body              bytea       NOT NULL,
    simulation_id     uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Per-second financial history of a simulation (written in batches with COPY).
CREATE TABLE simulation_history (
    simulation_id     uuid        NOT NULL REFERENCES simulations (id) ON DELETE CASCADE,
    ts                timestamptz NOT NULL,
    doc               jsonb       NOT NULL,
    PRIMARY KEY (simulation_id, ts)
);
