"""Fork safety: state that belongs to one process, rebuilt in a forked child.

A server that loads the app and then forks its workers (gunicorn ``--preload``,
uWSGI without ``lazy-apps``, any master that minted or called Hello Retail
first) copies every object into every worker. Sockets, thread pools, locks,
prefetched ids and the breaker's verdict must not be copied: two workers would
hand one id to two visitors, read each other's answers on one socket, or wait
for worker threads that do not exist in the child.

Each such resource is held by a :class:`PerProcess`, which hands out the value
made in the current process and makes a fresh one on first use in a new one.
Two mechanisms notice a fork: ``os.register_at_fork`` drops every live value in
the child at once, and a process id check on use covers forks that skip
Python's hooks (uWSGI forks from C and calls them only when told to). The check
runs on the mint and client call path only, never for a returning visitor.

A fork that skips Python's hooks must also find no thread of ours running:
the child would inherit a GIL held by a thread it does not have, and hang
before its first request. :func:`may_start_threads` says whether this process
may start one; where it may not, the prefetch pool is not refilled and the
sync transport's exchange runs in the calling thread.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerProcess", "may_start_threads"]

_T = TypeVar("_T")

# No process has id 0: a slot with it is made again on first use.
_NOWHERE = 0


class PerProcess(Generic[_T]):
    """A value owned by one process: a forked child gets its own from *factory*.

    ``get()`` returns the value made in the current process. The first value
    is made at once, in the constructing process; after a fork the child makes
    its own on first use and never sees its parent's.
    """

    __slots__ = ("__weakref__", "_factory", "_slot", "_values")

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory = factory
        value = factory()
        pid = os.getpid()
        self._values: dict[int, _T] = {pid: value}
        self._slot: tuple[int, _T | None] = (pid, value)
        _live.add(self)

    def get(self) -> _T:
        """This process's value."""
        pid, value = self._slot
        if pid == os.getpid():
            return value  # type: ignore[return-value]  # only None in the _NOWHERE slot
        return self._renew()

    def peek(self) -> _T | None:
        """This process's value if it has one already, without making it."""
        pid, value = self._slot
        return value if pid == os.getpid() else None

    def _renew(self) -> _T:
        pid = os.getpid()
        value = self._values.get(pid)
        if value is None:
            # Threads of a new child may get here together; setdefault is
            # atomic, so they all agree on one value (the others are unused).
            value = self._values.setdefault(pid, self._factory())
        self._slot = (pid, value)
        for other in list(self._values):
            if other != pid:
                self._values.pop(other, None)
        return value

    def _forget(self) -> None:
        """In a forked child: drop the parent's value (it is garbage once unreferenced)."""
        self._values = {}
        self._slot = (_NOWHERE, None)


def may_start_threads() -> bool:
    """May this process start a thread of ours (the prefetch refill, the sync transport's workers)?

    Not in a process that uWSGI will fork from C: its master, or without a
    master the process that loads the app before it forks the workers. There
    ``uwsgi.worker_id()`` is 0 (a worker's is 1 or more; a mule or a spooler,
    forked already, has its own id or flag). uWSGI's ``fork()`` skips Python's
    fork hooks unless ``--py-call-uwsgi-fork-hooks``: a thread of ours holding
    the GIL at that moment leaves each worker a GIL owned by a thread it does
    not have, and the worker hangs before its first request. That process
    loads the app; it serves no visitor, so the inline work costs nothing.

    Asked on every mint and every sync call, not once: without a master, the
    process that loaded the app goes on as worker 1, with the same pid.
    """
    uwsgi = sys.modules.get("uwsgi")  # uWSGI puts its module there before it loads the app
    if uwsgi is None:
        return True
    try:
        worker_id, mule_id, is_spooler = uwsgi.worker_id, uwsgi.mule_id, uwsgi.i_am_the_spooler
    except AttributeError:  # some other module of that name (a stub for type checks): not uWSGI
        return True
    return bool(worker_id() > 0 or mule_id() > 0 or is_spooler())


_live: weakref.WeakSet[PerProcess[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has one thread here, so iterating and resetting is safe.
    for holder in list(_live):
        holder._forget()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
