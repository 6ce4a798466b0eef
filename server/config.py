"""Settings, read once from the environment (see the README's configuration table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from db.fanout import FanoutLimits
from db.tenancy import Tenancy
from schema.context import Limits


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the process is configured with."""

    database_url: str | None = None
    # The LISTEN connection's DSN: a direct one when DATABASE_URL goes through PgBouncer.
    listen_url: str | None = None
    # Streaming replicas that serve reads, and how far behind one may fall before it is skipped.
    read_urls: tuple[str, ...] = ()
    max_replica_lag_ms: int = 1_000
    data_dir: Path = Path(".workflow-runs")
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    limits: Limits = field(default_factory=Limits)
    max_body_bytes: int = 1024 * 1024
    connection_init_timeout_s: float = 5.0
    keep_alive_interval_s: float = 15.0
    pool_min_size: int = 2
    pool_max_size: int = 10
    # DATABASE_URL is PgBouncer in transaction mode (DATABASE_LISTEN_URL must then be direct).
    pgbouncer: bool = False
    # Row-level security on every query of the service (see db/tenancy.py).
    row_level_security: bool = True
    event_retention: timedelta = timedelta(days=7)
    prune_interval_s: float = 600.0
    fanout: FanoutLimits = field(default_factory=FanoutLimits)
    # One execution per event per subscription shape, instead of one per subscriber.
    access_log: bool = True
    # Off for hosts that only take workers' writes and reads: no listener, no hints sent.
    subscriptions: bool = True
    shared_subscriptions: bool = True
    # Plain run selections answered with JSON built by PostgreSQL (schema/compiled.py).
    compiled_selections: bool = True
    # Development conveniences: a token to prefill GraphiQL's headers with (set by `serve`
    # for the demo workspace when no key is configured; never in production).
    dev_token: str | None = None
    # "json" (one object per line, with the request id) or "text".
    log_format: str = "json"
    # Introspection and field suggestions; switch off in production if the schema is private.
    introspection: bool = True

    @property
    def tenancy(self) -> Tenancy:
        return Tenancy.choose(row_level_security=self.row_level_security, pgbouncer=self.pgbouncer)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        limits = Limits(
            default_page_size=_int(env, "WORKFLOW_RUNS_DEFAULT_PAGE_SIZE", 50),
            max_page_size=_int(env, "WORKFLOW_RUNS_MAX_PAGE_SIZE", 500),
            max_json_bytes=_int(env, "WORKFLOW_RUNS_MAX_JSON_BYTES", 256 * 1024),
            max_text_bytes=_int(env, "WORKFLOW_RUNS_MAX_TEXT_BYTES", 64 * 1024),
            max_depth=_int(env, "WORKFLOW_RUNS_MAX_DEPTH", 12),
            max_aliases=_int(env, "WORKFLOW_RUNS_MAX_ALIASES", 30),
            max_tokens=_int(env, "WORKFLOW_RUNS_MAX_TOKENS", 5_000),
            max_fields=_int(env, "WORKFLOW_RUNS_MAX_FIELDS", 500),
            max_field_repeats=_int(env, "WORKFLOW_RUNS_MAX_FIELD_REPEATS", 5),
            max_subscriptions_per_socket=_int(env, "WORKFLOW_RUNS_MAX_SUBSCRIPTIONS", 100),
            execution_timeout_ms=_int(env, "WORKFLOW_RUNS_EXECUTION_TIMEOUT_MS", 10_000),
            statement_timeout_ms=_int(env, "WORKFLOW_RUNS_STATEMENT_TIMEOUT_MS", 30_000),
        )
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            listen_url=env.get("DATABASE_LISTEN_URL") or None,
            read_urls=tuple(
                url.strip()
                for url in (env.get("DATABASE_READ_URLS") or "").split(",")
                if url.strip()
            ),
            max_replica_lag_ms=_int(env, "WORKFLOW_RUNS_MAX_REPLICA_LAG_MS", 1_000),
            data_dir=Path(env.get("WORKFLOW_RUNS_DATA_DIR") or ".workflow-runs"),
            jwt_secret=env.get("WORKFLOW_RUNS_JWT_SECRET") or None,
            jwt_public_key=env.get("WORKFLOW_RUNS_JWT_PUBLIC_KEY") or None,
            jwt_issuer=env.get("WORKFLOW_RUNS_JWT_ISSUER") or None,
            jwt_audience=env.get("WORKFLOW_RUNS_JWT_AUDIENCE") or None,
            limits=limits,
            max_body_bytes=_int(env, "WORKFLOW_RUNS_MAX_BODY_BYTES", 1024 * 1024),
            connection_init_timeout_s=_int(env, "WORKFLOW_RUNS_CONNECTION_INIT_TIMEOUT_MS", 5_000)
            / 1000,
            keep_alive_interval_s=_int(env, "WORKFLOW_RUNS_KEEP_ALIVE_MS", 15_000) / 1000,
            pool_min_size=_int(env, "WORKFLOW_RUNS_POOL_MIN_SIZE", 2),
            pool_max_size=_int(env, "WORKFLOW_RUNS_POOL_MAX_SIZE", 10),
            pgbouncer=_bool(env, "WORKFLOW_RUNS_PGBOUNCER", False),
            row_level_security=_bool(env, "WORKFLOW_RUNS_ROW_LEVEL_SECURITY", True),
            event_retention=timedelta(
                seconds=_int(env, "WORKFLOW_RUNS_EVENT_RETENTION_S", 7 * 24 * 3600)
            ),
            prune_interval_s=_int(env, "WORKFLOW_RUNS_PRUNE_INTERVAL_S", 600),
            fanout=FanoutLimits(
                queue_capacity=_int(env, "WORKFLOW_RUNS_SUBSCRIBER_QUEUE", 256),
                max_lag=_int(env, "WORKFLOW_RUNS_SUBSCRIBER_MAX_LAG", 10_000),
                poll_interval=_int(env, "WORKFLOW_RUNS_EVENT_POLL_MS", 1_000) / 1000,
            ),
            subscriptions=_bool(env, "WORKFLOW_RUNS_SUBSCRIPTIONS", True),
            access_log=_bool(env, "WORKFLOW_RUNS_ACCESS_LOG", True),
            shared_subscriptions=_bool(env, "WORKFLOW_RUNS_SHARED_SUBSCRIPTIONS", True),
            compiled_selections=_bool(env, "WORKFLOW_RUNS_COMPILED_SELECTIONS", True),
            dev_token=env.get("WORKFLOW_RUNS_DEV_TOKEN") or None,
            log_format=(env.get("WORKFLOW_RUNS_LOG_FORMAT") or "json").strip().lower(),
            introspection=_bool(env, "WORKFLOW_RUNS_INTROSPECTION", True),
        )
