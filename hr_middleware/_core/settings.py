"""Every option of the middleware, in one frozen object validated once at start-up."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union
from urllib.parse import urlsplit

from .facts import RequestFacts
from .ids import CookieSigner
from .public_suffixes import is_public_suffix
from .script import DEFAULT_SCRIPT_URL
from .websites import WebsiteChoice, Websites, canonical_uuid

__all__ = ["DEFAULT_API_URL", "MAX_COOKIE_AGE", "ONE_DAY", "ONE_YEAR", "Settings"]

DEFAULT_API_URL = "https://core.helloretail.com"
ONE_YEAR = 365 * 24 * 60 * 60
ONE_DAY = 24 * 60 * 60

#: The longest cookie lifetime accepted, in seconds: what browsers keep at most (400 days).
MAX_COOKIE_AGE = 400 * 24 * 60 * 60

# RFC 6265 cookie-name token: printable ASCII except separators.
_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 path-value: any printable ASCII but ";" (and no blank, which would be trimmed).
_COOKIE_PATH_RE = re.compile(r"[!-:<-~]+")
# A host name, optionally with a leading dot: labels of letters, digits and "-".
_COOKIE_DOMAIN_RE = re.compile(
    r"\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
#: The longest domain name (RFC 1035): a longer ``Domain`` attribute is dropped by browsers.
_MAX_DOMAIN_LENGTH = 253
# The API's host name: labels of letters, digits, "-" and "_" (a container's service name
# may hold one), optionally ending in a dot. An IPv4 address is such a name too.
_API_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
)

_UUID_REQUIRED = "website_uuid: required, the shop's Hello Retail website UUID"
#: ``samesite`` as given in any case -> as the RFC spells it.
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}

MintWhen = Callable[[RequestFacts], bool]
Consent = Callable[[RequestFacts], Union[bool, None]]
SecretKey = Union[str, bytes, Sequence[Union[str, bytes]]]


@dataclass(frozen=True)
class Settings:
    """All options of the middleware. Build it once; a bad option raises
    :class:`ValueError` or :class:`TypeError` naming the option.

    The adapters accept the same names as keyword arguments
    (``TrackingUserMiddleware(app, website_uuid=..., timeout=0.5)``), Flask
    reads them from ``app.config["HELLO_RETAIL_<NAME>"]`` and Django from
    ``settings.HELLO_RETAIL["<NAME>"]``. docs/options.md documents each one.
    """

    #: The shop's Hello Retail website UUID (required); with ``websites``, the default website's.
    website_uuid: str
    #: Several websites: a mapping of hosts (``{"shop.dk": uuid}``) or path prefixes
    #: (``{"/dk/": uuid}``) to website UUIDs, or a callable of the request's facts
    #: answering one; ``"*": None`` gives pages no key names no website (docs/websites.md).
    websites: Websites | None = None
    #: Base URL of Hello Retail's API; point it at the fake server in tests.
    api_url: str = DEFAULT_API_URL
    #: Total time budget of one mint, in seconds (connect, send, wait, read).
    timeout: float = 1.0
    #: The server cookie this middleware keeps.
    cookie_name: str = "helloRetailTrackingUserId"
    #: The cookie Hello Retail's own JavaScript keeps; read, and written when sharing.
    sdk_cookie_name: str = "hello_retail_id"
    #: Also write the SDK cookie so Hello Retail's JavaScript reuses the server's id.
    share_with_sdk: bool = True
    #: Cookie lifetime in seconds.
    max_age: int = ONE_YEAR
    #: Renew a returning visitor's cookies (a fresh ``max_age``) on a page navigation
    #: at most once per this many seconds (and at least once per half ``max_age``);
    #: None: never, and the server cookie holds the bare id. See docs/renewal.md.
    renew_after: int | None = ONE_DAY
    #: Cookie ``Path``.
    path: str = "/"
    #: Cookie ``Domain``; ``None`` makes it a host-only cookie.
    domain: str | None = None
    #: ``"auto"``: ``Secure`` when the request came over https; or always/never.
    secure: bool | Literal["auto"] = "auto"
    #: Cookie ``SameSite``: ``"Lax"``, ``"Strict"``, ``"None"`` or ``None`` (omit).
    samesite: Literal["Lax", "Strict", "None"] | None = "Lax"
    #: Cookie ``HttpOnly``; off so the page's JavaScript can read the id.
    httponly: bool = False
    #: Which id-less requests mint a new id; None: the default rule
    #: (:func:`~hr_middleware.is_page_navigation`, which also says why not: a bot, not a page).
    mint_when: MintWhen | None = None
    #: Consent hook: True (allowed), False (declined), None (unknown); None = no hook.
    consent: Consent | None = None
    #: What an unknown consent (the hook returned None) counts as.
    consent_unknown: bool = False
    #: Treat ``Sec-GPC: 1`` as declined.
    respect_gpc: bool = False
    #: Sign the server cookie; a list rotates keys (the first signs, all verify).
    secret_key: SecretKey | None = None
    #: With a secret key, whether an id from the (unsigned) SDK cookie is adopted.
    #: None (default): not with a secret key, so that a cookie another host or
    #: script planted cannot choose the id; see :attr:`trusts_sdk_cookie`.
    trust_sdk_cookie: bool | None = None
    #: Consecutive failed mints that open the circuit breaker.
    breaker_threshold: int = 5
    #: Seconds the breaker stays open before one probe mint is allowed.
    breaker_cooldown: float = 30.0
    #: How many ids to keep minted ahead of need (0 = off).
    prefetch: int = 0
    #: Seconds a prefetched id may wait before it is discarded.
    prefetch_max_age: float = 600.0
    #: The shop's Hello Retail API key: the client sends it as ``?apiKey=`` when
    #: ``email``/``customerId`` name the visitor. A secret: never shown in a repr.
    api_key: str | None = field(default=None, repr=False)
    #: Where the page loads Hello Retail's script from (``hello_retail_script()``); the fake's in tests.
    script_url: str = DEFAULT_SCRIPT_URL

    signer: CookieSigner | None = field(default=None, init=False, repr=False, compare=False)
    #: The ``websites`` option, checked: which website a request is of.
    website_choice: WebsiteChoice = field(init=False, repr=False, compare=False)

    def __new__(cls, *args: Any, **options: Any) -> Settings:
        # Before the generated __init__, whose TypeError would name no option:
        # ``Settings(WEBSITE_UUID=...)`` (Flask's and Django's spelling) gets a did-you-mean.
        # (Nothing to check without arguments: that is how pickle and copy make one.)
        if options:
            _check_names(options)
            if not args and "website_uuid" not in options:
                raise TypeError(_UUID_REQUIRED)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        object.__setattr__(self, "website_uuid", canonical_uuid("website_uuid", self.website_uuid))
        object.__setattr__(self, "api_url", _checked_api_url(self.api_url))
        _check_number("timeout", self.timeout, low=0.001, high=60)
        for name in ("cookie_name", "sdk_cookie_name"):
            value = getattr(self, name)
            _check_str(name, value)
            if not _COOKIE_NAME_RE.fullmatch(value):
                raise ValueError(f"{name}: {value!r} is not a valid cookie name")
        if self.cookie_name == self.sdk_cookie_name:
            raise ValueError("cookie_name and sdk_cookie_name must differ")
        for name in ("share_with_sdk", "httponly", "consent_unknown", "respect_gpc"):
            _check_bool(name, getattr(self, name))
        if self.trust_sdk_cookie is not None:
            _check_bool("trust_sdk_cookie", self.trust_sdk_cookie)
        # Browsers cap a cookie's lifetime at 400 days (RFC 6265bis); far more
        # overflows the Expires date and no cookie could be written at all.
        _check_int("max_age", self.max_age, low=1, high=MAX_COOKIE_AGE)
        if self.renew_after is not None:
            _check_int("renew_after", self.renew_after, low=1, high=MAX_COOKIE_AGE)
        _check_str("path", self.path)
        if not self.path.startswith("/") or not _COOKIE_PATH_RE.fullmatch(self.path):
            raise ValueError(f"path: {self.path!r} must start with '/' and hold no ';', blank or control character")
        if self.domain is not None:
            _check_domain(self.domain)
        if self.secure != "auto" and not isinstance(self.secure, bool):
            raise TypeError(f"secure: expected 'auto', True or False, got {self.secure!r}")
        if isinstance(self.samesite, str):  # browsers read it case-insensitively; written as the RFC spells it
            object.__setattr__(self, "samesite", _SAMESITE.get(self.samesite.lower(), self.samesite))
        if self.samesite not in ("Lax", "Strict", "None", None):
            raise ValueError(f"samesite: expected 'Lax', 'Strict', 'None' or None, got {self.samesite!r}")
        if self.samesite == "None" and self.secure is False:
            raise ValueError("samesite: 'None' needs secure=True or 'auto' (browsers drop it otherwise)")
        for name in ("cookie_name", "sdk_cookie_name"):
            self._check_cookie_prefix(name, getattr(self, name))
        if self.mint_when is not None and not callable(self.mint_when):
            raise TypeError(f"mint_when: expected a callable or None, got {self.mint_when!r}")
        if self.consent is not None and not callable(self.consent):
            raise TypeError(f"consent: expected a callable or None, got {self.consent!r}")
        _check_int("breaker_threshold", self.breaker_threshold, low=1)
        _check_number("breaker_cooldown", self.breaker_cooldown, low=0, high=86_400)
        _check_int("prefetch", self.prefetch, low=0, high=10_000)
        _check_number("prefetch_max_age", self.prefetch_max_age, low=1, high=86_400)
        if self.api_key is not None:
            # The messages never hold the value: it is a secret.
            if not isinstance(self.api_key, str):
                raise TypeError(f"api_key: expected a string or None, got {type(self.api_key).__name__}")
            if not self.api_key or not self.api_key.isprintable() or any(c.isspace() for c in self.api_key):
                raise ValueError("api_key: expected the shop's API key, a non-empty string without spaces")
        _check_script_url(self.script_url)
        object.__setattr__(self, "signer", self._make_signer())
        object.__setattr__(self, "website_choice", WebsiteChoice(self.websites, self.website_uuid))
        if self.domain is not None:
            self._check_domain_per_website()
        if self.website_choice.prefixes:
            for name in ("cookie_name", "sdk_cookie_name"):
                self._check_host_prefix_per_path(name, getattr(self, name))

    def _check_domain_per_website(self) -> None:
        """Refuse a ``domain`` that would give two websites chosen by host one cookie (and so one id)."""
        assert self.domain is not None
        domain = self.domain.lstrip(".").lower()
        under = {
            host: uuid
            for host, uuid in self.website_choice.hosts.items()
            if host == domain or host.endswith("." + domain)
        }
        if len(set(under.values())) > 1:
            first, second = sorted(under)[:2]
            raise ValueError(
                f"domain: {self.domain!r} would share one cookie, and so one id, between {first!r} and "
                f"{second!r}, which websites gives different websites; leave domain unset (host-only "
                "cookies keep an id per website) or give those hosts one website (docs/websites.md)"
            )

    @staticmethod
    def _check_host_prefix_per_path(option: str, name: str) -> None:
        """Websites by path prefix write each website's cookies with its prefix as ``Path``;
        a browser drops a ``__Host-`` cookie whose ``Path`` is not ``/`` (every page would mint again)."""
        if name[:7].lower() == "__host-":
            raise ValueError(
                f"{option}: {name!r} starts with '__Host-', which browsers keep only with Path=/, and websites "
                "by path prefix give each website's cookies its prefix as Path (Path=/dk): choose a name "
                "without the prefix ('__Secure-' keeps Secure), or choose websites by host (docs/websites.md)"
            )

    def _check_cookie_prefix(self, option: str, name: str) -> None:
        """Browsers drop a ``__Secure-`` or ``__Host-`` cookie (any case) set without
        the attributes its prefix promises (RFC 6265bis): refuse the options that would."""
        prefix = name[:9].lower()
        if prefix.startswith("__host-"):
            if self.secure is not True or self.path != "/" or self.domain is not None:
                raise ValueError(
                    f"{option}: {name!r} starts with '__Host-', which browsers keep only with Secure, Path=/ and "
                    f"no Domain: set secure=True, path='/' and domain=None (got secure={self.secure!r}, "
                    f"path={self.path!r}, domain={self.domain!r}), or choose a name without the prefix"
                )
        elif prefix == "__secure-" and self.secure is not True:
            raise ValueError(
                f"{option}: {name!r} starts with '__Secure-', which browsers keep only with Secure: set "
                f"secure=True (got {self.secure!r}) and serve the shop over https, or choose a name without the prefix"
            )

    def _make_signer(self) -> CookieSigner | None:
        if self.secret_key is None:
            return None
        keys: Sequence[object]
        if isinstance(self.secret_key, (str, bytes)):
            keys = [self.secret_key]
        elif isinstance(self.secret_key, Sequence) and self.secret_key:
            keys = self.secret_key
        else:
            raise TypeError("secret_key: expected a string, bytes or a non-empty list of them")
        checked: list[str | bytes] = []
        for key in keys:
            if not isinstance(key, (str, bytes)) or len(key) < 16:
                raise ValueError("secret_key: every key must be a string or bytes of 16+ characters")
            checked.append(key)
        return CookieSigner(checked, self.max_age)

    @property
    def trusts_sdk_cookie(self) -> bool:
        """Whether a valid id in the SDK cookie is adopted when the server cookie holds none or another one.

        Always without ``secret_key`` (nothing is signed, and the page's
        JavaScript reports under the SDK cookie's id). With it, only when
        ``trust_sdk_cookie=True``: signing promises that the visitor's id was
        issued by this server (minted, or adopted because the shop said so),
        and the SDK cookie is unsigned, so any sibling subdomain or script
        could plant one. ``trust_sdk_cookie`` stays None by default rather
        than being resolved here, so that ``replace(secret_key=...)`` and an
        adapter's ``settings=`` plus ``secret_key=`` keep the promise too.
        """
        return self.signer is None or self.trust_sdk_cookie is True

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with *changes* applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def merge(cls, settings: Settings | Mapping[str, Any] | None, options: Mapping[str, Any]) -> Settings:
        """What a middleware's ``settings=`` and ``**options`` make together (options win).

        ``settings`` may also be a dict of options, taken as keyword options.
        An unknown option raises :class:`TypeError` naming it, with the closest
        option's name when it looks like a typo.
        """
        if isinstance(settings, Mapping):
            options = {**settings, **options}
            settings = None
        elif settings is not None and not isinstance(settings, Settings):
            raise TypeError(f"settings: expected a Settings or a dict of options, got {type(settings).__name__}")
        _check_names(options)
        if settings is None:
            if "website_uuid" not in options:
                raise TypeError(_UUID_REQUIRED)
            return cls(**options)
        return settings.replace(**options) if options else settings

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, prefix: str = "", **overrides: Any) -> Settings:
        """Build settings from upper-case keys, e.g. Flask's ``HELLO_RETAIL_TIMEOUT``.

        Keys of *config* that start with *prefix* name options (``prefix +
        NAME.upper()``); an unknown one raises :class:`ValueError` so a typo
        does not go unnoticed. *overrides* (lower-case names) win over *config*.
        """
        known = {name.upper(): name for name in cls.option_names()}
        options: dict[str, Any] = {}
        for key, value in config.items():
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            name = known.get(key[len(prefix) :])
            if name is None:
                hint = _did_you_mean(key, [prefix + option for option in known])
                raise ValueError(f"{key}: unknown Hello Retail option{hint or ' (known: ' + ', '.join(known) + ')'}")
            options[name] = value
        _check_names(overrides)
        options.update(overrides)
        if "website_uuid" not in options:
            raise ValueError(f"{prefix}WEBSITE_UUID: required, the shop's Hello Retail website UUID")
        return cls(**options)


def _check_names(options: Mapping[str, Any]) -> None:
    """Raise :class:`TypeError` naming the first of *options* that is not an option, with a suggestion."""
    known = Settings.option_names()
    for name in options:
        if name not in known:
            raise TypeError(f"{name}: not an option of hr-middleware{_did_you_mean(name, known)}")


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of *known*, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
        close = [k for k in known if k.lower() in close]
    return f"; did you mean {close[0]!r}?" if close else ""


def _checked_api_url(value: object) -> str:
    """*value* as the base URL of Hello Retail's API: http(s), a host, no query, fragment or credentials."""
    _check_str("api_url", value)
    assert isinstance(value, str)
    problem = None
    if any(not c.isprintable() or c.isspace() for c in value):  # C0 and C1 controls, U+2028, U+200B...
        problem = "holds a blank, control or non-printable character"
    else:
        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError for a port out of range
        except ValueError as exc:  # an unclosed IPv6 bracket, a port that is not a number
            problem = f"cannot be read ({exc})"
        else:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problem = "is not an http(s) URL with a host"
            elif parts.query or parts.fragment or value.endswith(("?", "#")):
                problem = "must not have a query or fragment"
            elif parts.username is not None or parts.password is not None:
                problem = "must not hold credentials"
            elif port == 0:
                problem = "has port 0"
            else:
                problem = _host_problem(parts.netloc.rpartition("@")[2], parts.hostname)
    if problem is not None:
        raise ValueError(f"api_url: {value[:100]!r} {problem}; e.g. 'https://core.helloretail.com'")
    return value.rstrip("/")


def _host_problem(netloc_host: str, hostname: str) -> str | None:
    """What is wrong with the API URL's host (*hostname*, as written in *netloc_host* with its port), or None."""
    if netloc_host.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            return f"has a host {netloc_host!r} that is not an IPv6 address"
        if "%" in hostname:  # a zone: only meaningful on this machine, and a '%' that HTTP libraries read apart
            return "has an IPv6 zone ('%'); use an address without one"
        return None
    if len(hostname) > _MAX_DOMAIN_LENGTH or not _API_HOST_RE.fullmatch(hostname):
        return (
            f"has a host {hostname[:60]!r} that is not a host name: letters, digits, '-' and '.', ASCII "
            "(punycode for an international name), or an IP address ('[::1]' for IPv6)"
        )
    return None


def _check_script_url(value: object) -> None:
    """Refuse a ``script_url`` that is not an http(s) URL with a host (it becomes a ``src`` attribute)."""
    _check_str("script_url", value)
    assert isinstance(value, str)
    try:
        host = urlsplit(value).hostname if value.startswith(("https://", "http://")) else None
    except ValueError:  # an unclosed IPv6 bracket
        host = None
    if not host or any(not c.isprintable() or c.isspace() for c in value):
        raise ValueError(f"script_url: {value[:100]!r} is not an http(s) URL with a host; e.g. '{DEFAULT_SCRIPT_URL}'")


def _check_domain(domain: object) -> None:
    """Refuse a ``domain`` option that no browser would keep a cookie for."""
    _check_str("domain", domain)
    assert isinstance(domain, str)
    if len(domain.lstrip(".")) > _MAX_DOMAIN_LENGTH:
        raise ValueError(
            f"domain: {domain[:60]!r}... is {len(domain.lstrip('.'))} characters; a domain name has at most "
            f"{_MAX_DOMAIN_LENGTH} and browsers drop a cookie whose Domain is longer: use your shop's domain"
        )
    if not _COOKIE_DOMAIN_RE.fullmatch(domain):
        raise ValueError(
            f"domain: {domain!r} is not a cookie domain: a host name such as 'shop.example' or "
            "'.shop.example', ASCII (punycode for an international name), with no port"
        )
    if is_public_suffix(domain):
        why = (
            "a single label, which browsers take as one"
            if "." not in domain.lstrip(".")
            else "like 'com' or 'co.uk', by the Public Suffix List"
        )
        raise ValueError(
            f"domain: {domain!r} is a public suffix ({why}): browsers drop cookies set for it (or keep them for "
            "that exact host only), so every page would mint again; use your shop's domain such as "
            "'.shop.example', or leave domain unset (None) for a host-only cookie"
        )


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


def _check_int(name: str, value: object, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}: {value} is out of range [{low}, {high if high is not None else '...'}]")


def _check_number(name: str, value: object, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number of seconds, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is out of range [{low}, {high}]")
