"""The Starlette app factory: endpoints, middleware, and the lifespan that owns the pool."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from db import migrate
from db.events import prune_periodically
from db.fanout import EventFanout
from db.pool import close_pool, connect, create_pool
from db.replicas import ReadRouter
from db.tenancy import Tenancy
from schema import build_schema
from schema.live import LiveExecutor
from server import pages
from server.auth import TokenVerifier, load_or_create_secret
from server.config import Settings
from server.http import GraphQLHTTP
from server.metrics import CONTENT_TYPE, Metrics
from server.middleware import Front
from server.runtime import Runtime
from server.view import GraphQLView

log = logging.getLogger(__name__)


def verifier_for(settings: Settings) -> TokenVerifier:
    """The token verifier the settings describe; with no key, the data directory's secret."""
    secret = settings.jwt_secret
    if secret is None and settings.jwt_public_key is None:
        secret = load_or_create_secret(settings.data_dir)
    return TokenVerifier(
        secret=secret,
        public_key=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole service as one ASGI app."""
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise RuntimeError(
            "DATABASE_URL is not set. `workflow-runs serve` starts an embedded PostgreSQL "
            "when it is unset; an app built directly needs a database."
        )
    metrics = Metrics()
    schema = build_schema(
        settings.limits, introspection=settings.introspection, extensions=[metrics.extension()]
    )
    schema.observe_planned = metrics.planned
    runtime = Runtime(settings=settings, verifier=verifier_for(settings), schema=schema)
    metrics.watch(runtime)
    view = GraphQLView(runtime)
    graphql_http = GraphQLHTTP(runtime)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url is not None
        runtime.pool = await create_pool(
            settings.database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            statement_timeout_ms=settings.limits.statement_timeout_ms,
            on_query=runtime.count_query,
            pgbouncer=settings.pgbouncer,
            app_role=settings.tenancy is Tenancy.SESSION,
        )
        fanout = None
        if settings.subscriptions:
            fanout = EventFanout(
                runtime.pool,
                settings.listen_url or settings.database_url,
                settings.fanout,
                tenancy=settings.tenancy,
            )
            await fanout.start()
            runtime.fanout = fanout
            runtime.events = fanout
        if settings.shared_subscriptions and fanout is not None:
            runtime.live = LiveExecutor(schema, runtime.shared_context)
        if settings.read_urls:
            runtime.router = ReadRouter(
                runtime.pool,
                settings.read_urls,
                max_lag_ms=settings.max_replica_lag_ms,
                pool_options={
                    "min_size": 1,
                    "max_size": settings.pool_max_size,
                    "statement_timeout_ms": settings.limits.statement_timeout_ms,
                    "on_query": runtime.count_query,
                    "pgbouncer": settings.pgbouncer,
                    "app_role": settings.tenancy is Tenancy.SESSION,
                },
            )
            await runtime.router.start()
        # Retention deletes across workspaces: it connects as the owner, not through the pool.
        pruning = asyncio.create_task(
            prune_periodically(
                lambda: connect(settings.database_url or "", pgbouncer=settings.pgbouncer),
                settings.event_retention,
                settings.prune_interval_s,
            )
        )
        # Everything built so far (imports, the schema) lives as long as the process: move it
        # out of the collector's way, so that full collections (which stop the event loop, for
        # seconds with 10,000 sockets open) scan only what requests and sockets create.
        gc.collect()
        gc.freeze()
        # Rare full collections, short young ones. With thousands of sockets open, each full
        # collection walks every socket's objects and stops the loop for a second or more:
        # the defaults (700, 10, 10) ran one every few hundred milliseconds while events went
        # out to 10,000 subscribers, so full collections wait for 2,000 x 50 x 1,000 tracked
        # allocations. The young generation stays small: at 50,000 each collection of it
        # stopped the loop for 15-30 ms, and lookups by id at half load had a p99 of 26-31 ms
        # instead of 3.2-3.5 ms (docs/benchmarks.md).
        gc.set_threshold(2_000, 50, 1_000)
        try:
            yield
        finally:
            pruning.cancel()
            if runtime.router is not None:
                await runtime.router.stop()
            if fanout is not None:
                await fanout.stop()
            await close_pool(runtime.pool)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        problems = []
        try:
            assert runtime.pool is not None
            async with runtime.pool.acquire(timeout=2) as conn:
                version = await migrate.current_version(conn)
            if version != migrate.latest_version():
                problems.append(f"database at migration {version}, need {migrate.latest_version()}")
        except Exception as exc:
            problems.append(f"database unreachable: {exc.__class__.__name__}")
        if runtime.fanout is not None and not runtime.fanout.listener.connected.is_set():
            problems.append("event listener disconnected")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            Route("/dashboard", lambda request: pages.dashboard(request, settings.dev_token)),
            Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
            Route("/readyz", readyz),
            # Front (below) serves /graphql before routing; the route stays for the router's
            # redirect of /graphql/. Every method reaches the handler, which answers 405 itself
            # with an Allow header.
            Route(
                "/graphql",
                graphql_http.handle,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ],
        middleware=[
            Middleware(
                Front,
                path="/graphql",
                http_handler=graphql_http.handle,
                socket_app=view,
                max_bytes=settings.max_body_bytes,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
