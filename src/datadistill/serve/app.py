"""The FastAPI application: POST /predict, GET /health, GET /info, and the OpenAPI page at /docs.

Handlers read the raw body and check it themselves (protocol.py), so every bad request gets a 4xx
answer {"detail": "<one line>"}, the shape FastAPI gives its own 404 and 405; answers are encoded
once, without response-model validation (the OpenAPI schema documents them all the same).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .. import __version__
from ..log import logger as _root
from ..predict import BasePredictor
from .batcher import MicroBatcher, ShuttingDown
from .protocol import Limits, RequestError, encode_answer, error_body, parse_predict

log = _root.getChild("serve")
JSON = "application/json"


class Prediction(BaseModel):
    label: str
    probs: list[float]


class PredictAnswer(BaseModel):
    labels: list[str]
    predictions: list[Prediction]


class ErrorAnswer(BaseModel):
    detail: str


def _text_schema(desc: str) -> dict:
    return {"type": "string", "description": desc}


PREDICT_BODY = {
    "required": True,
    "content": {
        JSON: {
            "schema": {
                "oneOf": [
                    {
                        "title": "one text",
                        "type": "object",
                        "properties": {"text": _text_schema("a text")},
                        "required": ["text"],
                    },
                    {
                        "title": "several texts",
                        "type": "object",
                        "properties": {"texts": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
                        "required": ["texts"],
                    },
                    {
                        "title": "one pair (pair models)",
                        "type": "object",
                        "properties": {"text_a": _text_schema("first text"), "text_b": _text_schema("second text")},
                        "required": ["text_a", "text_b"],
                    },
                    {
                        "title": "several pairs (pair models)",
                        "type": "object",
                        "properties": {
                            "pairs": {
                                "type": "array",
                                "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                                "minItems": 1,
                            }
                        },
                        "required": ["pairs"],
                    },
                ]
            },
            "examples": {
                "text": {"value": {"text": "房间很干净，服务也好"}},
                "texts": {"value": {"texts": ["房间很干净，服务也好", "早餐太差了"]}},
                "pairs": {"value": {"pairs": [["怎么开通花呗", "花呗如何开通"]]}},
            },
        }
    },
}
ERRORS = {
    400: {"model": ErrorAnswer, "description": "malformed JSON"},
    413: {"model": ErrorAnswer, "description": "body over --max-body-bytes"},
    422: {
        "model": ErrorAnswer,
        "description": "not a request this model answers (missing or mistyped field, "
        "empty list, too many or too long texts, pairs for a single-text model or the reverse)",
    },
    503: {"model": ErrorAnswer, "description": "the server is shutting down"},
}


def _error(status: int, message: str) -> Response:
    return Response(error_body(message), status_code=status, media_type=JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over `limit` bytes."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit():
        if int(size) > limit:
            raise RequestError(413, f"request body over {limit:,} bytes (--max-body-bytes)")
        return await request.body()
    chunks, total = [], 0
    async for chunk in request.stream():  # chunked: count as it comes
        total += len(chunk)
        if total > limit:
            raise RequestError(413, f"request body over {limit:,} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    predictor: BasePredictor, limits: Limits, max_batch: int = 256, max_wait_ms: float = 2.0, model_name: str = ""
) -> FastAPI:
    """The application around a loaded predictor (torch or onnx backend)."""
    batcher = MicroBatcher(predictor.predict_proba, max_batch=max_batch, max_wait=max_wait_ms / 1000)
    labels = list(predictor.labels)
    info = {
        "model": model_name or str(getattr(predictor, "folder", "")),
        "arch": getattr(predictor, "config", {}).get("arch"),
        "backend": predictor.backend,
        "quantize": getattr(predictor, "export", {}).get("quantize"),
        "pair": predictor.pair,
        "labels": labels,
        "version": __version__,
        "max_batch": max_batch,
        "sub_batch": predictor.batch_size,
        "max_wait_ms": max_wait_ms,
        "limits": {
            "max_body_bytes": limits.max_body_bytes,
            "max_texts": limits.max_texts,
            "max_text_chars": limits.max_text_chars,
        },
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()  # uvicorn calls this after the requests in flight were answered
        s = batcher.stats
        log.info(f"serve: stopped after {s.requests:,} requests ({s.texts:,} texts) in {s.batches:,} batches")

    app = FastAPI(
        title="datadistill student",
        version=__version__,
        description='Labels and probabilities from a datadistill student. Errors are {"detail": "one line"}.',
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    @app.post(
        "/predict",
        summary="Labels and probabilities (in the order of `labels`) for texts or text pairs",
        response_model=PredictAnswer,
        responses=ERRORS,
        openapi_extra={"requestBody": PREDICT_BODY},
    )
    async def predict(request: Request) -> Response:
        try:
            body = await _read_body(request, limits.max_body_bytes)
            parsed = parse_predict(body, predictor.pair, limits)
            probs = await batcher.submit(parsed.texts_a, parsed.texts_b)
        except RequestError as e:
            log.debug(f"serve: {e.status} {e.message}")
            return _error(e.status, e.message)
        except ShuttingDown as e:
            return _error(503, str(e))
        except asyncio.CancelledError:  # shutdown's --graceful-timeout passed first: a 503, not uvicorn's 500
            return _error(503, "the server is shutting down (--graceful-timeout passed before this request's answer)")
        return Response(encode_answer(labels, probs), media_type=JSON)

    @app.get("/health", summary="200 while the server answers")
    async def health() -> dict:
        return {"status": "ok", "queued": batcher.queued}

    @app.get("/info", summary="The model: labels, backend, single texts or pairs, limits")
    async def get_info() -> dict:
        return info

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:  # a bug, never a bad request
        log.error(f"serve: {request.method} {request.url.path}: {type(exc).__name__}: {exc}", exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    return app
