"""The system checks of ``settings.HELLO_RETAIL`` (``manage.py check``; ids in docs/django.md).

Registered when :mod:`hr_middleware.django` is imported: by Django loading
the middleware, or by ``"hr_middleware"`` in INSTALLED_APPS, which lets
``manage.py check`` run them before any request handler is built.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.utils.module_loading import import_string

from hr_middleware._core.settings import Settings

from ._config import SETTING, import_callables, read_settings

__all__ = ["MIDDLEWARE_PATH", "check_report", "check_settings", "middleware_installed"]

#: The dotted path to put in ``MIDDLEWARE``.
MIDDLEWARE_PATH = "hr_middleware.django.TrackingUserMiddleware"


def check_report() -> str:
    """The errors ``manage.py check`` reports for ``HELLO_RETAIL``, as it prints them."""
    return "\n".join(str(message) for message in check_settings() if message.is_serious())


def middleware_installed() -> bool:
    """Is our middleware (or a subclass) in ``settings.MIDDLEWARE``?"""
    from ._middleware import TrackingUserMiddleware

    for path in getattr(django_settings, "MIDDLEWARE", None) or ():
        if path == MIDDLEWARE_PATH:
            return True
        try:
            if issubclass(import_string(path), TrackingUserMiddleware):
                return True
        except Exception:  # not ours to report; Django's own checks and start-up do
            continue
    return False


_UUID_HINT = "Find the website UUID in Hello Retail's dashboard (Settings > Website)."
_UUID_SHAPE = "A website UUID looks like '12345678-90ab-4cde-8f01-234567890abc' (a string)."


def _reason(exc: Exception, name: str) -> str:
    """*exc*'s message without the leading ``option:`` the core puts there."""
    return str(exc).removeprefix(f"{name}: ")


def _option_hint(key: str) -> str:
    return f"See {key} in the option table of docs/django.md."


@checks.register("hr_middleware")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: report every problem of ``settings.HELLO_RETAIL`` (ids in docs/django.md)."""
    installed = middleware_installed()
    config = getattr(django_settings, SETTING, None)
    if config is None:
        if not installed:
            return []
        return [
            checks.Error(
                "settings.HELLO_RETAIL is missing.",
                hint='Add HELLO_RETAIL = {"WEBSITE_UUID": "<your website UUID>"} to your settings.',
                id="hr_middleware.E001",
            )
        ]
    if not isinstance(config, Mapping):
        return [
            checks.Error(
                f"settings.HELLO_RETAIL must be a dict, not {type(config).__name__}.",
                hint='HELLO_RETAIL = {"WEBSITE_UUID": "<your website UUID>", ...}',
                id="hr_middleware.E002",
            )
        ]
    errors = _check_options(config)
    if not errors:
        try:
            read_settings(config)
        except (TypeError, ValueError) as exc:  # options that conflict with each other
            errors.append(
                checks.Error(f"HELLO_RETAIL: {exc}.", hint="These options conflict.", id="hr_middleware.E007")
            )
    if not installed:
        errors.append(
            checks.Warning(
                f"settings.HELLO_RETAIL is set but {MIDDLEWARE_PATH} is not in MIDDLEWARE.",
                hint=f'Add "{MIDDLEWARE_PATH}" to MIDDLEWARE.',
                id="hr_middleware.W001",
            )
        )
    return errors


def _check_options(config: Mapping[Any, Any]) -> list[checks.CheckMessage]:
    """One message per bad key of *config*, each option validated on its own."""
    known = {name.upper(): name for name in Settings.option_names()}
    errors: list[checks.CheckMessage] = []
    if "WEBSITE_UUID" not in config:
        errors.append(
            checks.Error("HELLO_RETAIL['WEBSITE_UUID'] is missing.", hint=_UUID_HINT, id="hr_middleware.E003")
        )
    else:
        try:
            Settings(website_uuid=config["WEBSITE_UUID"])
        except (TypeError, ValueError) as exc:
            message = f"HELLO_RETAIL['WEBSITE_UUID']: {_reason(exc, 'website_uuid')}."
            errors.append(checks.Error(message, hint=_UUID_SHAPE, id="hr_middleware.E004"))
    valid_uuid = "00000000-0000-4000-8000-000000000000"
    for key, value in config.items():
        if key == "WEBSITE_UUID":
            continue
        name = known.get(key) if isinstance(key, str) else None
        if name is None:
            close = difflib.get_close_matches(str(key).upper(), known, n=1)
            errors.append(
                checks.Error(
                    f"HELLO_RETAIL[{key!r}] is not an option.",
                    hint=f"Did you mean {close[0]!r}?" if close else f"Options: {', '.join(known)}.",
                    id="hr_middleware.E005",
                )
            )
            continue
        try:
            option = import_callables({key: value})[key]
        except ImportError as exc:
            errors.append(
                checks.Error(
                    f"HELLO_RETAIL[{key!r}]: cannot import {value!r} ({exc}).",
                    hint="Give the callable itself or its dotted path, e.g. 'shop.tracking.consent'.",
                    id="hr_middleware.E008",
                )
            )
            continue
        try:
            Settings(website_uuid=valid_uuid, **{name: option})
        except TypeError as exc:
            message = f"HELLO_RETAIL[{key!r}]: {_reason(exc, name)}."
            errors.append(checks.Error(message, hint=_option_hint(key), id="hr_middleware.E006"))
        except ValueError as exc:
            message = f"HELLO_RETAIL[{key!r}]: {_reason(exc, name)}."
            errors.append(checks.Error(message, hint=_option_hint(key), id="hr_middleware.E007"))
    return errors
