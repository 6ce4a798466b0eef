"""`workflow-runs`: serve, migrate, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from db.migrate import migrate
from db.pool import connect
from server.auth import DEFAULT_SCOPES, load_or_create_secret, mint_token
from server.config import Settings
from server.embedded import EmbeddedPostgres
from server.logs import log_config

log = logging.getLogger("workflow_runs")

DEMO_USER = "demo-user"
DEMO_WORKSPACE = "demo"


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database, or an embedded one in the data directory for the duration."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir.resolve())
    log.info("DATABASE_URL is unset: starting embedded PostgreSQL in %s", embedded.pgdata)
    dsn = embedded.start()
    try:
        yield dsn
    finally:
        log.info("stopping embedded PostgreSQL")
        embedded.stop()


async def _migrate(dsn: str, *, pgbouncer: bool = False) -> list[int]:
    conn = await connect(dsn, pgbouncer=pgbouncer)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as dsn:
        applied = asyncio.run(_migrate(dsn, pgbouncer=settings.pgbouncer))
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    secret = settings.jwt_secret
    if secret is None:
        if settings.jwt_public_key is not None:
            print(
                "tokens are verified with WORKFLOW_RUNS_JWT_PUBLIC_KEY: mint them with the "
                "matching private key",
                file=sys.stderr,
            )
            return 2
        secret = load_or_create_secret(settings.data_dir)
    scopes = [s for value in (args.scope or DEFAULT_SCOPES) for s in value.split()]
    print(
        mint_token(
            secret,
            user=args.user,
            workspaces=args.workspace,
            scopes=scopes,
            ttl_s=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from server.httpprotocol import HTTP_PROTOCOL
    from server.wsprotocol import WS_PROTOCOL

    with database(settings) as dsn:
        asyncio.run(_migrate(dsn, pgbouncer=settings.pgbouncer))
        # Worker processes build the app from the environment: hand them the database.
        os.environ["DATABASE_URL"] = dsn
        if settings.jwt_secret is None and settings.jwt_public_key is None:
            secret = load_or_create_secret(settings.data_dir)
            token = mint_token(
                secret, user=DEMO_USER, workspaces=[DEMO_WORKSPACE], ttl_s=30 * 86400
            )
            # A local demo: GraphiQL and the dashboard open with this token already in place.
            os.environ["WORKFLOW_RUNS_DEV_TOKEN"] = token
            print(
                "\nNo JWT key configured: signing with the secret in "
                f"{settings.data_dir}/jwt-secret."
                f"\nA token for user {DEMO_USER!r} on workspace {DEMO_WORKSPACE!r} (30 days):\n\n"
                f"  {token}\n\n"
                f"GraphiQL: http://{args.host}:{args.port}/graphql  (headers pane: "
                f'{{"Authorization": "Bearer <token>"}})\n',
                flush=True,
            )
        # uvicorn re-raises SIGTERM once it has shut down gracefully; turned into SystemExit,
        # it unwinds through `database()`, which then stops the embedded server.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http=HTTP_PROTOCOL,
            ws=WS_PROTOCOL,
            # Deflate costs CPU per message per socket, and compressed frames cannot be
            # shared between subscribers.
            ws_per_message_deflate=False,
            # Server-side keep-alive: WebSocket pings, and a peer that stops answering (or
            # reading) is dropped after as long again.
            ws_ping_interval=settings.keep_alive_interval_s,
            ws_ping_timeout=settings.keep_alive_interval_s,
            lifespan="on",
            timeout_graceful_shutdown=10,
            log_config=log_config(json=settings.log_format == "json"),
            # One line per request; off where a proxy logs requests (it costs ~7% of a small
            # query's CPU).
            access_log=settings.access_log,
        )
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="workflow-runs", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (GraphiQL at /graphql)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)

    mig = commands.add_parser("migrate", help="apply pending database migrations")
    mig.set_defaults(run=cmd_migrate)

    token = commands.add_parser("token", help="mint a bearer token (HS256)")
    token.add_argument("--user", required=True)
    token.add_argument("--workspace", action="append", required=True)
    token.add_argument("--scope", action="append", help=f"default: {' '.join(DEFAULT_SCOPES)}")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(run=cmd_token)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `workflow-runs` command."""
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    logging.config.dictConfig(log_config(json=settings.log_format == "json"))
    settings = replace(settings, data_dir=settings.data_dir.resolve())
    code: int = args.run(settings, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
