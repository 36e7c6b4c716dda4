"""The /predict request and answer: parse and check a JSON body, encode the predictions. No web framework here.

A body is one JSON object in one of four forms (answers always list one prediction per text or pair):

    {"text": "..."}                          one text
    {"texts": ["...", ...]}                  several texts
    {"text_a": "...", "text_b": "..."}       one pair (pair models)
    {"pairs": [["a", "b"], ...]}             several pairs (pair models)

Every problem is a `RequestError`: an HTTP status (400 malformed JSON, 413 body too large, 422 a body
that is JSON but not a request this model can answer) and one line that says what to change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..config import check_ranges

FORMS = "'text', 'texts', 'text_a' with 'text_b', or 'pairs'"


@dataclass
class Limits:
    """What one request may hold (the `serve` flags of the same names)."""

    max_body_bytes: int = 4 * 2**20
    max_texts: int = 1024  # texts (or pairs) in one request
    max_text_chars: int = 10_000  # characters of one text

    RANGES = {"max_body_bytes": (64, None), "max_texts": (1, None), "max_text_chars": (1, None)}

    def validate(self) -> None:
        check_ranges(self)


class RequestError(Exception):
    """A request the server refuses: `status` and a one-line `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Parsed:
    texts_a: list[str]
    texts_b: list[str] | None  # None: single texts


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RequestError(422, f"{where} must be a string, got {_kind(value)}")
    return value


def _list(value: object, where: str, what: str) -> list:
    if not isinstance(value, list):
        raise RequestError(422, f"{where} must be a list of {what}, got {_kind(value)}")
    if not value:
        raise RequestError(422, f"{where} is empty: send at least one")
    return value


def parse_json(body: bytes, limits: Limits) -> object:
    """The JSON value of a body (status 413 over the size limit, 400 when it is not JSON)."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body over {limits.max_body_bytes:,} bytes (--max-body-bytes)")
    if not body.strip():
        raise RequestError(400, f"empty body: send a JSON object with {FORMS}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise RequestError(400, f"malformed JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise RequestError(400, "malformed JSON: the body is not UTF-8 text") from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise RequestError(400, f"malformed JSON: {str(e).split(';')[0]}") from None


def parse_predict(body: bytes, pair: bool, limits: Limits) -> Parsed:
    """Check a /predict body against the model (pairs or single texts) and the limits."""
    data = parse_json(body, limits)
    if not isinstance(data, dict):
        raise RequestError(422, f"the body must be a JSON object with {FORMS}, got {_kind(data)}")
    keys = set(data)
    unknown = sorted(keys - {"text", "texts", "text_a", "text_b", "pairs"})
    if unknown:
        raise RequestError(422, f"unknown field '{unknown[0]}': send {FORMS}")
    forms = [f for f in ("text", "texts", "pairs") if f in keys] + (
        ["text_a/text_b"] if keys & {"text_a", "text_b"} else []
    )
    if len(forms) != 1:
        got = f"got {' and '.join(forms)}" if forms else "got an empty object"
        raise RequestError(422, f"send one of {FORMS}; {got}")
    form = forms[0]
    if form in ("text", "texts") and pair:
        raise RequestError(422, "this model reads text pairs: send 'text_a' and 'text_b', or 'pairs'")
    if form not in ("text", "texts") and not pair:
        raise RequestError(422, "this model reads single texts: send 'text' or 'texts'")
    if form == "text":
        parsed = Parsed([_string(data["text"], "'text'")], None)
    elif form == "texts":
        texts = _list(data["texts"], "'texts'", "strings")
        _count(len(texts), limits)
        parsed = Parsed([_string(t, f"'texts'[{i}]") for i, t in enumerate(texts)], None)
    elif form == "text_a/text_b":
        for key in ("text_a", "text_b"):
            if key not in keys:
                raise RequestError(422, f"a pair needs both 'text_a' and 'text_b'; '{key}' is missing")
        parsed = Parsed([_string(data["text_a"], "'text_a'")], [_string(data["text_b"], "'text_b'")])
    else:
        pairs = _list(data["pairs"], "'pairs'", "[text_a, text_b] pairs")
        _count(len(pairs), limits, "pairs")
        a, b = [], []
        for i, p in enumerate(pairs):
            if not isinstance(p, list) or len(p) != 2:
                got = f"a list of {len(p)}" if isinstance(p, list) else _kind(p)
                raise RequestError(422, f"'pairs'[{i}] must be a list of two strings [text_a, text_b], got {got}")
            a.append(_string(p[0], f"'pairs'[{i}][0]"))
            b.append(_string(p[1], f"'pairs'[{i}][1]"))
        parsed = Parsed(a, b)
    _lengths(parsed, form, limits)
    return parsed


def _count(n: int, limits: Limits, what: str = "texts") -> None:
    if n > limits.max_texts:
        raise RequestError(422, f"{n:,} {what} in one request; at most {limits.max_texts:,} (--max-texts)")


def _lengths(parsed: Parsed, form: str, limits: Limits) -> None:
    top = limits.max_text_chars
    for side, texts in enumerate((parsed.texts_a, parsed.texts_b or [])):
        for i, t in enumerate(texts):
            if len(t) > top:
                where = {
                    "text": "'text'",
                    "texts": f"'texts'[{i}]",
                    "text_a/text_b": ("'text_a'", "'text_b'")[side],
                    "pairs": f"'pairs'[{i}][{side}]",
                }[form]
                raise RequestError(422, f"{where} has {len(t):,} characters; at most {top:,} (--max-text-chars)")


def encode_answer(labels: list[str], probs: np.ndarray) -> bytes:
    """{"labels": [...], "predictions": [{"label": ..., "probs": [...]}, ...]} as UTF-8 JSON bytes."""
    best = probs.argmax(-1).tolist()
    preds = [{"label": labels[k], "probs": row} for k, row in zip(best, probs.tolist())]
    return json.dumps({"labels": labels, "predictions": preds}, ensure_ascii=False, separators=(",", ":")).encode()


def error_body(message: str) -> bytes:
    return json.dumps({"detail": message}, ensure_ascii=False).encode()
