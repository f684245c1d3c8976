"""Check the built wheel and sdist, from a venv where only the wheel is installed.

Run from outside the source tree so that ``import hr_middleware`` can only
find the installed wheel: a module missing from the package fails here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import tarfile
import zipfile
from pathlib import Path


def main(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hr_middleware/py.typed" in names, "py.typed missing from the wheel"
    # Read when a cookie `domain` is checked: Settings(domain=...) below needs it.
    assert "hr_middleware/_core/public_suffixes_icann.txt" in names, "public suffix rules missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hr_middleware = hr_middleware.pytest_plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()
    with tarfile.open(sdist) as archive:
        sdist_names = archive.getnames()
    # docs/django.md: the Django system checks' hints point at it; Makefile: the README's `make` targets.
    needed_files = ("hr_middleware/py.typed", "README.md", "setup.cfg", "pyproject.toml", "LICENSE")
    for needed in (*needed_files, "Makefile", "docs/django.md", "docs/client.md", "docs/reliability.md"):
        assert any(n.endswith("/" + needed) for n in sdist_names), f"{needed} missing from the sdist"

    import hr_middleware

    location = Path(hr_middleware.__file__).resolve()
    assert "site-packages" in location.parts, f"imported from {location}, not from the installed wheel"
    modules = [m.name for m in pkgutil.walk_packages(hr_middleware.__path__, "hr_middleware.")]
    for name in modules:
        importlib.import_module(name)
    for name in hr_middleware.__all__:
        assert getattr(hr_middleware, name) is not None
    shop = hr_middleware.Settings(website_uuid="12345678-90ab-4cde-8f01-234567890abc", domain=".shop.co.uk")
    assert shop.domain == ".shop.co.uk"
    refused = ""
    try:
        hr_middleware.Settings(website_uuid=shop.website_uuid, domain="co.uk")
    except ValueError as exc:
        refused = str(exc)
    assert "public suffix" in refused, f"domain='co.uk' not refused by the installed wheel: {refused!r}"
    plugins = [ep.value for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "hr_middleware"]
    assert plugins == ["hr_middleware.pytest_plugin"], plugins
    print(f"dist ok: {wheel.name}, {sdist.name}; imported {len(modules)} modules from {location.parent}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
