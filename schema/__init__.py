"""The GraphQL surface: types, resolvers and the schema they make. Imports db/, never server/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.str_converters import to_camel_case

from db.replicas import format_lsn
from schema.budget import BudgetedValidation, CachedParse, TokenLimit
from schema.compiled import CompiledExecutor
from schema.context import Context, Limits
from schema.deadline import ExecutionDeadline
from schema.errors import QueryTooComplex, shape_error
from schema.mutations import Mutation
from schema.plans import Declined, Plan, Plans
from schema.queries import Query
from schema.scalars import SCALARS
from schema.subscriptions import Subscription


class CommitPosition(SchemaExtension):
    """Adds `extensions.lsn`, the WAL position of the request's last commit, when known."""

    def get_results(self) -> dict[str, Any]:
        lsn = getattr(self.execution_context.context, "commit_lsn", None)
        return {"lsn": format_lsn(lsn)} if lsn is not None else {}


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _without_suggestions(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    # A new error: validation errors may be cached and shared by later requests.
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


# Told of each operation a plan answered: (operation name, error code or None, seconds).
PlannedObserver = Callable[[str | None, str | None, float], None]


class RunsSchema(strawberry.Schema):
    """Strawberry's schema, with our error codes and masking, and planned operations."""

    # Strawberry's disable_field_suggestions covers fields only; this covers arguments, types,
    # input fields and enum values too, which would otherwise spell out a private schema.
    hide_suggestions = False
    plans: Plans | None = None
    execution_timeout_s: float = 10.0
    observe_planned: PlannedObserver | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Shape each error in place (Strawberry's default only logs them).

        This hook sees every error exactly once: parse and validation failures (including
        those raised from extension hooks), execution errors, and each streamed result's.
        """
        context = execution_context.context if execution_context is not None else None
        self._shape(errors, getattr(context, "request_id", None))

    def _shape(self, errors: list[GraphQLError], request_id: str | None) -> None:
        errors[:] = [shape_error(error, request_id) for error in errors]
        if self.hide_suggestions:
            errors[:] = [_without_suggestions(error) for error in errors]

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Strawberry's execute, or the operation's plan when it has one (schema/plans.py)."""
        plans = self.plans
        if (
            plans is None
            or query is None
            or root_value is not None
            or not isinstance(context_value, Context)
            or (
                allowed_operation_types is not None
                and OperationType.QUERY not in allowed_operation_types
            )
        ):
            plans = None
        elif (plan := plans.get(query, operation_name)) is not None:
            result = await self._execute_plan(plans, plan, context_value, variable_values)
            if result is not None:
                return result
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        if plans is not None and query is not None and not result.errors:
            plans.learn(query, operation_name)
        return result

    async def _execute_plan(
        self, plans: Plans, plan: Plan, context: Context, variables: dict[str, Any] | None
    ) -> ExecutionResult | None:
        started = time.perf_counter()
        code = None
        try:
            data = await plans.execute(plan, context, variables, self.execution_timeout_s)
        except Declined:
            return None
        except QueryTooComplex as exc:
            # What the generic path answers when ExecutionDeadline cuts an operation off.
            errors = [GraphQLError(str(exc), original_error=exc)]
            self._shape(errors, context.request_id)
            code = (errors[0].extensions or {}).get("code")
            result: ExecutionResult = PreExecutionError(data=None, errors=errors)
        else:
            result = ExecutionResult(data=data, errors=None)
        if self.observe_planned is not None:
            name = plan.operation.name.value if plan.operation.name else None
            self.observe_planned(name, code, time.perf_counter() - started)
        return result


def build_schema(
    limits: Limits | None = None,
    *,
    introspection: bool = True,
    extensions: Sequence[type[SchemaExtension]] = (),
) -> RunsSchema:
    """The schema, with the query limits applied.

    Without introspection (for a production API whose schema is not public), `__schema` and
    `__type` are refused and error messages suggest no field names. Queries the generic path
    has answered are planned (schema/plans.py).
    """
    limits = limits or Limits()
    rules: list[type[ASTValidationRule]] = [
        depth_validator(limits.max_depth, should_ignore=None),
        aliases_validator(limits.max_aliases),
    ]
    every: list[Any] = [
        *extensions,
        CommitPosition,
        # Tokens bound what the depth limiter cannot see: it skips `__` fields. Before the
        # parser cache, whose key includes the parse options.
        lambda: TokenLimit(limits.max_tokens),
        lambda: CachedParse(maxsize=256),
        # Replaces Strawberry's ValidationCache, which would validate before the budget. The
        # same rule classes for every request: they are part of the validation cache's key.
        lambda: BudgetedValidation(limits.max_fields, limits.max_field_repeats, rules),
        lambda: ExecutionDeadline(limits.execution_timeout_ms / 1000),
    ]
    if not introspection:
        every.append(DisableIntrospection)
    schema = RunsSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=every,
        execution_context_class=CompiledExecutor,
        config=StrawberryConfig(scalar_map=SCALARS, disable_field_suggestions=not introspection),
    )
    schema.hide_suggestions = not introspection
    schema.execution_timeout_s = limits.execution_timeout_ms / 1000
    query_type = schema.get_type_by_name("Query")
    assert isinstance(query_type, StrawberryObjectDefinition)
    root_fields = query_type.fields
    schema.plans = Plans(
        schema._schema,
        {f.graphql_name or to_camel_case(f.python_name): f.arguments for f in root_fields},
        schema.config,
        schema.schema_converter.scalar_registry,
        max_tokens=limits.max_tokens,
    )
    return schema


__all__ = ["Limits", "RunsSchema", "SchemaExtension", "build_schema"]
