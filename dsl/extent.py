"""How deep and how large a condition is once the segments it uses are written out.

The SQL compiler copies a segment's condition into every condition that uses it.
The SQL of a deep condition nests parentheses, and SQLite's parser has a fixed
stack: `a or b and (c or d and (...))` overflows it ("parser stack overflow") at
about 32 levels once `otherwise` and tags add theirs.  SQLAlchemy compiles the
expression recursively (about seven interpreter frames per level), and the
explainer and the analysis recurse over the same tree.  A chain of segments built
on one another is as deep as all of them together, and a segment used twice by the
next one doubles its size at every step (`segment s2 = s1 or s1`, `segment s3 =
s2 or s2`, ...).  The checker measures both, without recursion, and refuses what
would overflow a stack or exhaust the memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dsl.ast import And, Condition, Not, Or, SegmentRef

MAX_DEPTH = 24
"""Levels of `and`, `or`, `not` and segment references, segments written out: 8 levels
below the shallowest shape SQLite refuses, and under 200 of Python's 1,000 frames."""

MAX_EXPANDED_SIZE = 100_000
"""Nodes of all conditions of one file together, segments written out (about 2 MB of SQL)."""


@dataclass(frozen=True)
class Extent:
    depth: int
    size: int  # capped just above MAX_EXPANDED_SIZE: only "over the limit" matters
    deepest_ref: SegmentRef | None = None  # the outermost segment reference on a deepest path


LEAF = Extent(1, 1)


def measure(condition: Condition, segments: Mapping[str, Extent]) -> Extent:
    """The extent of `condition`; a reference to a segment not in `segments` counts as one node."""
    measured: dict[int, Extent] = {}
    stack: list[tuple[Condition, bool]] = [(condition, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, SegmentRef):
            used = segments.get(node.name, Extent(0, 0))
            measured[id(node)] = Extent(1 + used.depth, min(1 + used.size, MAX_EXPANDED_SIZE + 1), node)
            continue
        if isinstance(node, Not):
            children: tuple[Condition, ...] = (node.operand,)
        elif isinstance(node, (And, Or)):
            children = node.operands
        else:
            measured[id(node)] = LEAF
            continue
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        extents = [measured[id(child)] for child in children]
        deepest = max(extents, key=lambda extent: extent.depth, default=Extent(0, 0))
        size = min(1 + sum(extent.size for extent in extents), MAX_EXPANDED_SIZE + 1)
        measured[id(node)] = Extent(1 + deepest.depth, size, deepest.deepest_ref)
    return measured[id(condition)]
