"""The ruleset real-time routing decides with: a saved ruleset version compiled once per process.

The compiled form is cached per (ruleset id, version, source), so a ruleset is compiled once per
process, not per event.  The last one looked up is also this process's guess of the active
ruleset, which creating a customer decides with before the statement that checks it
(domain/routing/realtime_create.py).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl import ast
from segmenta.dsl.fields import ATTRIBUTE_PREFIX
from segmenta.dsl.ruleset import Ruleset, compile_rules
from segmenta.storage.models import RulesetVersion

# Compiled rulesets kept per process; a server only ever uses the active one and
# maybe a few being explained, so a handful is plenty.
CACHE_SIZE = 8


def _condition_fields(condition: ast.Condition | None, into: set[str]) -> None:
    if condition is None or isinstance(condition, (ast.BoolConst, ast.SegmentRef)):
        return
    if isinstance(condition, ast.Not):
        _condition_fields(condition.operand, into)
    elif isinstance(condition, (ast.And, ast.Or)):
        for operand in condition.operands:
            _condition_fields(operand, into)
    else:
        into.add(condition.subject.name)


def fields_read(rule_file: ast.RuleFile) -> frozenset[str]:
    """Every field name the rule file's conditions read."""
    names: set[str] = set()
    for statement in rule_file.statements:
        _condition_fields(statement.condition, names)
    return frozenset(names)


@dataclass(frozen=True)
class CompiledRulesetVersion:
    """A saved ruleset compiled for per-customer evaluation, with what it reads and writes."""

    ruleset_id: int
    version: int
    rules: Ruleset
    reads_tags: bool
    reads_attributes: bool
    reads_categories: bool

    @property
    def segment_keys(self) -> tuple[str, ...]:
        return self.rules.segment_keys

    @property
    def tag_names(self) -> tuple[str, ...]:
        return self.rules.tag_names


_cache: OrderedDict[tuple[int, int, str], CompiledRulesetVersion] = OrderedDict()
# The ruleset this process looked up last: what a new customer's routing is decided
# with *before* the statement that reads the active ruleset (domain/routing/realtime_create.py),
# which then checks the guess.  Only ever a guess: never used unchecked.
_last_used: CompiledRulesetVersion | None = None


def last_used_rules() -> CompiledRulesetVersion | None:
    """The compiled ruleset of the last `compiled_rules` call in this process (a guess of the active one)."""
    return _last_used


def saw_no_active_ruleset() -> None:
    """No ruleset is active now: guess none until one is looked up again."""
    global _last_used
    _last_used = None


def compiled_rules(ruleset_id: int, version: int, source: str) -> CompiledRulesetVersion:
    """The compiled form of a saved ruleset; compiled on first use, then cached.

    The source is part of the key: ids restart in a recreated database, and a
    process may serve several databases (tests do).  Raises dsl.RuleError when the
    source has errors (an active ruleset never has).
    """
    global _last_used
    key = (ruleset_id, version, source)
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        _last_used = found
        return found
    rules = compile_rules(source)
    names = fields_read(rules.rule_file)
    compiled = CompiledRulesetVersion(
        ruleset_id=ruleset_id,
        version=version,
        rules=rules,
        reads_tags="tags" in names,
        reads_attributes=any(name.startswith(ATTRIBUTE_PREFIX) for name in names),
        reads_categories="product_categories" in names,
    )
    _cache[key] = compiled
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    _last_used = compiled
    return compiled


_ACTIVE_RULESET = (
    select(RulesetVersion.id, RulesetVersion.version, RulesetVersion.source)
    .where(RulesetVersion.status == "active")
    .order_by(RulesetVersion.id)
    .limit(1)
)


async def active_rules(session: AsyncSession) -> CompiledRulesetVersion | None:
    """The active ruleset, compiled (cached); None when no ruleset is active."""
    row = (await session.execute(_ACTIVE_RULESET)).first()
    if row is None:
        return None
    return compiled_rules(row.id, row.version, row.source)
