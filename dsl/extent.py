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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from segmenta.dsl.ast import (
    CONNECTIVE_TYPES,
    LEAF_TYPES,
    PREDICATE_TYPES,
    BoolConst,
    Condition,
    NodeTable,
    Predicate,
    SegmentRef,
    operands,
)
from segmenta.dsl.fields import lookup

MAX_DEPTH = 24
"""Levels of `and`, `or`, `not` and segment references, segments written out: 8 levels
below the shallowest shape SQLite refuses, and under 200 of Python's 1,000 frames."""

MAX_COPIED = 5_000
"""Parts of segments copied into the conditions of one file, a predicate that the SQL reads
with a subquery (set fields, custom attributes) counting as SUBQUERY_WEIGHT.  PostgreSQL
plans about 1.5 ms per copied subquery: 1,000 of them take a second and a half."""

SUBQUERY_WEIGHT = 5
_CAP = MAX_COPIED + 1  # only "over the limit" matters: sizes stay small integers
_CONNECTIVES = frozenset(CONNECTIVE_TYPES)


@dataclass(frozen=True)
class Extent:
    depth: int
    size: int  # weighted, with the segments it uses written out
    copied: int = 0  # the part of `size` that segment references bring in
    deepest_ref: SegmentRef | None = None  # the outermost segment reference on a deepest path


def _weight(predicate: Predicate) -> int:
    spec = lookup(predicate.subject.name)
    return SUBQUERY_WEIGHT if spec is None or spec.kind == "set" else 1


_Measured = tuple[int, int, int, SegmentRef | None]  # depth, size, copied, deepest_ref


def _predicate_extent(node: Predicate, segments: Mapping[str, Extent]) -> _Measured:
    return (1, _weight(node), 0, None)


def _segment_ref_extent(node: SegmentRef, segments: Mapping[str, Extent]) -> _Measured:
    used = segments.get(node.name)
    return (1, 1, 0, node) if used is None else (1 + used.depth, used.size, used.size, node)


def _bool_const_extent(node: BoolConst, segments: Mapping[str, Extent]) -> _Measured:
    return (1, 1, 0, None)


_LEAF_EXTENTS: NodeTable[Callable[[Any, Mapping[str, Extent]], _Measured]] = NodeTable(
    "extent",
    {**dict.fromkeys(PREDICATE_TYPES, _predicate_extent), SegmentRef: _segment_ref_extent, BoolConst: _bool_const_extent},
    LEAF_TYPES,
)


def measure(condition: Condition, segments: Mapping[str, Extent]) -> Extent:
    """The extent of `condition`; a reference to a segment not in `segments` counts as one node."""
    # (depth, size, copied, deepest_ref) per node id: tuples, as this runs on every checked condition.
    measured: dict[int, _Measured] = {}
    stack: list[tuple[Condition, bool]] = [(condition, False)]
    while stack:
        node, children_done = stack.pop()
        if type(node) in _CONNECTIVES:
            children = operands(node)
            if not children_done:
                stack.append((node, True))
                stack.extend((child, False) for child in children)
                continue
            parts = [measured[id(child)] for child in children]
            deepest = max(parts, key=lambda part: part[0], default=(0, 0, 0, None))
            measured[id(node)] = (
                1 + deepest[0],
                min(1 + sum(part[1] for part in parts), _CAP),
                min(sum(part[2] for part in parts), _CAP),
                deepest[3],
            )
        else:
            measured[id(node)] = _LEAF_EXTENTS[type(node)](node, segments)
    return Extent(*measured[id(condition)])
