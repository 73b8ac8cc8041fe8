-- Bots: content-addressed strategies, users' links to them, bots (bot-type accounts
-- with a pinned strategy and a policy), and bot sessions (one live simulation each).

-- A compiled strategy, shared by everyone who saves the same configuration. Immutable.
CREATE TABLE strategies (
    source_hash   text        PRIMARY KEY,
    source        text        NOT NULL,   -- the canonical source the hash is of
    config        jsonb       NOT NULL,
    description   text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A user's saved strategy: the link id is what the API calls the strategy id. Unlinking
-- keeps the row (deleted_at), so saving the same configuration again restores the id.
CREATE TABLE strategy_links (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_hash   text        NOT NULL REFERENCES strategies (source_hash),
    description   text,                   -- the user's override of the generated one
    privacy       text        NOT NULL DEFAULT 'private' CHECK (privacy IN ('private', 'public')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    UNIQUE (user_id, source_hash)
);

-- A bot is a `bot`-type live_sim account (accounts.id is the bot id) plus this row.
CREATE TABLE bots (
    account_id        uuid        PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    strategy_link_id  uuid        NOT NULL REFERENCES strategy_links (id),
    source_hash       text        NOT NULL REFERENCES strategies (source_hash),  -- pinned
    risk              jsonb       NOT NULL,   -- odted.domain.risk.RiskPolicy
    reprice           jsonb       NOT NULL,   -- odted.domain.reprice.RepricePolicy
    auto_start        boolean     NOT NULL DEFAULT false
);

-- One trading day of a bot. The risk and re-pricing policy are frozen into it at start.
CREATE TABLE bot_sessions (
    id                uuid        PRIMARY KEY,
    bot_id            uuid        NOT NULL REFERENCES bots (account_id) ON DELETE CASCADE,
    simulation_id     uuid        UNIQUE REFERENCES simulations (id) ON DELETE SET NULL,
    date              date        NOT NULL,
    status            text        NOT NULL CHECK (status IN (
                          'scheduled', 'registering', 'waiting_for_data', 'running', 'settling',
                          'completed', 'halted', 'killing', 'killed', 'failed')),
    source_hash       text        NOT NULL REFERENCES strategies (source_hash),
    risk              jsonb       NOT NULL,
    reprice           jsonb       NOT NULL,
    program_state     jsonb,                  -- odted.domain.program.ProgramState, after each commit
    order_meta        jsonb,                  -- {order id: [intent, tag]} of the strategy's orders
    flatten_on_kill   boolean     NOT NULL DEFAULT false,
    halt_reason       text,
    error_count       integer     NOT NULL DEFAULT 0,
    opening_balance   numeric     NOT NULL,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,            -- first tick processed (running)
    ended_at          timestamptz,
    -- the roll-up, null until the session finalizes
    final_nlv         numeric,
    realized_pl       numeric,
    total_pl          numeric,
    fees              numeric,
    max_intraday_dd   numeric,
    order_count       integer,
    fill_count        integer
);
-- One session per bot and day.
CREATE UNIQUE INDEX bot_sessions_one_per_day ON bot_sessions (bot_id, date);
CREATE INDEX bot_sessions_bot ON bot_sessions (bot_id, created_at DESC);
CREATE INDEX bot_sessions_active ON bot_sessions (status)
    WHERE status IN ('scheduled', 'registering', 'waiting_for_data', 'running', 'settling', 'killing');
