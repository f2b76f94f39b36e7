"""How deep and how large a condition is once the segments it uses are written out.

The SQL compiler copies a segment's condition into every condition that uses it.
The SQL of a deep condition nests parentheses, and SQLite's parser has a fixed
stack: `a or b and (c or d and (...))` overflows it ("parser stack overflow") at
about 32 levels once `otherwise` and tags add theirs.  SQLAlchemy compiles the
expression recursively (about seven interpreter frames per level), and the
explainer and the analysis recurse over the same tree.  A chain of segments built
on one another is as deep as all of them together, and a segment used twice by the
next one doubles its size at every step (`segment s2 = s1 or s1`, `segment s3 =
s2 or s2`, ...): a dozen short lines become thousands of subqueries.  The checker measures both, without recursion, and refuses what
would overflow a stack or exhaust the memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dsl.ast import And, BoolConst, Condition, Not, Or, SegmentRef
from dsl.fields import lookup

MAX_DEPTH = 24
"""Levels of `and`, `or`, `not` and segment references, segments written out: 8 levels
below the shallowest shape SQLite refuses, and under 200 of Python's 1,000 frames."""

MAX_COPIED = 5_000
"""Parts of segments copied into the conditions of one file, a predicate that the SQL reads
with a subquery (set fields, custom attributes) counting as SUBQUERY_WEIGHT.  PostgreSQL
plans about 1.5 ms per copied subquery: 1,000 of them take a second and a half."""

SUBQUERY_WEIGHT = 5
_CAP = MAX_COPIED + 1  # only "over the limit" matters: sizes stay small integers


@dataclass(frozen=True)
class Extent:
    depth: int
    size: int  # weighted, with the segments it uses written out
    copied: int = 0  # the part of `size` that segment references bring in
    deepest_ref: SegmentRef | None = None  # the outermost segment reference on a deepest path


def _weight(predicate: Condition) -> int:
    name = predicate.field.name  # type: ignore[union-attr]
    spec = lookup(name)
    return SUBQUERY_WEIGHT if spec is None or spec.kind == "set" else 1


def measure(condition: Condition, segments: Mapping[str, Extent]) -> Extent:
    """The extent of `condition`; a reference to a segment not in `segments` counts as one node."""
    measured: dict[int, Extent] = {}
    stack: list[tuple[Condition, bool]] = [(condition, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, SegmentRef):
            used = segments.get(node.name)
            if used is None:
                measured[id(node)] = Extent(1, 1, 0, node)
            else:
                measured[id(node)] = Extent(1 + used.depth, used.size, used.size, node)
            continue
        if isinstance(node, Not):
            children: tuple[Condition, ...] = (node.operand,)
        elif isinstance(node, (And, Or)):
            children = node.operands
        elif isinstance(node, BoolConst):
            measured[id(node)] = Extent(1, 1)
            continue
        else:
            measured[id(node)] = Extent(1, _weight(node))
            continue
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        extents = [measured[id(child)] for child in children]
        deepest = max(extents, key=lambda extent: extent.depth, default=Extent(0, 0))
        measured[id(node)] = Extent(
            1 + deepest.depth,
            min(1 + sum(extent.size for extent in extents), _CAP),
            min(sum(extent.copied for extent in extents), _CAP),
            deepest.deepest_ref,
        )
    return measured[id(condition)]
