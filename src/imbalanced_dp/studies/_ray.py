"""Connecting to Ray: first, within a time limit, quietly, with one clear line on failure.

:func:`connect_ray` runs before a study touches its store, so a cluster that is not there
costs a few seconds and writes nothing. An address is checked with a plain TCP connection
(bounded by the timeout) before Ray is asked to join it, Ray's own connection retries are
bounded by the same timeout, and Ray's logs do not reach the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import warnings
from collections.abc import Iterator

from ..exceptions import ParameterError

#: Seconds to wait for a Ray cluster by default (``study run --connect-timeout``).
DEFAULT_CONNECT_TIMEOUT = 20.0

_FIX = (
    "start a cluster with `ray start --head` (and pass the address it prints), or drop "
    "--address to run on a local Ray instance started for this study"
)


class RayConnectionError(ParameterError):
    """No Ray cluster could be reached at the address given."""


def _fail(address: str, why: str) -> RayConnectionError:
    return RayConnectionError(f"cannot connect to a Ray cluster at {address}: {why}; {_FIX}")


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port``, ``[v6]:port`` or ``ray://host:port``."""
    a = address.split("://", 1)[-1].rstrip("/")
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = a.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def _resolve(address: str) -> str:
    """The ``host:port`` of ``auto`` (the cluster recorded by ``ray start`` on this machine,
    or ``RAY_ADDRESS``); other addresses unchanged."""
    if address != "auto":
        return address
    from ray._private import services

    try:
        found = services.canonicalize_bootstrap_address(address)
    except ConnectionError:
        found = None
    except Exception as exc:  # private API: fail clearly whatever it raises
        raise _fail(address, f"Ray could not look for a running cluster ({exc})") from None
    if not found:
        raise _fail(address, "no running Ray cluster was found on this machine")
    return found


def _probe(address: str, timeout: float) -> None:
    """A TCP connection to the address, within ``timeout`` seconds."""
    hp = _host_port(address)
    if hp is None:
        raise RayConnectionError(
            f"--address {address!r} is not a Ray address: give HOST:PORT (e.g. "
            "127.0.0.1:6379), ray://HOST:PORT or auto"
        )
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except TimeoutError:
        raise _fail(address, f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise _fail(address, exc.strerror or str(exc)) from None


def _ray_env(timeout: float | None) -> dict[str, str]:
    """Settings Ray reads from the environment when it is first imported: its C++ logs at
    ERROR, and (joining a cluster) its connection retries bounded by about ``timeout``
    seconds: each attempt waits ``c`` s for the GCS, ``c`` s for its pubsub, ``c`` s for the
    cluster id and sleeps 1 s."""
    env = {"RAY_BACKEND_LOG_LEVEL": "error"}
    if timeout is not None:
        c = max(1, math.ceil(timeout / 10))
        env |= {
            "RAY_gcs_rpc_server_connect_timeout_s": str(c),
            "RAY_py_gcs_connect_timeout_s": str(c),
            "RAY_gcs_server_port_wait_time_s": str(max(1, round(timeout / (3 * c + 1)))),
        }
    return env


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """``env`` in the environment (where the user has not set a variable), then restored."""
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Ray's Python loggers at ERROR, its warnings ignored, and the C++ core's log lines
    (written straight to file descriptor 2) discarded, while ``ray.init`` runs."""
    loggers = [logging.getLogger(n) for n in ("ray", "ray._private.worker")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def connect_ray(
    address: str | None = None,
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> bool:
    """Connect this process to Ray: the cluster at ``address`` (``HOST:PORT``,
    ``ray://HOST:PORT`` or ``auto``), or, without one, a local Ray instance with
    ``workers`` CPUs. Returns whether this call connected (and so should shut Ray down
    afterwards); ``False`` when Ray was already initialised.

    A cluster's address is first tried with a plain TCP connection within ``timeout``
    seconds; Ray's own retries are then bounded by about the same time (when this process
    imports Ray here for the first time: Ray reads those settings once, on import).

    Raises
    ------
    ParameterError
        Ray is not installed, or ``timeout`` is not a positive number.
    RayConnectionError
        No cluster answers at ``address`` in time, or Ray refuses to join it; the message
        names the address and the fix (``ray start --head``, or no ``--address``).
    """
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ParameterError(f"--connect-timeout must be a positive number; got {timeout}")
    with _environ(_ray_env(timeout if address else None)):
        try:
            import ray
        except ImportError:
            raise ParameterError(
                "the ray backend needs Ray: pip install 'imbalanced-dp[ray]'"
            ) from None
        if ray.is_initialized():
            return False
        kwargs: dict = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if address:
            target = _resolve(address)
            _probe(target, timeout)
            kwargs["address"] = target
        elif workers is not None:
            kwargs["num_cpus"] = workers
        try:
            with _quiet():
                ray.init(**kwargs)
        except Exception as exc:
            if not address:
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise _fail(address, f"Ray could not join it ({type(exc).__name__}: {first})") from None
    return True
