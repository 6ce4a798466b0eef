"""The GraphQL surface: types, resolvers and the schema they make. Imports db/, never server/."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from db.replicas import format_lsn
from schema.budget import BudgetedValidation, CachedParse, TokenLimit
from schema.compiled import CompiledExecutor
from schema.context import Limits
from schema.deadline import ExecutionDeadline
from schema.errors import shape_error
from schema.mutations import Mutation
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


class RunsSchema(strawberry.Schema):
    """Strawberry's schema, with our error codes and masking."""

    # Strawberry's disable_field_suggestions covers fields only; this covers arguments, types,
    # input fields and enum values too, which would otherwise spell out a private schema.
    hide_suggestions = False

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Shape each error in place (Strawberry's default only logs them).

        This hook sees every error exactly once: parse and validation failures (including
        those raised from extension hooks), execution errors, and each streamed result's.
        """
        context = execution_context.context if execution_context is not None else None
        request_id = getattr(context, "request_id", None)
        errors[:] = [shape_error(error, request_id) for error in errors]
        if self.hide_suggestions:
            errors[:] = [_without_suggestions(error) for error in errors]


def build_schema(
    limits: Limits | None = None,
    *,
    introspection: bool = True,
    extensions: Sequence[type[SchemaExtension]] = (),
) -> RunsSchema:
    """The schema, with the query limits applied.

    Without introspection (for a production API whose schema is not public), `__schema` and
    `__type` are refused and error messages suggest no field names.
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
    return schema


__all__ = ["Limits", "RunsSchema", "SchemaExtension", "build_schema"]
