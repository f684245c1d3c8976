"""HTTP to Hello Retail: a sync transport (requests) and an async one (httpx).

Both POST a JSON body over a pooled keep-alive connection set (one per
transport instance, and per process: see :mod:`hr_middleware._hello_retail.forks`), hold a
*total* time budget per call (connect, TLS handshake, status line, headers and
body together, even when the server drips them), ask only for gzip or deflate
and inflate it in bounded steps with the size cap applied to the decoded
answer, and report every failure as an exception of :mod:`hr_middleware._hello_retail.errors`.
They keep no cookies: an answer's Set-Cookie must never be replayed for
another visitor.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import socket
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter

from .errors import InvalidResponseError, RequestTimeoutError, TransportError
from .forks import PerProcess, may_start_threads

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_RESPONSE_BYTES", "Answer", "AsyncTransport", "SyncTransport"]

#: Answers larger than this are refused (a mint answer is about 50 bytes; a
#: page of search results with many fields is a few hundred KiB).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024

#: Only the content codings both transports decode themselves, in bounded steps.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}

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


class _Decoder:
    """An answer's body, decoded from its content coding in bounded steps; the size cap counts decoded bytes."""

    def __init__(self, coding: str, max_bytes: int) -> None:
        coding = coding.strip().lower()
        self._inflate: zlib._Decompress | None
        if coding in ("", "identity"):
            self._inflate = None
        elif coding in ("gzip", "x-gzip", "deflate"):
            # 32 + MAX_WBITS reads a gzip or a zlib header, whichever comes.
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        else:  # br, zstd, a list of codings: none of them asked for
            raise InvalidResponseError("answer has a Content-Encoding that was not asked for")
        self.max_bytes = max_bytes
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
        self._size += len(decoded)
        if self._size > self.max_bytes:
            raise InvalidResponseError(f"answer larger than {self.max_bytes} bytes")
        self._chunks.append(decoded)

    def body(self) -> bytes:
        """The decoded body, once every byte was given to :meth:`steps`."""
        if self._inflate is not None and self._read and not self._inflate.eof:
            raise InvalidResponseError("compressed answer is cut short")
        return b"".join(self._chunks)


def _no_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class _Call:
    """One blocking exchange: its deadline and the sockets it uses, so that the caller can cut them off."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
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


class _HTTPConnection(urllib3.connection.HTTPConnection):
    """Reports each socket it opens or reuses to the exchange of its thread."""

    def _new_conn(self) -> socket.socket:
        return _watch(super()._new_conn())

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # kept alive since an earlier exchange
            _watch(self.sock)
        super().request(*args, **kwargs)


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    """Reports each socket it opens or reuses to the exchange of its thread."""

    def _new_conn(self) -> socket.socket:
        return _watch(super()._new_conn())

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:
            _watch(self.sock)
        super().request(*args, **kwargs)


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

    def post(self, url: str, body: bytes, *, timeout: float, headers: Mapping[str, str] | None = None) -> Answer:
        """POST *body* as JSON to *url*; the caller waits at most *timeout* seconds."""
        call = _Call(timeout)
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
        try:
            try:
                # Timeout(total=...) makes the wait for the status line use what is
                # left after connecting, not a fresh budget.
                response = session.post(
                    url,
                    data=body,
                    headers={**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS,
                    timeout=urllib3.Timeout(total=remaining),  # type: ignore[arg-type]
                    stream=True,
                    allow_redirects=False,
                )
            except requests.Timeout as exc:
                raise RequestTimeoutError(f"no answer within {call.timeout:g}s") from exc
            except requests.RequestException as exc:
                raise call.failure(exc) from exc
            try:
                content = self._read_body(response.raw, call)
            finally:
                response.close()
            return Answer(response.status_code, content)
        finally:
            _current.call = None
            call.end()

    def _read_body(self, raw: urllib3.BaseHTTPResponse, call: _Call) -> bytes:
        decoder = _Decoder(raw.headers.get("Content-Encoding", ""), self.max_bytes)
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

    def close(self) -> None:
        """Close the pooled connections; calls still running finish on their own."""
        connections = self._connections.peek()
        if connections is not None:
            connections.workers.shutdown(wait=False, cancel_futures=True)
            connections.session.close()


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


class AsyncTransport:
    """Non-blocking POSTs with httpx: a pooled ``AsyncClient`` per event loop."""

    def __init__(self, *, pool_size: int = 100, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        try:
            import httpx  # the [asgi] extra; imported here so the core works without it
        except ImportError as exc:
            raise ImportError(f"{MISSING_HTTPX} ({exc})", name=exc.name) from exc

        self._httpx = httpx
        self.max_bytes = max_bytes
        self._pool_size = pool_size
        # A forked child must not use its parent's connections (nor its lock).
        self._clients = PerProcess(_LoopClients)
        # Loading the CA bundle takes 50-90 ms, and httpx imports its
        # connection machinery on the first request (70-90 ms): both once here,
        # at start-up, not on an event loop in the middle of a visitor's request.
        self._ssl = _ssl_context()
        _import_first_request_modules()

    def _client_for_loop(self) -> httpx.AsyncClient:
        # A pooled connection belongs to the loop that opened it: each loop (a
        # worker's, a test runner's, async_to_sync's) gets its own client.
        loop = asyncio.get_running_loop()
        clients = self._clients.get()
        client = clients.by_loop.get(loop)
        if client is None:
            httpx = self._httpx
            client = httpx.AsyncClient(
                # The jar itself: httpx.Cookies(jar) would be copied into a
                # jar with the default policy, which keeps every cookie.
                cookies=_no_cookies(),
                follow_redirects=False,
                verify=self._ssl,
                limits=httpx.Limits(
                    max_connections=self._pool_size,
                    max_keepalive_connections=min(self._pool_size, 20),
                ),
            )
            with clients.lock:
                client = clients.by_loop.setdefault(loop, client)
        return client

    async def post(self, url: str, body: bytes, *, timeout: float, headers: Mapping[str, str] | None = None) -> Answer:
        """POST *body* as JSON to *url*; the whole exchange takes at most *timeout* seconds."""
        httpx = self._httpx
        client = self._client_for_loop()
        sent = {**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS
        opened: list[Any] = []

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                opened.append(info["return_value"])

        request = client.build_request(
            "POST", url, content=body, headers=sent, timeout=timeout, extensions={"trace": trace}
        )
        try:
            # wait_for bounds the whole exchange; httpx's own timeout bounds
            # each phase and is only the second line of defence.
            return await asyncio.wait_for(self._exchange(client, request), timeout)
        except asyncio.TimeoutError as exc:
            # httpcore closes a connection cancelled while it is in use, but
            # not one cancelled during its TLS handshake: hang that up here.
            for stream in opened:
                sock = stream.get_extra_info("socket")
                if sock is not None:
                    _shut_down(sock)
            raise RequestTimeoutError(f"no answer within {timeout:g}s") from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(f"no answer within {timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise TransportError(_describe(exc)) from exc
        except OSError as exc:  # pragma: no cover - httpx maps these; defensive
            raise TransportError(_describe(exc)) from exc

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request) -> Answer:
        response = await client.send(request, stream=True)
        try:
            decoder = _Decoder(response.headers.get("content-encoding", ""), self.max_bytes)
            # Raw bytes: httpx would inflate each chunk whole, on the loop, before any cap.
            async for chunk in response.aiter_raw():
                for _ in decoder.steps(chunk):
                    await asyncio.sleep(0)  # let the loop run between steps
            return Answer(response.status_code, decoder.body())
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections of the current loop's client."""
        clients = self._clients.peek()
        if clients is None:
            return
        with clients.lock:
            client = clients.by_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class _LoopClients:
    """What an :class:`AsyncTransport` owns in one process: an ``AsyncClient`` per event loop."""

    def __init__(self) -> None:
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self.lock = threading.Lock()


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
        try:
            importlib.import_module(name)
        except ImportError:  # another httpx/httpcore layout: it imports what it needs later
            pass


def _ssl_context() -> ssl.SSLContext:
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
