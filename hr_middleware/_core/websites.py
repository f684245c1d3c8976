"""Which Hello Retail website a request belongs to: the ``websites`` option, validated once, chosen per request.

A shop with several regions or languages has one Hello Retail website (UUID)
each. ``websites`` names them by host (``{"shop.dk": uuid1, "shop.se": uuid2}``),
by path prefix (``{"/dk/": uuid1, "/se/": uuid2}``), or is a callable of the
request's facts. A request that no entry names belongs to ``website_uuid``
(the default website), or, when the mapping says ``"*": None``, to no website:
then nothing is minted for it (``NoIdReason.NO_WEBSITE``). docs/websites.md.

Pure, like the rest of the core: a mapping is checked whole at start-up, a
callable's answer each time it is asked (a bad one is a :class:`~.visit.Note`
to log, and no website).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Union

from .facts import RequestFacts
from .log import WEBSITE_ANSWER_INVALID, WEBSITE_HOOK_FAILED, WEBSITE_NONE
from .visit import Note

__all__ = ["ANY_OTHER", "WebsiteChoice", "Websites", "canonical_uuid", "host_of"]

#: The mapping key naming every request no other key names.
ANY_OTHER = "*"

#: What the ``websites`` option holds: a mapping of hosts or path prefixes to UUIDs
#: (None: no website), or a callable of the request's facts answering a UUID or None.
#: (RequestFacts by name, not in quotes: Python 3.10 leaves a string unresolved here.)
Websites = Union[Mapping[str, Union[str, None]], Callable[[RequestFacts], Union[str, None]]]

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PLACEHOLDER_UUIDS = frozenset(("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"))
# A host name as a mapping key: labels of letters, digits and "-" (punycode for an international name).
_HOST_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A path prefix as a mapping key: segments of what a cookie Path may hold, no ";" "," or blank.
_PREFIX_RE = re.compile(r"(?:/[!#-+\--:<-~]+)+/?")


def canonical_uuid(option: str, value: object) -> str:
    """*value* as a website UUID in the form Hello Retail shows and expects (lower-case, dashed);
    raises :class:`TypeError` or :class:`ValueError` naming *option*."""
    if not isinstance(value, str):
        raise TypeError(f"{option}: expected a string, got {type(value).__name__}")
    value = value.strip()  # pasted with a blank or read from a file with its newline
    if not _UUID_RE.fullmatch(value):
        raise ValueError(
            f"{option}: {value[:60]!r} is not a UUID in its usual form: 36 characters such as "
            "'12345678-90ab-4cde-8f01-234567890abc' (copy it from Hello Retail's dashboard under Settings > Website)"
        )
    canonical = value.lower()
    if canonical in _PLACEHOLDER_UUIDS:
        raise ValueError(f"{option}: {value!r} is a placeholder; use your shop's website UUID from Hello Retail")
    return canonical


def _is_ipv6_literal(host: str) -> bool:
    """``[::1]``: an IPv6 address as a Host header writes it."""
    if not (host.startswith("[") and host.endswith("]")):
        return False
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True


def host_of(authority: str) -> str:
    """The host of a ``Host`` header or server name: lower-case, without port or final dot."""
    host = authority.strip().lower()
    if host.startswith("["):  # an IPv6 literal, with or without a port
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0].rstrip(".")


class WebsiteChoice:
    """The ``websites`` option, checked: the website UUID of a request, and where its cookies live.

    *default* is ``website_uuid``. With no ``websites`` every request is the default's.
    """

    __slots__ = ("default", "hosts", "prefixes", "hook", "other", "_by_prefix")

    def __init__(self, websites: Websites | None, default: str) -> None:
        self.default = default
        #: Host -> UUID (None: no website), when chosen by host.
        self.hosts: dict[str, str | None] = {}
        #: The path prefixes without their final "/", longest first, when chosen by path.
        self.prefixes: tuple[str, ...] = ()
        #: Path prefix (as in :attr:`prefixes`) -> UUID (None: no website).
        self._by_prefix: dict[str, str | None] = {}
        #: The shop's callable, when chosen by one.
        self.hook: Callable[[RequestFacts], str | None] | None = None
        #: The website of a request no key names: the default, or None (``"*": None``).
        self.other: str | None = default
        if websites is None:
            return
        if isinstance(websites, Mapping):
            self._read_mapping(websites)
        elif callable(websites):
            self.hook = websites
        else:
            raise TypeError(
                "websites: expected a mapping of hosts or path prefixes to website UUIDs, or a callable "
                f"of the request's facts, got {type(websites).__name__}"
            )

    def _read_mapping(self, websites: Mapping[Any, object]) -> None:
        if not websites:
            raise ValueError("websites: empty; name each website's host or path prefix, or leave websites unset")
        hosts: dict[str, str | None] = {}
        prefixes: dict[str, str | None] = {}
        for key, value in websites.items():
            if not isinstance(key, str):
                raise TypeError(f"websites: keys are hosts or path prefixes (strings), got {key!r}")
            uuid = None if value is None else canonical_uuid(f"websites[{key!r}]", value)
            if key == ANY_OTHER:
                self.other = uuid
            elif key.startswith("/"):
                if not _PREFIX_RE.fullmatch(key):
                    raise ValueError(
                        f"websites: {key!r} is not a path prefix such as '/dk/' (no blank, quote, ';' or ',')"
                    )
                prefix = key.rstrip("/")
                if not prefix:
                    raise ValueError(f"websites: {key!r} would name every path; use website_uuid for the default")
                if prefix in prefixes:
                    raise ValueError(f"websites: the path prefix {key!r} is named twice")
                prefixes[prefix] = uuid
            else:
                host = host_of(key)
                if host != key.lower().rstrip(".") or not (_HOST_RE.fullmatch(host) or _is_ipv6_literal(host)):
                    raise ValueError(
                        f"websites: {key[:60]!r} is neither a host name such as 'shop.dk' (no port, no scheme) "
                        "nor a path prefix such as '/dk/'"
                    )
                if host in hosts:
                    raise ValueError(f"websites: the host {key!r} is named twice")
                hosts[host] = uuid
        if hosts and prefixes:
            raise ValueError(
                "websites: name websites either by host or by path prefix, not both "
                "(which would win is not obvious); a callable can combine them"
            )
        if prefixes and self.other is not None:
            # Each path website keeps its cookies under its prefix. A website for the
            # other paths would keep its cookies at Path=/, which browsers send under
            # every prefix too: a visitor's id would cross from one website to another.
            raise ValueError(
                "websites: with path prefixes, the pages outside them cannot have a website: its cookies "
                "(Path=/) would reach every prefix and carry its ids into the other websites; add "
                "'*': None (those pages get no id), or choose websites by host (docs/websites.md)"
            )
        self.hosts = hosts
        self.prefixes = tuple(sorted(prefixes, key=len, reverse=True))
        self._by_prefix = prefixes

    @property
    def several(self) -> bool:
        """True when the website may differ between requests."""
        return bool(self.hosts or self.prefixes or self.hook) or self.other != self.default

    def uuids(self) -> set[str]:
        """Every website UUID a mapping names (with the default); a callable's are not known."""
        named = {*self.hosts.values(), *self._by_prefix.values(), self.other, self.default}
        return {uuid for uuid in named if uuid is not None}

    def choose(self, request: RequestFacts) -> tuple[str | None, Note | None]:
        """The website UUID of *request* (None: no website, nothing to mint), and what to log about it."""
        if self.hook is not None:
            return self._ask(request)
        if self.hosts:
            host = host_of(request.host)
            uuid = self.hosts.get(host, self.other)
            if uuid is None:
                return None, Note(logging.DEBUG, WEBSITE_NONE, (f"host {host[:100]!r}",))
            return uuid, None
        if self.prefixes:
            prefix = self.prefix_of(request.path)
            uuid = self.other if prefix is None else self._by_prefix[prefix]
            if uuid is None:
                return None, Note(logging.DEBUG, WEBSITE_NONE, (f"path {request.path[:100]!r}",))
            return uuid, None
        if self.other is None:  # a mapping of "*" alone
            return None, Note(logging.DEBUG, WEBSITE_NONE, ("'*': None",))
        return self.other, None

    def prefix_of(self, path: str) -> str | None:
        """The longest prefix of the mapping that *path* is under (``/dk`` for ``/dk`` and ``/dk/...``), or None."""
        for prefix in self.prefixes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return prefix
        return None

    def cookie_path(self, request: RequestFacts) -> str | None:
        """The cookie ``Path`` of the request's website when chosen by path (its prefix); else None (``path``).

        A path prefix without its final ``/`` is what browsers send a cookie for under ``/dk``
        and ``/dk/...`` alike (RFC 6265 path-match), and never under ``/dkk``.
        """
        return self.prefix_of(request.path) if self.prefixes else None

    def cookie_domain(self, request: RequestFacts, domain: str | None) -> str | None:
        """The cookie ``Domain`` on *request*: the ``domain`` option, but when websites are chosen by
        host, only on a host under it (a browser drops a cookie whose Domain is not the host's: on
        ``shop.se`` a ``Domain=shop.dk`` cookie would be lost, and every page there would mint again)."""
        if domain is None or not self.hosts:
            return domain
        host, under = host_of(request.host), domain.lstrip(".").lower()
        return domain if host == under or host.endswith("." + under) else None

    def _ask(self, request: RequestFacts) -> tuple[str | None, Note | None]:
        assert self.hook is not None
        try:
            answer = self.hook(request)
        except Exception as exc:  # the shop's hook: the serving layer logs it
            return None, Note(logging.ERROR, WEBSITE_HOOK_FAILED, (), exc)
        if answer is None:
            return None, Note(logging.DEBUG, WEBSITE_NONE, ("the websites callable answered None",))
        try:
            return canonical_uuid("websites", answer), None
        except (TypeError, ValueError):
            shown = repr(answer) if isinstance(answer, str) else type(answer).__name__
            return None, Note(logging.ERROR, WEBSITE_ANSWER_INVALID, (shown[:60],))
