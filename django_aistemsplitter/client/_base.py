"""What the blocking and the asyncio clients share: setup, repr and the method table.

The public methods are declared once, here, as descriptors around the core's
operations. Reading one from a client binds it to that client's driver, so
``AiStemSplitter().get_split`` returns a :class:`Split` and
``AsyncAiStemSplitter().get_split`` returns an awaitable of one; the overloads of
``__get__`` tell type checkers which, keyed on the client's httpx class, so this
module never imports the drivers that build on it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import (
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    TypeVar,
    cast,
    overload,
)

import httpx

from django_aistemsplitter.client._core import Config, Core
from django_aistemsplitter.client._effects import Op, Stepper, Walk
from django_aistemsplitter.client.downloads import DownloadPolicy
from django_aistemsplitter.client.polling import DEFAULT_MAX_RETRY_AFTER
from django_aistemsplitter.client.types import Pager, Split

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H")


class operation(Generic[P, R]):
    """A core operation as a client method: runs to ``R``, or to an awaitable of ``R``."""

    def __init__(self, op: Callable[Concatenate[Core, P], Op[R]]) -> None:
        self.op = op
        functools.update_wrapper(cast(Any, self), op)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, R]: ...
    @overload
    def __get__(self, obj: BaseClient[httpx.Client], owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, obj: BaseClient[httpx.AsyncClient], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, obj: BaseClient[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        op, core, run = self.op, obj._core, obj._run
        if obj.asynchronous:
            # A real coroutine function, so inspect.iscoroutinefunction() and the
            # frameworks that rely on it (Django's async detection) see one.
            async def call(*args: Any, **kwargs: Any) -> Any:
                return await run(op(core, *args, **kwargs))

            return functools.wraps(op)(call)
        return functools.wraps(op)(lambda *args, **kwargs: run(op(core, *args, **kwargs)))


class walker(Generic[P]):
    """A core walk as a client method: an iterator, or an async iterator, of splits."""

    def __init__(self, walk: Callable[Concatenate[Core, P], Walk]) -> None:
        self.walk = walk
        functools.update_wrapper(cast(Any, self), walk)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> walker[P]: ...
    @overload
    def __get__(
        self, obj: BaseClient[httpx.Client], owner: type[Any]
    ) -> Callable[P, Iterator[Split]]: ...
    @overload
    def __get__(
        self, obj: BaseClient[httpx.AsyncClient], owner: type[Any]
    ) -> Callable[P, AsyncIterator[Split]]: ...
    def __get__(self, obj: BaseClient[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        walk, core, steps = self.walk, obj._core, obj._steps
        return functools.wraps(walk)(
            lambda *args, **kwargs: steps(Stepper(walk(core, *args, **kwargs)))
        )


class pure(Generic[P, R]):
    """A core method without I/O as a plain client method, the same on both clients."""

    def __init__(self, function: Callable[Concatenate[Core, P], R]) -> None:
        self.function = function
        functools.update_wrapper(cast(Any, self), function)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> pure[P, R]: ...
    @overload
    def __get__(self, obj: BaseClient[Any], owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, obj: BaseClient[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        return functools.partial(self.function, obj._core)


class BaseClient(Generic[H]):
    """Configuration and methods shared by both clients; ``H`` is the httpx client class.

    Nothing here touches the network or requires an API key: a missing key is
    reported by the first request, so building a client at import time (in a
    settings module, say) never fails. ``max_retry_after`` caps how long a
    server's ``Retry-After`` may make a retry wait; ``download_policy`` decides
    which stem URLs ``download_stems`` follows (default: any host over https,
    plain http only when ``base_url`` is http, as a local sandbox is).
    """

    #: True in the asyncio client: its operations are coroutine functions.
    asynchronous: ClassVar[bool] = False

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        webhook_secret: str | Iterable[str] | None = None,
        timeout: float | None = 30.0,
        max_retries: int = 4,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        download_policy: DownloadPolicy | None = None,
        http_client: H | None = None,
    ) -> None:
        self._core = Core(
            Config.build(
                api_key,
                base_url=base_url,
                webhook_secret=webhook_secret,
                timeout=timeout,
                max_retries=max_retries,
                max_retry_after=max_retry_after,
                download_policy=download_policy,
            )
        )
        self._core.pager = cast(Pager, self)
        # A caller's own httpx client (proxies, mounts, tracing) is theirs to close.
        self._owns_http = http_client is None
        self._http: H = http_client if http_client is not None else self._new_http()

    # --- what a driver provides ------------------------------------------------------

    def _new_http(self) -> H:
        raise NotImplementedError

    def _run(self, op: Op[Any]) -> Any:
        """Run ``op`` to its result (a coroutine of it, in the async driver)."""
        raise NotImplementedError

    def _steps(self, stepper: Stepper[Any]) -> Any:
        """Iterate what a walk emits (asynchronously, in the async driver)."""
        raise NotImplementedError

    # --- the API -----------------------------------------------------------------------

    create_split = operation(Core.create_split)
    get_split = operation(Core.get_split)
    wait_for_split = operation(Core.wait_for_split)
    list_splits = operation(Core.list_splits)
    presign_upload = operation(Core.presign_upload)
    upload_file = operation(Core.upload_file)
    download_stems = operation(Core.download_stems)
    get_credits = operation(Core.get_credits)
    iter_splits = walker(Core.iter_splits)
    iter_from = walker(Core.walk_pages)
    submit = create_split
    get = get_split
    wait = wait_for_split
    download = download_stems

    # Pure computation: the same plain method on both clients, nothing to await.
    verify_webhook = pure(Core.verify_webhook)

    @property
    def base_url(self) -> str:
        return self._core.config.base_url

    def __repr__(self) -> str:
        key = "set" if self._core.config.api_key else "unset"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"
