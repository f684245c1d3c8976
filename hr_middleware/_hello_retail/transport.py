"""HTTP to Hello Retail: a sync transport (requests) and an async one (httpx).

Both POST a JSON body over a pooled keep-alive connection set (one per
transport instance, and per process: see :mod:`hr_middleware._hello_retail.forks`), hold a
*total* time budget per call (connect, TLS handshake, status line, headers and
body together, even when the server drips them), and bound what one answer
may make them read: :data:`HEAD_ALLOWANCE` bytes of head (status lines,
headers and any ``1xx`` interim answers) and a size cap per call on the
decoded body, with all the answers being read at once in the process holding
at most :data:`IN_FLIGHT_BUDGET` decoded bytes together. They ask for gzip or
deflate (or, when the caller asks for identity, refuse any coding), inflate in
bounded steps, and report every failure as an exception of
:mod:`hr_middleware._hello_retail.errors`. They keep no cookies: an answer's
Set-Cookie must never be replayed for another visitor.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import importlib
import json
import os
import socket
import ssl
import sys
import threading
import time
import weakref
import zlib
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter

from . import memory
from .errors import InvalidResponseError, RequestTimeoutError, TransportError
from .forks import PerProcess, may_start_threads

if TYPE_CHECKING:
    import httpx

__all__ = ["HEAD_ALLOWANCE", "IN_FLIGHT_BUDGET", "MAX_RESPONSE_BYTES", "Answer", "AsyncTransport", "SyncTransport"]

#: Answers larger than this are refused unless a call gives its own cap (a
#: page of search results with many fields is a few hundred KiB; the mint's
#: answer is about 50 bytes and gets a few KiB).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024

#: Bytes an answer's head may take: its status line and headers, and any 1xx
#: interim answers before them (Hello Retail's heads are under 1 KiB). Each
#: 1xx answer is a complete HTTP event, so without a count of its bytes an
#: endless stream of ``100 Continue`` meets neither a size cap nor a read
#: timeout. 16 KiB is at most ~650 such events for the parser.
HEAD_ALLOWANCE = 16 * 1024

#: Decoded bytes that all the answers being read at once in this process may
#: hold together: concurrency must not multiply the per-answer cap (200 gzip
#: bombs at 4 MiB each were 800 MiB). An answer that would go over it is refused.
IN_FLIGHT_BUDGET = 64 * 1024 * 1024

#: Only the content codings both transports decode themselves, in bounded steps.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}

#: The codings :class:`_Decoder` inflates, when the request asked for them.
_INFLATED = frozenset(("gzip", "x-gzip", "deflate"))

_T = TypeVar("_T")

#: At most this much is inflated at once: a compressed answer never takes more
#: than the size cap plus one step of memory, nor one long stretch of CPU.
_STEP = 64 * 1024


class Answer(NamedTuple):
    """An HTTP answer, read in full."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The decoded body; :class:`InvalidResponseError` if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            raise InvalidResponseError("answer is not JSON", status=self.status) from None


class _Connections(NamedTuple):
    """What a :class:`SyncTransport` owns in one process."""

    session: requests.Session
    workers: ThreadPoolExecutor


class _InFlight:
    """The decoded bytes held by the answers being read in one process, within :data:`IN_FLIGHT_BUDGET`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = 0

    def take(self, size: int) -> None:
        """Hold *size* more bytes; :class:`InvalidResponseError` if that would go over the budget."""
        with self._lock:
            if self.held + size > IN_FLIGHT_BUDGET:
                raise InvalidResponseError(f"answers being read hold more than {IN_FLIGHT_BUDGET} bytes together")
            self.held += size

    def give_back(self, size: int) -> None:
        """*size* bytes taken earlier are no longer held."""
        with self._lock:
            self.held -= size


#: A forked child starts with nothing held: its parent's answers are not its own.
_in_flight = PerProcess(_InFlight)


class _Decoder:
    """An answer's body, decoded from its content coding in bounded steps; the size cap counts decoded bytes.

    The decoded bytes it holds count against the process's :data:`IN_FLIGHT_BUDGET`
    until :meth:`release`.
    """

    def __init__(self, coding: str, max_bytes: int, *, inflate: bool) -> None:
        coding = coding.strip().lower()
        self._inflate: zlib._Decompress | None
        if coding in ("", "identity"):
            self._inflate = None
        elif inflate and coding in _INFLATED:
            # 32 + MAX_WBITS reads a gzip or a zlib header, whichever comes.
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        else:  # br, zstd, a list of codings, or any coding when identity was asked for
            raise InvalidResponseError("answer has a Content-Encoding that was not asked for")
        self.max_bytes = max_bytes
        self._in_flight = _in_flight.get()
        self._chunks: list[bytes] = []
        self._size = 0
        self._read = 0

    def steps(self, data: bytes) -> Iterator[None]:
        """Decode *data*, one step of at most ``_STEP`` bytes per iteration.

        An async caller yields to its event loop between steps.
        """
        self._read += len(data)
        if self._inflate is None:
            self._keep(data)
            return
        if self._read > self.max_bytes:
            raise InvalidResponseError(f"answer larger than {self.max_bytes} bytes")
        pending = data
        while not self._inflate.eof:
            try:
                decoded = self._inflate.decompress(pending, _STEP)
            except zlib.error:
                raise InvalidResponseError("compressed answer is corrupt") from None
            self._keep(decoded)
            pending = self._inflate.unconsumed_tail
            if not pending and len(decoded) < _STEP:
                return  # all of data is decoded
            yield

    def _keep(self, decoded: bytes) -> None:
        if self._size + len(decoded) > self.max_bytes:
            raise InvalidResponseError(f"answer larger than {self.max_bytes} bytes")
        self._in_flight.take(len(decoded))
        self._size += len(decoded)
        self._chunks.append(decoded)

    def body(self) -> bytes:
        """The decoded body, once every byte was given to :meth:`steps`."""
        if self._inflate is not None and self._read and not self._inflate.eof:
            raise InvalidResponseError("compressed answer is cut short")
        return b"".join(self._chunks)

    def release(self) -> None:
        """The answer is read or refused: its bytes no longer count against the budget."""
        self._in_flight.give_back(self._size)
        self._size = 0
        self._chunks = []


def _request_headers(headers: Mapping[str, str] | None) -> tuple[Mapping[str, str], bool]:
    """The headers to send with *headers* added, and whether they ask for a compressed answer."""
    if not headers:
        return _JSON_HEADERS, True
    given = {name.lower() for name in headers}
    sent = {name: value for name, value in _JSON_HEADERS.items() if name.lower() not in given}
    sent.update(headers)
    accepted = ",".join(value for name, value in sent.items() if name.lower() == "accept-encoding")
    codings = {part.split(";")[0].strip().lower() for part in accepted.split(",")}
    return sent, bool(codings & _INFLATED)


def _no_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class _Call:
    """One blocking exchange: its deadline and the sockets it uses, so that the caller can cut them off."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + timeout
        self._lock = threading.Lock()
        # Duplicates of the exchange's sockets: a TLS socket's own descriptor
        # changes hands during the handshake, a duplicate stays valid throughout.
        self._sockets: list[socket.socket] = []
        self._over = False
        self._cut = False

    def watch(self, sock: socket.socket) -> None:
        """The exchange uses *sock* (new, or kept alive since an earlier call)."""
        try:
            duplicate = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        except OSError:  # already closed: nothing left to cut
            return
        with self._lock:
            if not self._over:
                self._sockets.append(duplicate)
                return
        if self._cut:  # cut while it was being opened
            _shut_down(duplicate)
        duplicate.close()

    def cut(self) -> None:
        """The deadline passed: end every read of the exchange now."""
        with self._lock:
            self._cut = self._over = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut_down(sock)
            sock.close()

    def end(self) -> None:
        """The exchange is over: forget its sockets (a kept-alive one stays open)."""
        with self._lock:
            self._over = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def failure(self, exc: BaseException) -> TransportError:
        """What a transport error means: a timeout when it came from :meth:`cut`."""
        if self._cut:
            return RequestTimeoutError(f"no answer within {self.timeout:g}s")
        return TransportError(_describe(exc))


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # the peer or our side closed it already
        pass


class _ThreadCall(threading.local):
    call: _Call | None = None


#: The exchange the current worker thread runs, for the connections it uses.
_current = _ThreadCall()


def _watch(sock: socket.socket) -> socket.socket:
    call = _current.call
    if call is not None:
        call.watch(sock)
    return sock


#: Why an answer is refused when its head goes over :data:`HEAD_ALLOWANCE`.
_HEAD_TOO_LARGE = f"answer's head larger than {HEAD_ALLOWANCE} bytes (status line, headers and 1xx answers)"


class _HeadLines:
    """A response's file while its head is read: hands out lines until :data:`HEAD_ALLOWANCE` bytes are spent."""

    def __init__(self, fp: Any) -> None:
        self._fp = fp
        self._left = HEAD_ALLOWANCE

    def readline(self, limit: int = -1) -> bytes:
        # Never more than one byte past the allowance: that byte refuses the answer.
        size = self._left + 1 if limit < 0 else min(limit, self._left + 1)
        line: bytes = self._fp.readline(size)
        self._left -= len(line)
        if self._left < 0:
            raise InvalidResponseError(_HEAD_TOO_LARGE)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _BoundedHeadResponse(http.client.HTTPResponse):
    """http.client's response, whose head may take :data:`HEAD_ALLOWANCE` bytes.

    ``begin()`` reads 1xx interim answers in a loop that ends only at a final
    status line: an endless ``100 Continue`` would hold it until the deadline.
    """

    def begin(self) -> None:
        fp = self.fp
        self.fp = _HeadLines(fp)  # type: ignore[assignment]
        try:
            super().begin()
        finally:
            self.fp = fp


class _HTTPConnection(urllib3.connection.HTTPConnection):
    """Reports each socket it opens or reuses to the exchange of its thread; bounds each answer's head."""

    response_class = _BoundedHeadResponse

    def _new_conn(self) -> socket.socket:
        return _watch(super()._new_conn())

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # kept alive since an earlier exchange
            _watch(self.sock)
        super().request(*args, **kwargs)


class _HTTPSConnection(_HTTPConnection, urllib3.connection.HTTPSConnection):
    """:class:`_HTTPConnection` over TLS (its methods come before urllib3's TLS connection's)."""


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: dict[str, type[urllib3.HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with connections whose sockets the caller can cut off."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.ProxyManager:
        manager: urllib3.ProxyManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS brings its own connections
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


class SyncTransport:
    """Blocking POSTs with requests: a pooled ``Session``, safe to share between threads.

    The exchange runs on a small pool of worker threads while the caller waits
    at most *timeout*: nothing (a resolver that hangs, a server dripping its
    headers) can hold the request thread longer. At the deadline the caller
    shuts the exchange's sockets down, so a worker is freed then too, whatever
    phase it was in (TLS handshake, status line, headers, body); only a hanging
    DNS resolver holds it longer.
    """

    def __init__(self, *, pool_size: int = 16, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pool_size = pool_size
        # A forked child must not use its parent's sockets or worker threads.
        self._connections = PerProcess(self._connect)

    def _connect(self) -> _Connections:
        session = requests.Session()
        session.cookies = _no_cookies()  # type: ignore[assignment]
        adapter = _Adapter(pool_connections=2, pool_maxsize=self._pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # Threads start on the first call, never at import or construction.
        workers = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="hr-middleware-http")
        return _Connections(session, workers)

    def post(
        self,
        url: str,
        body: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Answer:
        """POST *body* as JSON to *url*; the caller waits at most *timeout* seconds.

        *headers* are added to the JSON ones (``Accept-Encoding: identity``
        refuses any compressed answer unread); *max_bytes* caps the decoded
        answer (default: the transport's ``max_bytes``).
        """
        cap = self.max_bytes if max_bytes is None else max_bytes
        answered = _in_memory(url, body, timeout, headers, cap)
        if answered is not None:  # a fake Hello Retail in memory (hr_middleware.testing)
            return answered
        call = _Call(timeout, cap)
        session, workers = self._connections.get()
        if not may_start_threads():
            # A process uWSGI will fork from C (forks.may_start_threads): no worker
            # thread of ours may hold the GIL then. The exchange runs here, bounded
            # by its socket timeouts only: it loads the app, it serves no visitor.
            return self._exchange(session, url, body, headers, call)
        future = workers.submit(self._exchange, session, url, body, headers, call)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            # A socket read times out only when no byte comes for that long: a
            # server dripping its headers would hold the worker for as long as
            # it likes. Shutting the sockets down ends the read at once.
            call.cut()
            raise RequestTimeoutError(f"no answer within {timeout:g}s") from None

    def _exchange(
        self, session: requests.Session, url: str, body: bytes, headers: Mapping[str, str] | None, call: _Call
    ) -> Answer:
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeoutError(f"no answer within {call.timeout:g}s")
        _current.call = call  # the connections this thread opens or reuses report their socket to it
        sent, inflate = _request_headers(headers)
        try:
            try:
                # Timeout(total=...) makes the wait for the status line use what is
                # left after connecting, not a fresh budget.
                response = session.post(
                    url,
                    data=body,
                    headers=sent,
                    timeout=urllib3.Timeout(total=remaining),  # type: ignore[arg-type]
                    stream=True,
                    allow_redirects=False,
                )
            except requests.Timeout as exc:
                raise RequestTimeoutError(f"no answer within {call.timeout:g}s") from exc
            except requests.RequestException as exc:
                raise call.failure(exc) from exc
            try:
                content = self._read_body(response.raw, call, inflate)
            finally:
                response.close()
            return Answer(response.status_code, content)
        finally:
            _current.call = None
            call.end()

    def _read_body(self, raw: urllib3.BaseHTTPResponse, call: _Call, inflate: bool) -> bytes:
        decoder = _Decoder(raw.headers.get("Content-Encoding", ""), call.max_bytes, inflate=inflate)
        # Every socket read gets only the time left (and the caller cuts the
        # socket at the deadline), so a dripped body still ends in time.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        read1 = _reader(raw)
        try:
            while True:
                remaining = call.deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeoutError(f"answer not read within {call.timeout:g}s")
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = read1(65536)
                if not chunk:
                    # Back to the pool for keep-alive (urllib3 2 does it by itself;
                    # the fallback reader of older ones bypasses its bookkeeping).
                    raw.release_conn()
                    return decoder.body()
                for _ in decoder.steps(chunk):
                    pass
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise RequestTimeoutError(f"answer not read within {call.timeout:g}s") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise call.failure(exc) from exc
        finally:
            decoder.release()

    def close(self) -> None:
        """Close the pooled connections; calls still running finish on their own."""
        connections = self._connections.peek()
        if connections is not None:
            connections.workers.shutdown(wait=False, cancel_futures=True)
            connections.session.close()


def _in_memory(
    url: str, body: bytes, timeout: float, headers: Mapping[str, str] | None, max_bytes: int
) -> Answer | None:
    """The answer of a fake Hello Retail in memory at *url* (``hr_middleware.testing``), or
    None (a real call): what either transport would have made of its reply."""
    answer = memory.answerer(url)
    if answer is None:
        return None
    return answer(url, body, timeout=timeout, headers=_request_headers(headers)[0], max_bytes=max_bytes)


def _reader(raw: urllib3.BaseHTTPResponse) -> Callable[[int], bytes]:
    """A function reading what one socket read brings (at most n bytes), still encoded."""
    if hasattr(raw, "read1"):
        return functools.partial(raw.read1, decode_content=False)
    # urllib3 < 2.2 has no read1(); http.client's own keeps the per-read
    # deadline. Failing that, read(n), bounded per read by the socket timeout.
    fp = getattr(raw, "_fp", None)
    if fp is not None and hasattr(fp, "read1"):
        return fp.read1  # type: ignore[no-any-return]
    return functools.partial(raw.read, decode_content=False)


#: The ImportError's message when httpx, which the async side needs, is not installed.
MISSING_HTTPX = (
    "the ASGI middleware, async Django and AsyncHelloRetailClient talk to Hello Retail with httpx: "
    'pip install "hr-middleware[asgi]"'
)


def import_httpx() -> Any:
    """The httpx module, or :class:`ImportError` naming the extra that installs it.

    Imported when first needed, so that the core works without it; an ASGI
    middleware asks when it is built, so that a missing extra refuses the start-up.
    """
    try:
        import httpx  # the [asgi] extra
    except ImportError as exc:
        raise ImportError(f"{MISSING_HTTPX} ({exc})", name=exc.name) from exc
    return httpx


class AsyncTransport:
    """Non-blocking POSTs with httpx: a pooled ``AsyncClient`` per event loop, closed with its loop.

    A loop's client is closed when the loop shuts down (``asyncio.run``,
    ``uvloop.run``, asgiref's ``async_to_sync``: anything that calls the
    loop's ``shutdown_asyncgens()``), by :meth:`aclose` on that loop, or on
    its loop when the transport is garbage-collected; a loop closed without a
    shutdown is forgotten when the next loop comes. So one transport made at
    start-up serves a new loop per request without keeping loops or sockets.

    Args:
        pool_size: connections per loop.
        max_bytes: the default cap of a decoded answer.
        api_url: the base URL it will talk to, if known. An ``http://`` one
            never needs the CA bundle: httpx then gets a TLS context that
            refuses every certificate. Otherwise the process's one CA context
            is made now (at start-up, not on an event loop), or reused.
    """

    def __init__(
        self, *, pool_size: int = 100, max_bytes: int = MAX_RESPONSE_BYTES, api_url: str | None = None
    ) -> None:
        self._httpx = import_httpx()
        self.max_bytes = max_bytes
        self._pool_size = pool_size
        # A forked child must not use its parent's connections (nor its lock).
        self._clients = PerProcess(_LoopClients)
        #: The TLS context every client of this transport uses (shared by every transport of the process).
        self.tls = _TLS.refusing() if api_url is not None and api_url.lower().startswith("http:") else _TLS.verifying()
        # httpx imports its connection machinery on the first request (70-90
        # ms): once here, at start-up, not on an event loop in the middle of a
        # visitor's request. Later constructions find them imported.
        _import_first_request_modules()

    def _new_client(self) -> httpx.AsyncClient:
        client: httpx.AsyncClient = self._httpx.AsyncClient(
            # The jar itself: httpx.Cookies(jar) would be copied into a
            # jar with the default policy, which keeps every cookie.
            cookies=_no_cookies(),
            follow_redirects=False,
            verify=self.tls,
            limits=self._httpx.Limits(
                max_connections=self._pool_size,
                max_keepalive_connections=min(self._pool_size, 20),
            ),
        )
        _count_reads(client)
        return client

    async def _client_for_loop(self) -> httpx.AsyncClient:
        # A pooled connection belongs to the loop that opened it: each loop (a
        # worker's, a test runner's, async_to_sync's) gets its own client.
        loop = asyncio.get_running_loop()
        clients = self._clients.get()
        kept = clients.by_loop.get(loop)
        if kept is not None:
            return kept.client
        return await clients.open(loop, self._new_client())

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Answer:
        """POST *body* as JSON to *url*; the whole exchange takes at most *timeout* seconds.

        *headers* are added to the JSON ones (``Accept-Encoding: identity``
        refuses any compressed answer unread); *max_bytes* caps the decoded
        answer (default: the transport's ``max_bytes``).
        """
        cap = self.max_bytes if max_bytes is None else max_bytes
        answered = _in_memory(url, body, timeout, headers, cap)
        if answered is not None:  # a fake Hello Retail in memory (hr_middleware.testing)
            return answered
        httpx = self._httpx
        client = await self._client_for_loop()
        sent, inflate = _request_headers(headers)
        exchange = _Exchange(cap, inflate)
        request = client.build_request("POST", url, content=body, headers=sent, timeout=timeout)
        try:
            # The deadline bounds the whole exchange; httpx's own timeout bounds
            # each phase and is only the second line of defence.
            return await _within(timeout, self._exchange(client, request, exchange))
        except TimeoutError as exc:
            # httpcore closes a connection cancelled while it is in use, but
            # not one cancelled during its TLS handshake: hang that up here.
            exchange.hang_up()
            raise RequestTimeoutError(f"no answer within {timeout:g}s") from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(f"no answer within {timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise TransportError(_describe(exc)) from exc
        except OSError as exc:  # pragma: no cover - httpx maps these; defensive
            raise TransportError(_describe(exc)) from exc
        finally:
            exchange.end()

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request, exchange: _Exchange) -> Answer:
        # The connections read from in this task count their bytes to it.
        token = _current_exchange.set(exchange)
        try:
            response = await client.send(request, stream=True)
            exchange.head_read()
            try:
                decoder = _Decoder(
                    response.headers.get("content-encoding", ""), exchange.max_bytes, inflate=exchange.inflate
                )
                try:
                    # Raw bytes: httpx would inflate each chunk whole, on the loop, before any cap.
                    async for chunk in response.aiter_raw():
                        for _ in decoder.steps(chunk):
                            await asyncio.sleep(0)  # let the loop run between steps
                    return Answer(response.status_code, decoder.body())
                finally:
                    decoder.release()
            finally:
                await response.aclose()
        finally:
            _current_exchange.reset(token)

    async def aclose(self) -> None:
        """Close the pooled connections of the current loop's client."""
        clients = self._clients.peek()
        if clients is None:
            return
        with clients.lock:
            kept = clients.by_loop.pop(asyncio.get_running_loop(), None)
        if kept is not None:
            await kept.closer.aclose()  # closes the client, as the loop's shutdown would
            await kept.client.aclose()  # a no-op then; closes it if its closer never started


class _Kept(NamedTuple):
    """A loop's client, and the async generator whose closing closes it."""

    client: httpx.AsyncClient
    closer: AsyncGenerator[None, None]


class _LoopClients:
    """What an :class:`AsyncTransport` owns in one process: an ``AsyncClient`` per event loop."""

    def __init__(self) -> None:
        self.by_loop: dict[asyncio.AbstractEventLoop, _Kept] = {}
        self.lock = threading.Lock()

    async def open(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> httpx.AsyncClient:
        """Keep *client* for *loop* (the running one) until the loop shuts down."""
        closer = _close_with_loop(weakref.ref(self), loop, client)
        with self.lock:
            # A loop closed without shutdown_asyncgens() never said it ended;
            # its client can only be garbage now (the collector closes its sockets).
            gone = [self.by_loop.pop(old) for old in [old for old in self.by_loop if old.is_closed()]]
            self.by_loop[loop] = _Kept(client, closer)
        del gone  # outside the lock: dropping them runs finalizers
        # Its first step registers the generator with the loop's asyncgen
        # hooks; it does not suspend, so no other task gets in between.
        await closer.__anext__()
        return client

    def forget(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        """*client* of *loop* is closing: a later call on the loop makes a new one."""
        with self.lock:
            kept = self.by_loop.get(loop)
            if kept is not None and kept.client is client:
                del self.by_loop[loop]


async def _close_with_loop(
    clients: weakref.ref[_LoopClients], loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    """Waits at its one ``yield`` while *client* is in use; being closed closes *client*.

    The loop closes it in ``shutdown_asyncgens()``; :meth:`AsyncTransport.aclose`
    closes it; and when the transport is garbage-collected while the loop
    runs, the loop's asyncgen finalizer closes it on the loop: the connections
    end cleanly, without "unclosed transport" warnings.
    """
    try:
        yield
    finally:
        table = clients()
        if table is not None:
            table.forget(loop, client)
        await client.aclose()


# -- one exchange's reads: the head allowance and the size cap, counted at the network stream --------

#: The async exchange running in the current task: its connections count what they read against it.
_current_exchange: ContextVar[_Exchange | None] = ContextVar("hr_middleware_exchange", default=None)


class _Exchange:
    """One async exchange: what it may still read, and the connections it opened (to hang up at its deadline)."""

    __slots__ = ("_in_head", "_limit", "_read", "_sockets", "inflate", "max_bytes")

    def __init__(self, max_bytes: int, inflate: bool) -> None:
        self.max_bytes = max_bytes
        self.inflate = inflate
        # The body's framing (chunk sizes) comes out of the head allowance.
        self._limit = HEAD_ALLOWANCE + max_bytes
        self._read = 0
        self._in_head = True
        # Duplicates of the sockets it opened, taken while they are open: an
        # event loop's socket object may be gone (uvloop, a closed transport)
        # or refuse shutdown() (uvloop) by the deadline, and a bare descriptor
        # number may belong to another connection by then.
        self._sockets: list[socket.socket] = []

    def may_read(self, size: int) -> int:
        """Before a read of up to *size* bytes: how many it may bring.

        In the head, at most what is left of the allowance (so the parser never
        gets more 1xx answers at once than fit in it). Refuses the answer once
        the head allowance, or all that the exchange may read, is used up.
        """
        if self._in_head:
            left = HEAD_ALLOWANCE - self._read
            if left <= 0:
                raise InvalidResponseError(_HEAD_TOO_LARGE)
            return min(size, left)
        if self._read >= self._limit:
            raise InvalidResponseError(f"answer larger than {self.max_bytes} bytes")
        return size

    def count(self, size: int) -> None:
        """After a read: *size* bytes came."""
        self._read += size

    def head_read(self) -> None:
        """The final answer's headers are in: the rest is the body."""
        self._in_head = False

    def opened(self, sock: Any) -> None:
        """The exchange opened a connection; *sock* is its event loop's socket object."""
        if sock is None:
            return
        try:
            descriptor = os.dup(sock.fileno())
        except OSError:  # closed already: nothing to hang up
            return
        try:
            self._sockets.append(socket.socket(fileno=descriptor))
        except OSError:  # not a socket after all
            os.close(descriptor)

    def hang_up(self) -> None:
        """The deadline passed: shut down every connection this exchange opened, so that its reads end now.

        A shutdown through a duplicate ends the connection for every descriptor of it.
        """
        for sock in self._sockets:
            _shut_down(sock)

    def end(self) -> None:
        """The exchange is over: drop its duplicates (the connections stay as they are)."""
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


class _CountingStream:
    """An httpcore network stream whose reads count against the current task's :class:`_Exchange`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        exchange = _current_exchange.get()
        if exchange is not None:
            max_bytes = exchange.may_read(max_bytes)
        data: bytes = await self._stream.read(max_bytes, timeout)
        if exchange is not None:
            exchange.count(len(data))
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> _CountingStream:
        return _CountingStream(await self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CountingBackend:
    """httpcore's network backend (its supported extension point, in 0.17 and 1.x) with :class:`_CountingStream`s.

    It also tells the current exchange which connections it opened.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _CountingStream:
        return self._opened(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _CountingStream:
        return self._opened(await self._backend.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)

    def _opened(self, stream: Any) -> _CountingStream:
        exchange = _current_exchange.get()
        if exchange is not None:
            exchange.opened(stream.get_extra_info("socket"))
        return _CountingStream(stream)


def _count_reads(client: httpx.AsyncClient) -> None:
    """Give each connection pool of *client* (direct, and via proxies from the environment) a :class:`_CountingBackend`.

    httpx builds the pools and does not pass a backend on: its transports keep
    the pool as ``_pool``, and httpcore's pools the backend as ``_network_backend``
    (httpx 0.24-0.28, httpcore 0.17-1.0; the tests of the head allowance fail
    if a later release moves them).
    """
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _CountingBackend):
            pool._network_backend = _CountingBackend(backend)  # type: ignore[union-attr]


# -- the time budget ---------------------------------------------------------------------------------

if sys.version_info >= (3, 11):

    async def _within(timeout: float, work: Coroutine[Any, Any, _T]) -> _T:
        """Await *work* in this task for at most *timeout* seconds; TimeoutError after that."""
        async with asyncio.timeout(timeout):
            return await work

else:

    async def _within(timeout: float, work: Coroutine[Any, Any, _T]) -> _T:
        """Await *work* for at most *timeout* seconds; TimeoutError after that.

        Not ``asyncio.wait_for``: before 3.12 it returns the result when the
        caller is cancelled just as *work* ends (bpo-42130), so a cancelled
        task went on. Nor a timer cancelling this task: 3.10's tasks do not
        count cancels, so a cancel from elsewhere landing in the same loop turn
        as the timer's could not be told apart and would be swallowed. *work*
        runs in a task of its own; any cancel of this one cancels it and
        propagates.
        """
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait((task,), timeout=timeout)
        except BaseException:
            await _cancelled(task)
            raise
        if not done:
            await _cancelled(task)
            raise TimeoutError
        return task.result()

    async def _cancelled(task: asyncio.Future[Any]) -> None:
        task.cancel()
        try:
            await asyncio.wait((task,))
        finally:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: its failure is the caller's timeout or cancel now


# -- once per process: the first request's imports, the TLS contexts ---------------------------------

#: What httpx imports lazily on its first request on an asyncio loop.
_FIRST_REQUEST_MODULES = (
    "httpcore",
    "httpcore._backends.auto",
    "httpcore._backends.anyio",
    "httpcore._async.http11",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "h11",
)


def _import_first_request_modules() -> None:
    for name in _FIRST_REQUEST_MODULES:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:  # another httpx/httpcore layout: it imports what it needs later
            pass


class _TLSContexts:
    """The process's TLS contexts for httpx, each made once, when first needed, and shared by every transport.

    An ``ssl.SSLContext`` holds no connection: a forked child may use its
    parent's. Loading the CA bundle takes 20-90 ms; a context that refuses
    every certificate, 0.2 ms.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verifying: ssl.SSLContext | None = None
        self._refusing: ssl.SSLContext | None = None

    def verifying(self) -> ssl.SSLContext:
        """The context that verifies Hello Retail's certificate against certifi's CA bundle."""
        context = self._verifying
        if context is None:
            with self._lock:
                if self._verifying is None:
                    self._verifying = _ca_context()
                context = self._verifying
        return context

    def refusing(self) -> ssl.SSLContext:
        """A strict context that trusts no CA, for a transport meant for ``http://`` only: should it
        ever meet https, it fails closed. Given to httpx, it also keeps httpx from loading certifi itself."""
        context = self._refusing
        if context is None:
            with self._lock:
                if self._refusing is None:
                    self._refusing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA to trust
                context = self._refusing
        return context


_TLS = _TLSContexts()


def _ca_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx and requests bring certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _describe(exc: BaseException) -> str:
    """A one-line reason for the log: the innermost cause's type and message."""
    inner: BaseException = exc
    for _ in range(10):  # bounded: a context chain may loop
        nxt = inner.__cause__ or inner.__context__
        if nxt is None:
            break
        inner = nxt
    text = str(inner).strip() or str(exc).strip()
    return f"{type(inner).__name__}: {text}"[:300]
