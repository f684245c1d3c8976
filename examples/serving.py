"""How the demos listen: ``HOST`` and ``PORT`` from the environment, the port bound before any banner.

``make demo`` and ``make demo-asgi`` pass ``HOST`` (default 127.0.0.1; ``HOST=0.0.0.0`` in a
container or a VM) and ``PORT``. The socket is bound first, so a port that is taken ends
the demo with one line saying so (and how to pick another) instead of a banner followed by
a traceback.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import NoReturn

__all__ = ["DEFAULT_HOST", "address", "banner", "bind", "port_taken"]

#: Where the demos listen unless ``HOST`` says otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"


def address(default_port: int) -> tuple[str, int]:
    """The ``(host, port)`` to listen on: ``HOST`` and ``PORT`` from the environment, or the defaults."""
    return os.environ.get("HOST") or DEFAULT_HOST, int(os.environ.get("PORT") or default_port)


def port_taken(host: str, port: int, error: OSError, command: str) -> NoReturn:
    """Say that *host*:*port* cannot be listened on, and how to choose another (*command* is the
    demo's ``make`` command); exit with status 1."""
    print(
        f"\n  The demo cannot listen on {host}:{port}: {error.strerror or error}.\n"
        f"  Stop what uses it, or choose another port: {command} PORT={port + 1}\n",
        file=sys.stderr,
        flush=True,
    )
    sys.exit(1)


def bind(host: str, port: int, command: str) -> socket.socket:
    """A socket listening on *host*:*port* (IPv4 or IPv6, as *host* is); exits via :func:`port_taken` if it cannot."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a restart does not wait
        try:
            sock.bind(where)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as error:
        port_taken(host, port, error, command)
    return sock


def banner(host: str, port: int, description: str) -> None:
    """The line that says where the demo shop is, once it listens."""
    shown = f"[{host}]" if ":" in host else host
    print(f"\n  Demo shop: http://{shown}:{port}/  (ids from {description})\n", flush=True)
