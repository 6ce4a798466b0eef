"""The served schema keeps every name, type and nullability of the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes

from schema import build_schema as build_served_schema

HERE = Path(__file__).parent
# The contract lives in shared/, beside the checkout; a copy is kept here so that a checkout
# alone can still be tested. When both exist, both are checked.
CONTRACTS = [
    path
    for path in (
        HERE.parent.parent / "shared" / "contract" / "schema.graphql",
        HERE / "contract" / "schema.graphql",
    )
    if path.exists()
]


@pytest.mark.parametrize("contract_path", CONTRACTS, ids=lambda p: str(p.parent.parent.name))
def test_the_served_schema_has_no_breaking_change_against_the_contract(
    contract_path: Path,
) -> None:
    contract = build_schema(contract_path.read_text())
    served = build_served_schema()._schema
    assert find_breaking_changes(contract, served) == []


def test_the_vendored_contract_matches_shared_when_both_exist() -> None:
    shared = HERE.parent.parent / "shared" / "contract" / "schema.graphql"
    if not shared.exists():
        pytest.skip("no shared/ beside this checkout")
    vendored = (HERE / "contract" / "schema.graphql").read_text()
    served = build_served_schema()._schema
    # shared/ may be newer than the copy; the served schema must satisfy both.
    assert find_breaking_changes(build_schema(shared.read_text()), served) == []
    assert find_breaking_changes(build_schema(vendored), served) == []
