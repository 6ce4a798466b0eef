"""Refuses documents that cost far more to validate than they can be worth.

graphql-core's check that fields can be merged compares every pair of selections with the same
response key: 300 copies of one field took 450 ms to validate here, inside the token limit. No
client needs a field repeated more than a few times in one selection set, nor hundreds of
fields in one document, directly or through fragments. This counts both, with each fragment
measured once, before validation runs.
"""

from __future__ import annotations

import contextlib
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    validate,
)
from strawberry.extensions import ParserCache, SchemaExtension


class _Cost:
    """Sizes of a document with every fragment expanded, each fragment measured once.

    Counting the expansion, not the text, is what bounds the rules that walk it: a few hundred
    bytes of fragments spreading each other five times over expand to millions of fields, and
    graphql-core's and Strawberry's rules would walk every one of them.
    """

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.most_repeated = 0
        self._sizes: dict[str, int] = {}
        self._keys: dict[str, Counter[str]] = {}
        self._open: set[str] = set()

    def fields(self, selection_set: SelectionSetNode | None, merged: bool = True) -> int:
        """How many fields the selection set holds once expanded; checks repeats on the way.

        `merged` is False for the body of a fragment, whose keys its parent already counted.
        """
        if selection_set is None:
            return 0
        if merged:
            keys = self.keys(selection_set)
            if keys:
                self.most_repeated = max(self.most_repeated, max(keys.values()))
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + self.fields(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.fields(selection.selection_set, merged=False)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment_size(selection.name.value)
        return total

    def keys(self, selection_set: SelectionSetNode) -> Counter[str]:
        """Response keys of one merged selection set: its fields and its fragments' fields."""
        keys: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                keys[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                keys.update(self.keys(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                keys.update(self._fragment_keys(selection.name.value))
        return keys

    def _fragment_size(self, name: str) -> int:
        if name not in self._sizes:
            fragment = self.fragments.get(name)
            if fragment is None or name in self._open:
                return 0  # unknown or cyclic: validation refuses it
            self._open.add(name)
            self._sizes[name] = self.fields(fragment.selection_set, merged=False)
            self._open.discard(name)
        return self._sizes[name]

    def _fragment_keys(self, name: str) -> Counter[str]:
        if name not in self._keys:
            fragment = self.fragments.get(name)
            if fragment is None or name in self._open:
                return Counter()
            self._open.add(name)
            self._keys[name] = self.keys(fragment.selection_set)
            self._open.discard(name)
        return self._keys[name]


def over_budget(document: DocumentNode, max_fields: int, max_repeats: int) -> str | None:
    """Why the document is refused, or None."""
    cost = _Cost(document)
    fields = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            fields += cost.fields(definition.selection_set)
        elif isinstance(definition, FragmentDefinitionNode):
            # Unused fragments are validated too, so they count once each.
            cost.fields(definition.selection_set)
        if fields > max_fields:
            break
    if fields > max_fields:
        return f"The document selects over {max_fields} fields once its fragments are expanded."
    if cost.most_repeated > max_repeats:
        return f"A field is repeated more than {max_repeats} times in one selection set."
    return None


def _ambiguous(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the request leaves open which of several operations to run."""
    if operation_name is not None:
        return False
    operations = (d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return next(operations, None) is not None and next(operations, None) is not None


# Outcomes by query text: parsing is cached by text too, and hashing a document (graphql-core
# nodes hash their whole subtree) or walking it again cost more than a small query's resolver.
_OUTCOMES: OrderedDict[tuple[Any, ...], list[GraphQLError]] = OrderedDict()
_OUTCOMES_SIZE = 512


class TokenLimit(SchemaExtension):
    """Strawberry's MaxTokensLimiter, set when parsing rather than for the whole operation:
    a subscription's operation hooks stay open as long as it runs, one generator each."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield


class CachedParse(ParserCache):
    """Strawberry's ParserCache, except that a document that does not parse is left to
    Strawberry's own parse, inside its error handling: raised from the hook, the error escaped
    a subscription's stream (the socket got no 4400 and no reason)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


class BudgetedValidation(SchemaExtension):
    """Validation, cached, behind the budget: over-budget documents are never validated.

    `rules` are added to graphql-core's (Strawberry's AddValidationRules, without an operation
    hook that a subscription would keep open).
    """

    def __init__(
        self, max_fields: int, max_repeats: int, rules: Sequence[type[ASTValidationRule]] = ()
    ) -> None:
        self.max_fields = max_fields
        self.max_repeats = max_repeats
        self.rules = tuple(rules)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            operation_name = getattr(context, "_provided_operation_name", None)
            rules = tuple(context.validation_rules) + self.rules
            context.validation_rules = rules
            key = (
                id(context.schema),
                self.max_fields,
                self.max_repeats,
                rules,
                context.query,
                operation_name,
            )
            errors = _OUTCOMES.get(key) if context.query is not None else None
            if errors is None:
                errors = self._check(context.schema._schema, document, operation_name, rules)
                if context.query is not None:
                    _OUTCOMES[key] = errors
                    if len(_OUTCOMES) > _OUTCOMES_SIZE:
                        _OUTCOMES.popitem(last=False)
            else:
                _OUTCOMES.move_to_end(key)
            # Errors set here make Strawberry skip its own validation. A copy: the list is
            # shaped in place later, and the cached one serves the next request.
            context.pre_execution_errors = list(errors)
        yield

    def _check(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        rules: tuple[Any, ...],
    ) -> list[GraphQLError]:
        reason = over_budget(document, self.max_fields, self.max_repeats)
        if reason is not None:
            return [GraphQLError(reason, extensions={"code": "QUERY_TOO_COMPLEX"})]
        if _ambiguous(document, operation_name):
            # Strawberry's operation_name falls back to the first operation, so graphql-core
            # would never see the name missing and would run that one.
            return [
                GraphQLError(
                    "Must provide operation name if query contains multiple operations.",
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            ]
        return validate(schema, document, rules)
