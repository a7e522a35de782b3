"""The ward app's tables, in the gateway's store (one database, its own
migration numbers from 101 so they never meet the store's).

  ward_users     name, role, wards (JSON list), argon2id hash, must_change
                 (a one-time password is in force), disabled_at
  ward_sessions  SHA-256 of the session id (the cookie's value is never
                 stored), user, CSRF token, created/last-seen times
  ward_logins    failed logins (time, user, address) for throttling
  ward_wards     the wards an admin has named
  ward_alerts    one row per raised alert (id "device:seq" of the frame
                 that raised it): received (raised_at: the ward's clock, which
                 escalation counts from) and measured (the node's wall time,
                 for the timeline; NULL without one), cleared, acknowledged
                 (who, when, note - sealed with the store's data key like
                 every other patient datum: a note may name the patient),
                 escalated (when, the hook's answer)
"""
MIGRATIONS = [(101, "ward app: users, sessions, logins, wards, alerts", """
CREATE TABLE ward_users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, wards TEXT NOT NULL, pw_hash TEXT NOT NULL,
  must_change INTEGER NOT NULL, created_at {FLOAT} NOT NULL, created_by TEXT NOT NULL,
  disabled_at {FLOAT});
CREATE TABLE ward_sessions (
  id_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL,
  created_at {FLOAT} NOT NULL, last_seen {FLOAT} NOT NULL, address TEXT);
CREATE TABLE ward_logins (
  id {ID}, at {FLOAT} NOT NULL, user_name TEXT NOT NULL, address TEXT NOT NULL);
CREATE INDEX ward_logins_at ON ward_logins (at);
CREATE TABLE ward_wards (name TEXT PRIMARY KEY, created_at {FLOAT} NOT NULL);
CREATE TABLE ward_alerts (
  id TEXT PRIMARY KEY, device TEXT NOT NULL, alert TEXT NOT NULL, raised_at {FLOAT} NOT NULL,
  measured_at {FLOAT},
  cleared_at {FLOAT}, acked_by TEXT, acked_at {FLOAT}, note {BLOB}, escalated_at {FLOAT},
  notified TEXT);
CREATE INDEX ward_alerts_device ON ward_alerts (device, raised_at)
""")]


def migrate(store):
    store.db.migrate(MIGRATIONS, store)
