"""Whether a cookie ``domain`` is a public suffix (``com``, ``co.uk``), where browsers refuse cookies.

The rules are the ICANN section of the Public Suffix List, vendored as
``public_suffixes_icann.txt`` beside this module (MPL-2.0, see its header) and
read only when a ``domain`` option is checked: the core needs no dependency for
it. The private section (``github.io``, ``myshopify.com``) is left out: a shop
can well be served under one of those, and a browser that follows the whole
list refuses its cookie there as for any suffix.

To update the file: ``pip download publicsuffixlist --no-deps --no-binary :all:``,
unpack it, and run ``python -m hr_middleware._core.public_suffixes
path/to/public_suffix_list.dat "publicsuffixlist VERSION from PyPI, on DATE" >
hr_middleware/_core/public_suffixes_icann.txt``.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources
from typing import NamedTuple

__all__ = ["is_public_suffix"]

DATA_FILE = "public_suffixes_icann.txt"


class _Rules(NamedTuple):
    exact: frozenset[str]
    #: ``x`` for a rule ``*.x``: every name one label below ``x`` is a suffix.
    wildcard: frozenset[str]
    #: ``x`` for a rule ``!x``: an exception to a wildcard.
    exception: frozenset[str]


@functools.lru_cache(maxsize=1)
def _rules() -> _Rules:
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="ascii")
    exact, wildcard, exception = set(), set(), set()
    for line in text.splitlines():
        if not line or line.startswith("//"):
            continue
        if line.startswith("!"):
            exception.add(line[1:])
        elif line.startswith("*."):
            wildcard.add(line[2:])
        else:
            exact.add(line)
    return _Rules(frozenset(exact), frozenset(wildcard), frozenset(exception))


def is_public_suffix(domain: str) -> bool:
    """Whether *domain* (ASCII, punycode for an international name; a leading dot
    is ignored) is a public suffix by the ICANN rules of the Public Suffix List.

    A single label (``com``, ``localhost``) always is: the list's default rule.
    """
    name = domain.lower().lstrip(".")
    if "." not in name:
        return True
    rules = _rules()
    if name in rules.exception:
        return False
    return name in rules.exact or name.partition(".")[2] in rules.wildcard


def _vendored(source: str, origin: str) -> str:
    """The rules of the ICANN section of the Public Suffix List *source*, one a line, in ASCII,
    under the list's licence notice, version and commit, and *origin* (where and when it was taken).

    International names become punycode (IDNA 2008 with UTS #46), the form the
    ``domain`` option takes.
    """
    import idna  # requests' own dependency; needed only to update the file

    section = source.split("// ===BEGIN ICANN DOMAINS===", 1)[1].split("// ===END ICANN DOMAINS===", 1)[0]
    head = source.split("// ===BEGIN ICANN DOMAINS===", 1)[0].splitlines()
    notice = [line for line in head[:3] if line.startswith("// ")]  # the MPL-2.0 notice
    header = [*notice, *(line for line in head if line.startswith(("// VERSION:", "// COMMIT:")))]
    rules = []
    for line in section.splitlines():
        rule = line.strip().split(" ", 1)[0]
        if not rule or rule.startswith("//"):
            continue
        mark = "!" if rule.startswith("!") else ""
        labels = [
            label if label == "*" or label.isascii() else idna.encode(label, uts46=True).decode("ascii")
            for label in rule.lstrip("!").lower().split(".")
        ]
        rules.append(mark + ".".join(labels))
    about = [f"// Taken from {origin}.", "// Its ICANN section only; international names in punycode."]
    return "\n".join([*header, *about, *rules]) + "\n"


if __name__ == "__main__":  # pragma: no cover - run by hand to update the file
    with open(sys.argv[1], encoding="utf-8") as source:
        sys.stdout.write(_vendored(source.read(), sys.argv[2]))
