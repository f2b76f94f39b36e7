"""Documents kept per process: parsed-and-validated documents by their text, and automatic
persisted queries (docs/graphql.md, "Caches and persisted queries").

- `CachedDocuments`: the first request with a document text parses and validates it; a later
  request with the same text (and the same validation rules) takes the stored DocumentNode and
  skips both.  Only documents that passed validation are stored, so a stored one never carries
  errors to hand out again.  What depends on the request still runs on every request: the
  authentication and role checks (schema/permissions.py), the size checks before parsing, the
  depth/alias/cost/duplicate limits (schema/limits.py measures the operation with this request's
  variables) and the text-argument check.  Nothing mutates a DocumentNode after parsing (graphql-core's
  execution and every extension here only read it), so one object serves concurrent requests.
- `PersistedQueries`: Apollo's automatic persisted queries (`extensions.persistedQuery`,
  `{"version": 1, "sha256Hash": "<hex>"}`).  A hash alone runs the document stored under it or
  answers PERSISTED_QUERY_NOT_FOUND (the client then retries with the text); a hash with the text
  checks that the text's SHA-256 is that hash (else PERSISTED_QUERY_HASH_MISMATCH), runs it and,
  once it has passed validation, stores it.  It runs after authentication: an anonymous caller
  learns nothing about which hashes are stored.

Both stores are bounded LRUs (entries and total text), per process: a client that sends many
distinct documents only evicts, and a restart or another worker simply misses once.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from segmenta.schema.limits import request_limits

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"

# Bounds of the stores.  A parsed document takes about 50 to 120 bytes of memory per byte of its text,
# so the documents' text budget bounds their memory to some tens of megabytes.
MAX_DOCUMENTS = 512
MAX_DOCUMENT_TEXT = 512 * 1024
MAX_PERSISTED = 1024
MAX_PERSISTED_TEXT = 4 * 1024 * 1024

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A least-recently-used map holding at most `max_entries` values whose weights sum to at most
    `max_weight`; a value heavier than the whole budget is not stored."""

    def __init__(self, max_entries: int, max_weight: int) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.weight = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, weight: int) -> None:
        if weight > self.max_weight:
            return
        previous = self._items.pop(key, None)
        if previous is not None:
            self.weight -= previous[1]
        self._items[key] = (value, weight)
        self.weight += weight
        while len(self._items) > self.max_entries or self.weight > self.max_weight:
            _, (_, dropped) = self._items.popitem(last=False)
            self.weight -= dropped

    def clear(self) -> None:
        self._items.clear()
        self.weight = 0


# Query text and validation rules -> the document, parsed and found valid.
documents: BoundedLRU[tuple[str, tuple[type, ...]], DocumentNode] = BoundedLRU(MAX_DOCUMENTS, MAX_DOCUMENT_TEXT)
# SHA-256 (lower-case hex) -> query text.
persisted: BoundedLRU[str, str] = BoundedLRU(MAX_PERSISTED, MAX_PERSISTED_TEXT)


class CachedDocuments(SchemaExtension):
    """Takes a known document from `documents` instead of parsing and validating its text again."""

    def __init__(self) -> None:
        super().__init__()
        self.key: tuple[str, tuple[type, ...]] | None = None
        self.hit = False

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            self.key = (context.query, tuple(context.validation_rules))
            found = documents.get(self.key)
            if found is not None:
                context.graphql_document = found
                self.hit = True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.hit:
            # Stored only after it passed these same rules: graphql-core's validation is skipped.
            context.pre_execution_errors = []
        yield
        if not self.hit and self.key is not None and context.graphql_document is not None:
            if context.pre_execution_errors == []:
                documents.put(self.key, context.graphql_document, len(self.key[0]))


class PersistedQueries(SchemaExtension):
    """Apollo's automatic persisted queries (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.to_store: tuple[str, str] | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        extensions = context.operation_extensions or {}
        if "persistedQuery" in extensions:
            context.query, self.to_store = resolve(extensions["persistedQuery"], context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if self.to_store is not None and context.pre_execution_errors == []:
            digest, text = self.to_store
            persisted.put(digest, text, len(text))


def resolve(extension: Any, query: str | None) -> tuple[str, tuple[str, str] | None]:
    """The document to run for a request carrying `extensions.persistedQuery` = `extension` and
    `query`, and the (hash, text) to store once it is found valid (None: nothing to store); or a
    GraphQLError with a PERSISTED_QUERY_ code."""
    if not isinstance(extension, dict):
        raise _invalid("`extensions.persistedQuery` must be an object such as {\"version\": 1, \"sha256Hash\": \"…\"}")
    version = extension.get("version")
    if type(version) is not int or version != 1:
        raise _invalid(f"persisted query version {_shown(version)} is not supported; use version 1")
    digest = extension.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise _invalid(f"`sha256Hash` must be 64 hexadecimal digits (SHA-256 of the query), not {_shown(digest)}")
    digest = digest.lower()
    if not query:
        stored = persisted.get(digest)
        if stored is None:
            raise GraphQLError("PersistedQueryNotFound", extensions={"code": PERSISTED_QUERY_NOT_FOUND})
        return stored, None
    encoded = query.encode("utf-8")
    if hashlib.sha256(encoded).hexdigest() != digest:
        raise GraphQLError(
            "the query's SHA-256 does not match `extensions.persistedQuery.sha256Hash`: hash the exact query text "
            "(UTF-8) and send it as lower-case hexadecimal",
            extensions={"code": PERSISTED_QUERY_HASH_MISMATCH},
        )
    # A document over the size limit is refused next (schema/limits.py, MaxQueryBytes): never stored.
    return query, ((digest, query) if len(encoded) <= request_limits().max_query_bytes else None)


def _invalid(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": PERSISTED_QUERY_INVALID})


def _shown(value: Any) -> str:
    """A client's value in a message: quoted, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"
