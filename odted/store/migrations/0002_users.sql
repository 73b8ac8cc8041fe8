-- Users: accounts, session tokens, email verification codes, fee schedule and slippage.

-- One row per account. Emails are stored normalized (trimmed, lower case).
-- password_hash: an argon2id hash; NULL for a passwordless account.
-- The fee columns are all NULL (the platform default schedule) or all set (an override);
-- slippage NULL means the configured default (users.default_slippage).
CREATE TABLE users (
    id                         uuid        PRIMARY KEY,
    email                      text        NOT NULL UNIQUE,
    password_hash              text,
    fee_buy_equity             numeric,
    fee_sell_equity            numeric,
    fee_buy_to_open_option     numeric,
    fee_sell_to_open_option    numeric,
    fee_buy_to_close_option    numeric,
    fee_sell_to_close_option   numeric,
    fee_exercise_option        numeric,
    slippage                   numeric     CHECK (slippage >= 0),
    created_at                 timestamptz NOT NULL,
    CONSTRAINT users_fee_schedule_whole CHECK (
        num_nulls(fee_buy_equity, fee_sell_equity, fee_buy_to_open_option, fee_sell_to_open_option,
                  fee_buy_to_close_option, fee_sell_to_close_option, fee_exercise_option) IN (0, 7)
    ),
    CONSTRAINT users_fee_schedule_non_negative CHECK (
        fee_buy_equity >= 0 AND fee_sell_equity >= 0 AND fee_buy_to_open_option >= 0
        AND fee_sell_to_open_option >= 0 AND fee_buy_to_close_option >= 0
        AND fee_sell_to_close_option >= 0 AND fee_exercise_option >= 0
    )
);

-- Session tokens, by the SHA-256 of the token; the token itself is never stored.
CREATE TABLE user_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL
);
CREATE INDEX user_tokens_user_id ON user_tokens (user_id);

-- The live verification code of an email (at most one; a new one replaces it), by the
-- SHA-256 of (email, code). Registered or not: registration needs a code first.
CREATE TABLE verification_codes (
    email            text        PRIMARY KEY,
    code_hash        bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    sent_at          timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    failed_attempts  integer     NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    consumed_at      timestamptz
);
