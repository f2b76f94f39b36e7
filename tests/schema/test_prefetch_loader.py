"""PrefetchLoader (schema/loaders.py): a page fills it in one batch call; later reads take the value
without another call, and clearing forgets it, as for any DataLoader."""

from __future__ import annotations

from segmenta.schema.loaders import PrefetchLoader, loaded_or_later


def _counting_loader() -> tuple[PrefetchLoader[int, str], list[list[int]]]:
    calls: list[list[int]] = []

    async def load(keys: list[int]) -> list[str]:
        calls.append(list(keys))
        return [f"v{key}" if key > 0 else ValueError(f"no {key}") for key in keys]  # type: ignore[misc]

    return PrefetchLoader(load), calls


async def test_one_call_fills_a_page_and_reads_need_no_more() -> None:
    loader, calls = _counting_loader()
    await loader.fill([3, 1, 3, 2])
    assert calls == [[3, 1, 2]]  # each key once, in order
    assert loaded_or_later(loader, 1, str.upper) == "V1"  # a value, not an awaitable
    assert await loader.load(2) == "v2"
    await loader.fill([1, 2, 4])
    assert calls == [[3, 1, 2], [4]]  # only what was missing
    assert calls[-1] == [4] and await loader.load_many([4, 3]) == ["v4", "v3"]
    assert len(calls) == 2


async def test_cleared_values_are_loaded_again() -> None:
    loader, calls = _counting_loader()
    await loader.fill([1, 2])
    loader.clear(1)
    assert await loader.load(1) == "v1" and calls[-1] == [1]
    loader.clear_all()
    await loader.fill([2])
    assert calls[-1] == [2]


async def test_an_error_for_a_key_reaches_its_reader() -> None:
    loader, _ = _counting_loader()
    await loader.fill([1, -1])
    assert -1 not in loader.ready
    try:
        await loader.load(-1)
    except ValueError as error:
        assert "no -1" in str(error)
    else:
        raise AssertionError("the error was lost")


async def test_a_ready_value_is_converted_once_per_converter_until_cleared() -> None:
    loader, _ = _counting_loader()
    await loader.fill([1, 2])
    conversions: list[str] = []

    def upper(value: str) -> str:
        conversions.append(value)
        return value.upper()

    # Customers sharing a team: its GraphQL object is made once and shared.
    assert [loaded_or_later(loader, 1, upper) for _ in range(3)] == ["V1", "V1", "V1"]
    assert loaded_or_later(loader, 1, str.title) == "V1" and loaded_or_later(loader, 2, upper) == "V2"
    assert conversions == ["v1", "v2"]
    loader.clear(1)
    await loader.fill([1])
    assert loaded_or_later(loader, 1, upper) == "V1" and conversions == ["v1", "v2", "v1"]
