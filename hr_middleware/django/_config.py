"""Reading ``settings.HELLO_RETAIL``, and noticing when ``override_settings`` changes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from hr_middleware._core.settings import Settings

__all__ = ["SETTING", "Generation", "import_callables", "read_settings"]

#: The Django setting holding the options.
SETTING = "HELLO_RETAIL"
#: Options that may be given as a dotted path to a callable.
_IMPORTABLE = ("MINT_WHEN", "CONSENT", "WEBSITES")
_UNSET = object()


def import_callables(config: Mapping[str, Any]) -> dict[str, Any]:
    """*config* with dotted paths of ``MINT_WHEN`` / ``CONSENT`` / ``WEBSITES`` imported (ImportError if not found)."""
    return {
        key: import_string(value) if key in _IMPORTABLE and isinstance(value, str) else value
        for key, value in config.items()
    }


def read_settings(config: object = _UNSET) -> Settings:
    """The :class:`~hr_middleware.Settings` of ``settings.HELLO_RETAIL`` (or of *config*).

    Dotted paths of ``MINT_WHEN`` / ``CONSENT`` / ``WEBSITES`` are imported. Use it to build a
    client with the middleware's options:
    ``HelloRetailClient.from_settings(read_settings())``. Raises ``ValueError``
    or ``TypeError`` (what ``manage.py check`` reports) when they are invalid.
    """
    if config is _UNSET:
        config = getattr(django_settings, SETTING, None)
    if config is None:
        raise ValueError("settings.HELLO_RETAIL is missing")
    if not isinstance(config, Mapping):
        raise TypeError(f"settings.HELLO_RETAIL must be a dict, not {type(config).__name__}")
    return Settings.from_config(import_callables(config))


class Generation:
    """Bumped whenever ``override_settings`` changes ``HELLO_RETAIL``; middlewares then re-read it."""

    value = 0


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        Generation.value += 1


setting_changed.connect(_on_setting_changed, dispatch_uid="hr_middleware.django.setting_changed")
