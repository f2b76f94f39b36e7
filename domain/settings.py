"""The one reader of the number settings in the environment (seconds, counts).

Every SEGMENTA_ number setting is read by `number_setting`, so they all treat text the same
way: surrounding spaces are ignored, empty or unset means the default, NaN and infinities are
refused, and a bad value is a `SettingError` naming the setting and the range it accepts.
A leaf module (standard library and domain.errors only): storage/ and schema/ read their
settings through it too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Literal, overload

from segmenta.domain.errors import UserError

# A bad value is quoted in the message; a pasted blob must not flood a start-up error.
_QUOTED_LENGTH = 40


class SettingError(UserError):
    """A setting in the environment is not understood; `field` is the setting's name."""

    def __init__(self, name: str, accepted: str, raw: str) -> None:
        super().__init__(f"{name} must be {accepted}, not {_quoted(raw)}", field=name, code="bad_setting")


def _quoted(raw: str) -> str:
    """`raw`'s repr, cut to at most _QUOTED_LENGTH characters (escapes count: a control character is 4)."""
    if len(repr(raw)) <= _QUOTED_LENGTH:
        return repr(raw)
    cut = raw[:_QUOTED_LENGTH]
    while len(repr(cut)) > _QUOTED_LENGTH - 1:
        cut = cut[:-1]
    return repr(cut) + "…"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def accepted_values(
    *,
    minimum: float,
    maximum: float | None = None,
    whole: bool = False,
    minimum_exclusive: bool = False,
    off: bool = False,
    unit: str | None = None,
) -> str:
    """What a setting accepts, in words ("a number of seconds ≥ 0 or off")."""
    kind = "a whole number" if whole else "a number"
    unit = unit if unit is not None else ("" if whole else "seconds")
    if unit:
        kind += f" of {unit}"
    if maximum is None:
        bounds = f"{'>' if minimum_exclusive else '≥'} {_number(minimum)}"
    elif minimum_exclusive:
        bounds = f"> {_number(minimum)} and ≤ {_number(maximum)}"
    else:
        bounds = f"from {_number(minimum)} to {_number(maximum)}"
    return f"{kind} {bounds}" + (" or off" if off else "")


# The overloads only narrow the return type for type checkers: a whole number with an int default
# is an int; with a number default and without `off` the result is never None.
@overload
def number_setting(
    name: str,
    default: int,
    *,
    minimum: float,
    maximum: float | None = ...,
    whole: Literal[True],
    minimum_exclusive: bool = ...,
    off: Literal[False] = ...,
    unit: str | None = ...,
    environ: Mapping[str, str] | None = ...,
) -> int: ...
@overload
def number_setting(
    name: str,
    default: None,
    *,
    minimum: float,
    maximum: float | None = ...,
    whole: Literal[True],
    minimum_exclusive: bool = ...,
    off: bool = ...,
    unit: str | None = ...,
    environ: Mapping[str, str] | None = ...,
) -> int | None: ...
@overload
def number_setting(
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float | None = ...,
    whole: bool = ...,
    minimum_exclusive: bool = ...,
    off: Literal[False] = ...,
    unit: str | None = ...,
    environ: Mapping[str, str] | None = ...,
) -> float: ...
@overload
def number_setting(
    name: str,
    default: float | None,
    *,
    minimum: float,
    maximum: float | None = ...,
    whole: bool = ...,
    minimum_exclusive: bool = ...,
    off: bool = ...,
    unit: str | None = ...,
    environ: Mapping[str, str] | None = ...,
) -> float | int | None: ...
def number_setting(
    name: str,
    default: float | None,
    *,
    minimum: float,
    maximum: float | None = None,
    whole: bool = False,
    minimum_exclusive: bool = False,
    off: bool = False,
    unit: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> float | int | None:
    """The setting `name` from `environ` (default: the process environment).

    Unset or blank: `default`.  `whole` reads an int (``int()``'s syntax), otherwise a finite
    float (``float()``'s syntax).  It must be ≥ `minimum` (> with `minimum_exclusive`) and
    ≤ `maximum` when given.  With `off`, ``off`` in any case and 0 both mean "disabled" and
    give None.  `unit` names what is counted in the message (fractional numbers default to
    seconds).  Anything else raises `SettingError`.
    """
    raw = (environ if environ is not None else os.environ).get(name, "").strip()
    if not raw:
        return default
    if off and raw.lower() == "off":
        return None
    value: float | int | None
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    # Only a float can be NaN or infinite; a huge int would overflow math.isfinite.
    if (
        value is None
        or (isinstance(value, float) and not math.isfinite(value))
        or value < minimum
        or (minimum_exclusive and value == minimum)
        or (maximum is not None and value > maximum)
    ):
        accepted = accepted_values(
            minimum=minimum, maximum=maximum, whole=whole, minimum_exclusive=minimum_exclusive, off=off, unit=unit
        )
        raise SettingError(name, accepted, raw)
    if off and value == 0:
        return None
    return value
