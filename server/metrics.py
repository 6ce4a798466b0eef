"""Prometheus metrics for /metrics: operations, latency, sockets, the fan-out, the pool.

Each app has its own registry (several apps can live in one process, as in the tests). With
several uvicorn workers, each process answers for itself: scrape each, or aggregate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from strawberry.extensions import SchemaExtension

from schema.live import Handoff

if TYPE_CHECKING:
    from server.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Operation names are the client's to choose: cap the label's values so that a client
# inventing names cannot grow the registry without bound.
_MAX_OPERATION_NAMES = 200
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The app's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter(
            "workflow_runs_graphql_operations",
            "GraphQL operations by type, operation name and outcome (ok or an error code).",
            ["type", "operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "workflow_runs_graphql_operation_duration_seconds",
            "Time to answer a query or mutation.",
            ["type"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._names: set[str] = set()
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    def watch(self, runtime: Runtime) -> None:
        """Report the runtime's gauges (sockets, pool, fan-out, listener) at each scrape."""
        self.registry.register(_RuntimeCollector(runtime))

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _NAME.match(name):
            return "invalid"
        if name not in self._names:
            if len(self._names) >= _MAX_OPERATION_NAMES:
                return "other"
            self._names.add(name)
        return name

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def extension(self) -> type[SchemaExtension]:
        """A schema extension class that records each operation here."""
        metrics = self

        class OperationMetrics(SchemaExtension):
            def on_operation(self) -> Iterator[None]:
                started = time.perf_counter()
                try:
                    yield
                except Handoff:
                    # A shared subscription leaving Strawberry's stream: it started fine.
                    metrics.record(self.execution_context, time.perf_counter() - started)
                    raise
                metrics.record(self.execution_context, time.perf_counter() - started)

        return OperationMetrics

    def record(self, context: Any, seconds: float) -> None:
        try:
            kind = context.operation_type.value
        except RuntimeError:  # the document did not parse or names no operation
            kind = "unknown"
        errors = (context.result.errors if context.result else None) or (
            context.pre_execution_errors or []
        )
        codes = [(e.extensions or {}).get("code", "error") for e in errors]
        self.count(kind, context.operation_name, codes[0] if codes else None, seconds)

    def planned(self, name: str | None, code: str | None, seconds: float) -> None:
        """Record a query answered by its plan (schema/plans.py), outside the extensions."""
        self.count("query", name, code, seconds)

    def count(self, kind: str, name: str | None, code: str | None, seconds: float) -> None:
        labels = (kind, self.operation_label(name), code or "ok")
        # prometheus_client's labels() checks and joins its values on every call (2% of a
        # lookup by id's CPU): each labelled child is looked up once. Bounded as the labels are.
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = self.operations.labels(*labels)
        counter.inc()
        if kind in ("query", "mutation"):
            histogram = self._histograms.get(kind)
            if histogram is None:
                histogram = self._histograms[kind] = self.latency.labels(kind)
            histogram.observe(seconds)


class _RuntimeCollector(Collector):
    """Gauges and counters read from the runtime at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        runtime = self.runtime
        yield _gauge("workflow_runs_websockets", "Open WebSocket connections.", runtime.sockets)
        yield _counter(
            "workflow_runs_db_queries",
            "Statements the pool has sent to PostgreSQL.",
            runtime.queries,
        )
        plans = runtime.schema.plans
        if plans is not None:
            yield _counter(
                "workflow_runs_graphql_planned",
                "Queries answered by their plan, without graphql-core's executor.",
                plans.answered,
            )
            yield _counter(
                "workflow_runs_graphql_plan_fallbacks",
                "Planned queries that failed on the way and were run again by the generic path.",
                plans.declined,
            )
        pool = runtime.pool
        if pool is not None:
            yield _gauge("workflow_runs_db_pool_size", "Connections in the pool.", pool.get_size())
            yield _gauge(
                "workflow_runs_db_pool_idle", "Idle connections in the pool.", pool.get_idle_size()
            )
            yield _gauge(
                "workflow_runs_db_pool_max", "The pool's maximum size.", pool.get_max_size()
            )
        fanout = runtime.fanout
        if fanout is not None:
            listener = fanout.listener
            yield _gauge(
                "workflow_runs_subscriptions", "Live subscriptions.", fanout.subscriber_count
            )
            yield _counter(
                "workflow_runs_events_dispatched",
                "Events offered to this process's subscribers.",
                fanout.events_dispatched,
            )
            yield _gauge(
                "workflow_runs_event_fanout_lag_seconds",
                "From commit to fan-out, for the last batch of events.",
                fanout.last_lag_s,
            )
            yield _gauge(
                "workflow_runs_listener_connected",
                "1 while the LISTEN connection is up.",
                1 if listener.connected.is_set() else 0,
            )
            yield _counter(
                "workflow_runs_listener_reconnects",
                "Times the LISTEN connection was re-established.",
                listener.reconnects,
            )
            yield _counter(
                "workflow_runs_listener_notifications",
                "Event hints received.",
                listener.notifications,
            )
        router = runtime.router
        if router is not None:
            healthy = GaugeMetricFamily(
                "workflow_runs_replica_healthy",
                "1 while a replica serves reads.",
                labels=["replica"],
            )
            lag = GaugeMetricFamily(
                "workflow_runs_replica_lag_milliseconds",
                "Replay lag of a replica.",
                labels=["replica"],
            )
            reads = CounterMetricFamily(
                "workflow_runs_reads", "Units of read work by where they ran.", labels=["server"]
            )
            reads.add_metric(["primary"], router.primary_reads)
            for index, replica in enumerate(router.replicas):
                label = f"replica-{index}"
                healthy.add_metric([label], 1 if replica.healthy else 0)
                lag.add_metric([label], replica.lag_ms)
                reads.add_metric([label], replica.reads)
            yield healthy
            yield lag
            yield reads
        live = runtime.live
        if live is not None:
            yield _counter(
                "workflow_runs_subscription_executions",
                "Shared executions of subscription payloads (one per event and query shape).",
                live.executions,
            )


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)
