-- synchub schema v1. Plain SQL that runs unchanged on Postgres and PGlite.
-- Every per-user table's key starts with user_id, so the data can be distributed by user.
-- Times are integers in milliseconds since the epoch, as on the wire.

CREATE TABLE users (
  id            text PRIMARY KEY,
  username      text NOT NULL,
  password_hash text NOT NULL,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
  disabled      boolean NOT NULL DEFAULT false,
  created_at    int8 NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

-- The per-user counter row: seq is the newest change's sequence number, bumped inside every
-- write transaction (never a timestamp, never a Postgres sequence). min_valid_seq: cursors
-- below it can no longer be served (purged history). epoch changes when history is replaced.
CREATE TABLE user_state (
  user_id       text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  seq           int8 NOT NULL DEFAULT 0,
  min_valid_seq int8 NOT NULL DEFAULT 0,
  epoch         text NOT NULL,
  scope         text[]
);

-- Current state of every record; seq is the seq of its latest change (its rev), so the table
-- doubles as the user's compacted change log, read in seq order.
CREATE TABLE records (
  user_id     text NOT NULL,
  collection  text NOT NULL,
  id          text NOT NULL,
  seq         int8 NOT NULL,
  data        bytea NOT NULL,
  parent_id   text,
  created_at  int8 NOT NULL,
  updated_at  int8 NOT NULL,
  deleted_at  int8,
  purge_at    int8,
  replaced_by text,
  conflict_of text,
  device_id   text,
  PRIMARY KEY (user_id, collection, id)
);
CREATE UNIQUE INDEX records_user_seq ON records (user_id, seq);
CREATE INDEX records_parent ON records (user_id, parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX records_purge ON records (purge_at) WHERE purge_at IS NOT NULL;

CREATE TABLE devices (
  user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  id           text NOT NULL,
  name         text,
  platform     text,
  last_mid     int8 NOT NULL DEFAULT 0,
  acked_cursor int8 NOT NULL DEFAULT 0,
  created_at   int8 NOT NULL,
  last_seen    int8 NOT NULL,
  revoked_at   int8,
  PRIMARY KEY (user_id, id)
);

-- The first answer to every applied mid, so a replay returns it (with dup) instead of applying
-- again. Old rows are pruned once far behind the device's last_mid.
CREATE TABLE op_results (
  user_id   text NOT NULL,
  device_id text NOT NULL,
  mid       int8 NOT NULL,
  result    bytea NOT NULL,
  PRIMARY KEY (user_id, device_id, mid)
);

CREATE TABLE invites (
  code       text PRIMARY KEY,
  role       text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
  created_by text REFERENCES users (id) ON DELETE SET NULL,
  created_at int8 NOT NULL,
  expires_at int8 NOT NULL,
  used_by    text REFERENCES users (id) ON DELETE SET NULL,
  used_at    int8
);

-- Refresh tokens are stored as SHA-256 hashes. Every rotation adds a row in the same family;
-- presenting a rotated (used) token revokes the whole family.
CREATE TABLE refresh_tokens (
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash  text NOT NULL,
  family      text NOT NULL,
  device_id   text,
  created_at  int8 NOT NULL,
  expires_at  int8 NOT NULL,
  used_at     int8,
  revoked_at  int8,
  PRIMARY KEY (user_id, token_hash)
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (user_id, family);
