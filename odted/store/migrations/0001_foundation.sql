-- Foundation: the daemon's own bookkeeping.

-- One row per daemon start: which version ran, when, and on which host.
CREATE TABLE daemon_starts (
    id          bigserial   PRIMARY KEY,
    version     text        NOT NULL,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at  timestamptz
);
