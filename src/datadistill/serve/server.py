"""Run the server: load the model, bind the socket, run uvicorn (one process, or `workers` processes).

SIGTERM or Ctrl-C stops it gracefully: no new connections, the requests in flight are answered (the
batcher drains), then the process exits with status 0 (130 for Ctrl-C).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import ConfigError, check_ranges, from_dict
from ..extras import require
from ..log import logger as _root
from ..log import setup_logging
from ..predict import BACKENDS, BasePredictor, detect_backend, load_predictor
from .protocol import Limits

log = _root.getChild("serve")
ENV = "DATADISTILL_SERVE"  # the settings, as JSON, for worker processes


@dataclass
class ServeSettings:
    """The `serve` flags."""

    model: str
    backend: str | None = None  # None: onnx for an export folder, torch for a student folder
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (the log line says which)
    workers: int = 1
    threads: int = 1  # intra-op threads of each worker's model
    max_batch: int = 256  # texts of one micro-batch (one model call)
    sub_batch: int = 32  # texts per forward pass within it, grouped by length
    max_wait_ms: float = 2.0
    max_body_bytes: int = 4 * 2**20
    max_texts: int = 1024
    max_text_chars: int = 10_000
    graceful_timeout: float = 30.0  # seconds shutdown waits for requests in flight
    access_log: bool = False
    verbosity: int = 0

    RANGES = {
        "port": (0, 65535),
        "workers": (1, 256),
        "threads": (1, 1024),
        "max_batch": (1, 1_000_000),
        "sub_batch": (1, 1_000_000),
        "max_wait_ms": (0, 10_000),
        "graceful_timeout": (0, None, "open"),
    }

    def validate(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"backend '{self.backend}': expected one of {', '.join(BACKENDS)}")
        check_ranges(self)
        self.limits.validate()

    @property
    def limits(self) -> Limits:
        return Limits(self.max_body_bytes, self.max_texts, self.max_text_chars)


def load(settings: ServeSettings) -> BasePredictor:
    """The predictor of `settings.model` on its backend, with `threads` intra-op threads."""
    backend = settings.backend or detect_backend(settings.model)
    if backend == "torch":
        import torch

        torch.set_num_threads(settings.threads)
        return load_predictor(settings.model, "torch", batch_size=settings.sub_batch)
    return load_predictor(settings.model, "onnx", batch_size=settings.sub_batch, threads=settings.threads)


def build_app(settings: ServeSettings, predictor: BasePredictor | None = None):
    from .app import create_app

    predictor = predictor or load(settings)
    return create_app(
        predictor, settings.limits, settings.max_batch, settings.max_wait_ms, model_name=str(Path(settings.model))
    )


def app_from_env():
    """The application of a worker process (uvicorn's factory with --workers > 1)."""
    settings = from_dict(ServeSettings, json.loads(os.environ[ENV]), "serve")
    setup_logging(settings.verbosity)
    _route_uvicorn_logs(settings.access_log)
    app = build_app(settings)
    _freeze()
    return app


def _freeze() -> None:
    """Exclude everything loaded so far (torch's modules, the model, the vocabulary: hundreds of thousands
    of objects) from garbage collection: a full collection walking them stalled the torch backend for
    ~100 ms now and then (p99 latency 150 ms at 64 concurrent requests; under 20 ms with this, measured)."""
    gc.collect()
    gc.freeze()


def serve(settings: ServeSettings) -> None:
    """Serve until SIGTERM or Ctrl-C (see the module doc)."""
    require("fastapi", "datadistill serve")
    uvicorn = require("uvicorn", "datadistill serve")
    settings.validate()
    predictor = load(settings)  # in this process too: a bad folder is one line before anything starts
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    _route_uvicorn_logs(settings.access_log)
    common = dict(
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=settings.graceful_timeout,
        server_header=False,
    )
    what = "text pairs" if predictor.pair else "single texts"
    log.info(
        f"serve: {settings.model} ({predictor.backend}, {what}, labels {', '.join(predictor.labels)}) on "
        f"http://{f'[{settings.host}]' if ':' in settings.host else settings.host}:{port} ({settings.workers} worker{'s' if settings.workers > 1 else ''}, "
        f"batches of up to {settings.max_batch} texts, waiting up to {settings.max_wait_ms:g} ms); API at /docs"
    )
    stopped = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: stopped.append(sig))  # see below
    try:
        if settings.workers == 1:
            config = uvicorn.Config(build_app(settings, predictor), **common)
            _freeze()
            uvicorn.Server(config).run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            del predictor
            os.environ[ENV] = json.dumps(asdict(settings))
            config = uvicorn.Config(
                "datadistill.serve.server:app_from_env", factory=True, workers=settings.workers, **common
            )
            Multiprocess(config, sockets=[sock]).run()
    finally:
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully; the handler set above
        # takes it, so a stop by SIGTERM exits with status 0 like any finished command.
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    log.info("serve: shut down" + (" (SIGTERM)" if stopped else ""))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None
    sock.set_inheritable(True)
    return sock


def _route_uvicorn_logs(access: bool) -> None:
    """uvicorn's own messages (startup, shutdown, errors, and the access log when asked) through the
    project's handler. Called again in each worker process, after uvicorn has set its loggers up."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = list(_root.handlers) if name == "uvicorn" else []
        lg.setLevel(logging.WARNING if name == "uvicorn.error" and _root.level >= logging.INFO else _root.level)
        lg.propagate = name != "uvicorn" and (access or name != "uvicorn.access")
