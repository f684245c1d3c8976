"""The public surface, pinned: every public module's ``__all__``, written out here.

A name added to or dropped from the surface must change this file too (httpx
does the same), so that no name becomes public, or stops being, by accident.
Every public name has a docstring, and every type that a public function or
method returns is public itself (a user can name what they are given).
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from .test_readme import PUBLIC_MODULES


@pytest.fixture
def django_site() -> None:
    """Django configured: importing ``hr_middleware.django`` needs settings."""
    from .django_site import configure

    configure()


#: Every public module's ``__all__``.
PUBLIC = {
    "hr_middleware": [
        "APIError",
        "HelloRetailError",
        "InvalidResponseError",
        "NoIdReason",
        "OPT_OUT_ID",
        "Origin",
        "RequestFacts",
        "RequestTimeoutError",
        "Settings",
        "TrackingUser",
        "TransportError",
        "get_tracking_user",
        "get_tracking_user_id",
        "get_website_uuid",
        "is_bot",
        "is_page_navigation",
        "is_valid_id",
    ],
    "hr_middleware.wsgi": ["ENVIRON_KEY", "TrackingUserMiddleware"],
    "hr_middleware.asgi": ["STATE_KEY", "TrackingUserMiddleware"],
    "hr_middleware.flask": ["HelloRetail"],
    "hr_middleware.fastapi": ["TrackingUserId"],
    "hr_middleware.django": ["TrackingUserMiddleware", "read_settings"],
    "hr_middleware.client": [
        "AsyncHelloRetailClient",
        "Facet",
        "FacetValue",
        "HelloRetailClient",
        "Paging",
        "ProductsQuery",
        "RecommendationRequest",
        "facets",
        "next_page",
        "paging",
        "tracked",
        "with_filter",
    ],
    "hr_middleware.consent": [
        "ConsentReader",
        "agrant",
        "cookie_consent",
        "cookiebot",
        "cookieyes",
        "grant",
        "onetrust",
        "revoke",
    ],
    "hr_middleware.customers": ["LinkOutcome", "alink_customer", "current_customer_id", "link_customer"],
    "hr_middleware.testing": [
        *["BROWSER_HEADERS", "DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest", "fake_products"],
        *["ScriptEvent", "ScriptLog"],
    ],
    "hr_middleware.script": ["TEMPLATE_GLOBAL", "hello_retail_script", "install"],
}

#: Constants and aliases: no docstring of their own to ask for.
VALUES = {"OPT_OUT_ID", "ENVIRON_KEY", "STATE_KEY", "DEFAULT_WEBSITE_UUID", "TrackingUserId", "ConsentReader"}
VALUES |= {"TEMPLATE_GLOBAL", "BROWSER_HEADERS"}


def test_every_public_module_is_pinned() -> None:
    assert sorted(PUBLIC) == sorted(PUBLIC_MODULES)


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_the_public_names_are_the_pinned_ones(module: str, django_site: None) -> None:
    assert sorted(importlib.import_module(module).__all__) == sorted(PUBLIC[module])


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_exists_and_says_what_it_is(module: str, django_site: None) -> None:
    imported = importlib.import_module(module)
    undocumented = [
        name
        for name in imported.__all__
        if name not in VALUES and not (inspect.getdoc(getattr(imported, name)) or "").strip()
    ]
    assert not undocumented, f"{module}: no docstring on {undocumented}"


def test_the_package_exports_exactly_its_public_names(django_site: None) -> None:
    """As httpx tests its own: nothing public in ``hr_middleware``'s namespace but ``__all__``
    (and its submodules, and ``__version__``)."""
    import hr_middleware

    names = {
        name
        for name, value in vars(hr_middleware).items()
        if not name.startswith("_") and not isinstance(value, (ModuleType, __future__._Feature))
    }
    assert names == set(hr_middleware.__all__)


def _public_callables(django_site: None) -> Iterator[tuple[str, Any]]:
    """Every public function, and every public method of a public class, by its dotted name."""
    for module in PUBLIC:
        imported = importlib.import_module(module)
        for name in imported.__all__:
            value = getattr(imported, name)
            if inspect.isfunction(value):
                yield f"{module}.{name}", value
            elif inspect.isclass(value) and value.__module__.startswith("hr_middleware"):
                for attribute, member in vars(value).items():
                    if attribute.startswith("_") and attribute not in ("__enter__", "__aenter__"):
                        continue
                    function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if isinstance(function, property):
                        function = function.fget
                    if inspect.isfunction(function):
                        yield f"{module}.{name}.{attribute}", function


def _our_classes(annotation: Any) -> Iterator[type]:
    """The classes of this package named in a return annotation, however nested."""
    if isinstance(annotation, type) and annotation.__module__.startswith("hr_middleware"):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _our_classes(argument)


def test_every_type_a_public_function_returns_is_public(django_site: None) -> None:
    public = {
        getattr(importlib.import_module(module), name)
        for module, names in PUBLIC.items()
        for name in names
        if isinstance(getattr(importlib.import_module(module), name), type)
    }
    hidden = {}
    for where, function in _public_callables(django_site):
        try:
            returns = typing.get_type_hints(function).get("return")
        except NameError:  # an annotation naming a TYPE_CHECKING-only import (the WSGI types)
            continue
        for returned in _our_classes(returns):
            if returned not in public:
                hidden.setdefault(f"{returned.__module__}.{returned.__qualname__}", []).append(where)
    assert not hidden, f"returned by public functions, but not public: {hidden}"
