"""One registry class for every named family: models, losses, activations, optimisers, datasets.

A :class:`Registry` maps user-typed names to registered entries (classes, factories or records) with one
normalisation rule for all families: case, surrounding spaces, ``-`` and ``_`` do not matter, so
``RotH``, ``roth`` and ``rot_h`` are the same model and ``fb15k_237`` is ``FB15k-237``. An unknown name
raises one error that lists the family's names and suggests the closest one. Each family keeps its entry
point (``hale_tf.models.get``, ``hale_tf.losses.get``, …); this module is what they share.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "normalize_name"]

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """The registry key of a user-typed name: lower case, without spaces, ``-`` or ``_``."""
    return "".join(ch for ch in str(name).strip().lower() if ch not in "-_ ")


class Registry(Generic[T]):
    """Named entries of one family (``family`` is the word used in messages: ``"model"``, ``"loss"``…).

    ``register(name)`` is a decorator (or ``register(name, entry)`` a call); ``aliases`` are further names
    for the same entry that :meth:`available` does not list. ``error`` is the exception class raised for
    unknown names (a ``ValueError`` subclass keeps ``except ValueError`` callers working); ``hint`` is
    appended to its message.
    """

    def __init__(
        self, family: str, *, error: type[Exception] = ValueError, hint: str = "", sort: bool = True
    ) -> None:
        self.family = family
        self._sort = sort
        self._error = error
        self._hint = hint
        self._entries: dict[str, tuple[str, T]] = {}  # key -> (canonical name, entry)
        self._aliases: dict[str, str] = {}  # alias key -> canonical key

    # -- registration ---------------------------------------------------------------------------------
    def register(self, name: str, entry: T | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
        """Register ``entry`` under ``name`` (and ``aliases``); without ``entry``, a decorator."""

        def add(item: T) -> T:
            for spelling in (name, *aliases):
                key = normalize_name(spelling)
                if key in self._entries or key in self._aliases:
                    raise ValueError(f"{self.family} name {spelling!r} is already registered")
            key = normalize_name(name)
            self._entries[key] = (name, item)
            for alias in aliases:
                self._aliases[normalize_name(alias)] = key
            return item

        return add(entry) if entry is not None else add

    # -- lookup -----------------------------------------------------------------------------------------
    def _key(self, name: str) -> str | None:
        key = normalize_name(name)
        if key in self._entries:
            return key
        return self._aliases.get(key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def __len__(self) -> int:
        return len(self._entries)

    def available(self) -> list[str]:
        """The canonical names (aliases are not listed), sorted case-insensitively or, with
        ``sort=False``, in registration order."""
        names = [spelled for spelled, _ in self._entries.values()]
        return sorted(names, key=str.lower) if self._sort else names

    def unknown(self, name: object) -> Exception:
        """The error for an unknown ``name``: the family's names and the closest match."""
        known = self.available()
        by_key = {normalize_name(n): n for n in known}
        close = difflib.get_close_matches(normalize_name(str(name)), list(by_key), n=1)
        guess = f" (did you mean {by_key[close[0]]!r}?)" if close else ""
        return self._error(f"unknown {self.family} {name!r}{guess}; available: {', '.join(known)}{self._hint}")

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (``roth`` → ``rotH``); unknown names raise."""
        key = self._key(name)
        if key is None:
            raise self.unknown(name)
        return self._entries[key][0]

    def entry(self, name: str) -> T:
        """The entry registered under ``name`` (or one of its aliases); unknown names raise."""
        key = self._key(name)
        if key is None:
            raise self.unknown(name)
        return self._entries[key][1]

    def build(self, name: str, /, **params: Any) -> Any:
        """Call the entry registered under ``name`` with ``params``.

        A ``TypeError`` from the call (a wrong or missing keyword) becomes ``ValueError("bad parameters
        for <family> <name>: …")``, which the CLI reports as one line.
        """
        factory: Callable[..., Any] = self.entry(name)  # type: ignore[assignment]
        try:
            return factory(**params)
        except TypeError as err:
            raise ValueError(f"bad parameters for {self.family} {self.canonical(name)!r}: {err}") from None
