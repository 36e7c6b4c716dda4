"""`datadistill serve`: a real server process on a free local port predicts, refuses every kind of bad
request with a 4xx and one line (never a 5xx), micro-batches concurrent requests, and stops on SIGTERM
after answering the request in flight (exit status 0). The request parsing and the batcher are also
tested on their own, without a server."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from datadistill.serve.batcher import MicroBatcher, ShuttingDown
from datadistill.serve.protocol import Limits, RequestError, encode_answer, parse_predict

FIXTURES = Path(__file__).parent / "fixtures" / "models_v0"
LIMITS = Limits(max_body_bytes=6000, max_texts=8, max_text_chars=50)

# (name, body, status, exact message): one row per kind of bad request, for a single-text model
BAD = [
    ("malformed JSON", b'{"text": "good', 400, "malformed JSON: Unterminated string starting at (line 1, column 10)"),
    ("empty body", b"", 400, "empty body: send a JSON object with 'text', 'texts', 'text_a' with 'text_b', or 'pairs'"),
    ("not UTF-8", b'{"text": "\xff"}', 400, "malformed JSON: the body is not UTF-8 text"),
    ("too deep", b"[" * 2000 + b"]" * 2000, 400, "malformed JSON: nested too deeply"),
    (
        "a huge number",
        b'{"text": ' + b"9" * 5000 + b"}",
        400,
        "malformed JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits",
    ),
    (
        "not an object",
        b'["good"]',
        422,
        "the body must be a JSON object with 'text', 'texts', 'text_a' with 'text_b', or 'pairs', got a list",
    ),
    (
        "empty object",
        b"{}",
        422,
        "send one of 'text', 'texts', 'text_a' with 'text_b', or 'pairs'; got an empty object",
    ),
    (
        "unknown field",
        b'{"txt": "good"}',
        422,
        "unknown field 'txt': send 'text', 'texts', 'text_a' with 'text_b', or 'pairs'",
    ),
    (
        "two forms",
        b'{"text": "a", "texts": ["b"]}',
        422,
        "send one of 'text', 'texts', 'text_a' with 'text_b', or 'pairs'; got text and texts",
    ),
    ("text not a string", b'{"text": 3}', 422, "'text' must be a string, got a number"),
    ("texts not a list", b'{"texts": "good"}', 422, "'texts' must be a list of strings, got a string"),
    ("empty list", b'{"texts": []}', 422, "'texts' is empty: send at least one"),
    ("null in texts", b'{"texts": ["good", null]}', 422, "'texts'[1] must be a string, got null"),
    (
        "too many texts",
        json.dumps({"texts": ["a"] * 9}).encode(),
        422,
        "9 texts in one request; at most 8 (--max-texts)",
    ),
    (
        "text too long",
        json.dumps({"text": "好" * 51}).encode(),
        422,
        "'text' has 51 characters; at most 50 (--max-text-chars)",
    ),
    (
        "one of the texts too long",
        json.dumps({"texts": ["a", "b" * 60]}).encode(),
        422,
        "'texts'[1] has 60 characters; at most 50 (--max-text-chars)",
    ),
    (
        "body too large",
        json.dumps({"texts": ["a" * 40] * 200}).encode(),
        413,
        "request body over 6,000 bytes (--max-body-bytes)",
    ),
    (
        "a pair to a single-text model",
        b'{"text_a": "a", "text_b": "b"}',
        422,
        "this model reads single texts: send 'text' or 'texts'",
    ),
    (
        "pairs to a single-text model",
        b'{"pairs": [["a", "b"]]}',
        422,
        "this model reads single texts: send 'text' or 'texts'",
    ),
]
# the same for a pair model
BAD_PAIR = [
    (
        "a text to a pair model",
        b'{"text": "a"}',
        422,
        "this model reads text pairs: send 'text_a' and 'text_b', or 'pairs'",
    ),
    (
        "texts to a pair model",
        b'{"texts": ["a"]}',
        422,
        "this model reads text pairs: send 'text_a' and 'text_b', or 'pairs'",
    ),
    ("half a pair", b'{"text_a": "a"}', 422, "a pair needs both 'text_a' and 'text_b'; 'text_b' is missing"),
    ("text_b a number", b'{"text_a": "a", "text_b": 1}', 422, "'text_b' must be a string, got a number"),
    (
        "a pair of one",
        b'{"pairs": [["a", "b"], ["c"]]}',
        422,
        "'pairs'[1] must be a list of two strings [text_a, text_b], got a list of 1",
    ),
    ("a pair with null", b'{"pairs": [["a", null]]}', 422, "'pairs'[0][1] must be a string, got null"),
    ("empty pairs", b'{"pairs": []}', 422, "'pairs' is empty: send at least one"),
    (
        "pair text too long",
        json.dumps({"pairs": [["a", "b" * 51]]}).encode(),
        422,
        "'pairs'[0][1] has 51 characters; at most 50 (--max-text-chars)",
    ),
]


@pytest.mark.parametrize("name,body,status,message", BAD, ids=[b[0] for b in BAD])
def test_parse_refuses_a_bad_body_with_status_and_one_line(name, body, status, message):
    with pytest.raises(RequestError) as e:
        parse_predict(body, False, LIMITS)
    assert (e.value.status, e.value.message) == (status, message)


def test_parse_counts_pairs_as_pairs():
    with pytest.raises(RequestError) as e:
        parse_predict(json.dumps({"pairs": [["a", "b"]] * 9}).encode(), True, LIMITS)
    assert (e.value.status, e.value.message) == (422, "9 pairs in one request; at most 8 (--max-texts)")


@pytest.mark.parametrize("name,body,status,message", BAD_PAIR, ids=[b[0] for b in BAD_PAIR])
def test_parse_refuses_a_bad_pair_body(name, body, status, message):
    with pytest.raises(RequestError) as e:
        parse_predict(body, True, LIMITS)
    assert (e.value.status, e.value.message) == (status, message)


def test_parse_reads_the_four_forms_and_the_answer_lists_labels_in_order():
    assert parse_predict(b'{"text": "good"}', False, LIMITS).texts_a == ["good"]
    p = parse_predict('{"texts": ["好", ""]}'.encode(), False, LIMITS)
    assert p.texts_a == ["好", ""] and p.texts_b is None
    assert parse_predict(b'{"text_a": "a", "text_b": "b"}', True, LIMITS).texts_b == ["b"]
    p = parse_predict(b'{"pairs": [["a", "b"], ["c", "d"]]}', True, LIMITS)
    assert (p.texts_a, p.texts_b) == (["a", "c"], ["b", "d"])
    answer = json.loads(encode_answer(["neg", "pos"], np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)))
    assert answer == {
        "labels": ["neg", "pos"],
        "predictions": [{"label": "pos", "probs": [0.25, 0.75]}, {"label": "neg", "probs": [0.5, 0.5]}],
    }


def test_batcher_puts_concurrent_requests_in_one_pass_bounded_and_in_order():
    calls: list[int] = []

    def predict(texts_a, texts_b):
        calls.append(len(texts_a))
        time.sleep(0.01)
        return np.array([[float(t), 0.0] for t in texts_a])

    async def go():
        b = MicroBatcher(predict, max_batch=10, max_wait=0.05)
        await b.start()
        sizes = [1, 3, 1, 2, 4, 1, 12, 1]  # 12 > max_batch: runs alone
        starts = np.cumsum([0] + sizes[:-1])
        outs = await asyncio.gather(*(b.submit([str(s + i) for i in range(n)]) for s, n in zip(starts, sizes)))
        for s, n, out in zip(starts, sizes, outs):
            assert out[:, 0].tolist() == list(range(s, s + n))
        late = asyncio.ensure_future(b.submit(["7"]))
        await asyncio.sleep(0)
        await b.stop()  # answers what is queued
        assert (await late)[0, 0] == 7
        with pytest.raises(ShuttingDown):
            await b.submit(["1"])
        return b.stats

    stats = asyncio.run(go())
    assert calls[0] == 1 + 3 + 1 + 2  # the first batch: up to 10 texts without splitting a request
    assert max(c for c in calls if c != 12) <= 10 and 12 in calls and sum(calls) == 26
    assert stats.requests == 9 and stats.texts == 26 and stats.batches == len(calls) < 9


# --- a real server ---------------------------------------------------------------------------------


class Server:
    """`datadistill serve ... --port 0` in a subprocess; its stderr goes to a file (the log)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.log = tmp / f"serve_{time.monotonic_ns()}.log"
        self._err = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "datadistill.cli", "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        deadline = time.monotonic() + 60
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"on http://127\.0\.0\.1:(\d+) ", self.log.read_text(errors="replace"))
            if m and self.port is None:
                self.port = int(m.group(1))
            if self.port is not None:
                try:
                    if self.request("GET", "/health")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start: {self.log.read_text(errors='replace')}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        finally:
            conn.close()

    def predict(self, payload, **kw):
        return self.request("POST", "/predict", json.dumps(payload, ensure_ascii=False).encode(), **kw)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._err.close()
        return code


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory):
    """models_v0/bow exported to ONNX, served with small limits."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    pytest.importorskip("onnx")
    from datadistill.export import export_folder

    tmp = tmp_path_factory.mktemp("serve")
    export_folder(FIXTURES / "bow", tmp / "bow_onnx")
    limits = ["--max-body-bytes", "6000", "--max-texts", "8", "--max-text-chars", "50"]
    server = Server(tmp, "--model", str(tmp / "bow_onnx"), *limits)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory, sentiment_module, write_tsv_module, student_config_module) -> Path:
    from datadistill import train_student

    tmp = tmp_path_factory.mktemp("serve_pair")
    rows = sentiment_module(100, seed=4)
    partners = rows[50:]
    random.Random(4).shuffle(partners)
    pairs = [(a, b, str(int(la == lb))) for (la, a), (lb, b) in zip(rows[:50], partners)]
    files = {
        k: write_tsv_module(tmp / f"{k}.tsv", pairs, header=("text_a", "text_b", "label"))
        for k in ("train", "dev", "test")
    }
    train_student(student_config_module(files, tmp, "cnn", epochs=1))
    return tmp / "cnn"


def test_server_predicts_like_the_model_and_describes_itself(onnx_server):
    from datadistill.onnx_predict import OnnxPredictor

    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    texts = expected["texts"]
    status, answer = onnx_server.predict({"texts": texts})
    assert status == 200 and answer["labels"] == ["0", "1"]
    assert [p["label"] for p in answer["predictions"]] == expected["models"]["bow"]["labels"]
    local = OnnxPredictor(Path(onnx_server.request("GET", "/info")[1]["model"])).predict_proba(texts)
    assert np.allclose([p["probs"] for p in answer["predictions"]], local, atol=1e-6)
    status, one = onnx_server.predict({"text": texts[0]})
    assert (
        status == 200
        and len(one["predictions"]) == 1
        and np.allclose(one["predictions"][0]["probs"], local[0], atol=1e-6)
    )
    status, info = onnx_server.request("GET", "/info")
    assert status == 200 and info["backend"] == "onnx" and info["pair"] is False and info["arch"] == "bow"
    assert info["labels"] == ["0", "1"] and info["version"] and info["limits"]["max_texts"] == 8
    assert onnx_server.request("GET", "/health") == (200, {"status": "ok", "queued": 0})
    status, spec = onnx_server.request("GET", "/openapi.json")
    assert status == 200 and "/predict" in spec["paths"] and "requestBody" in spec["paths"]["/predict"]["post"]
    conn = http.client.HTTPConnection("127.0.0.1", onnx_server.port, timeout=10)
    conn.request("GET", "/docs")
    r = conn.getresponse()
    assert r.status == 200 and b"swagger" in r.read().lower()
    conn.close()


@pytest.mark.parametrize("name,body,status,message", BAD, ids=[b[0] for b in BAD])
def test_server_answers_a_bad_request_with_a_4xx_and_one_line(onnx_server, name, body, status, message):
    assert onnx_server.request("POST", "/predict", body) == (status, {"detail": message})


def test_server_edge_requests_never_get_a_5xx(onnx_server):
    big = json.dumps({"texts": ["a" * 40] * 200}).encode()
    chunks = (big[i : i + 1000] for i in range(0, len(big), 1000))
    conn = http.client.HTTPConnection("127.0.0.1", onnx_server.port, timeout=10)  # chunked: no content-length
    conn.request("POST", "/predict", body=chunks, encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (413, {"detail": "request body over 6,000 bytes (--max-body-bytes)"})
    conn.close()
    assert onnx_server.request("GET", "/predict")[0] == 405
    assert onnx_server.request("GET", "/nowhere")[0] == 404
    odd = ["", "   ", "\u0000", "\ud800好", "😀", "[UNK]", "a\tb\nc"]  # empty, blank, NUL, lone surrogate, emoji ...
    body = json.dumps({"texts": odd}).encode()  # ASCII escapes keep the lone surrogate
    status, answer = onnx_server.request("POST", "/predict", body)
    assert status == 200 and len(answer["predictions"]) == len(odd)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(onnx_server):
    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    texts, labels = expected["texts"], expected["models"]["bow"]["labels"]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: onnx_server.predict({"text": texts[i % len(texts)]}), range(64)))
    assert all(status == 200 for status, _ in answers)
    assert [a["predictions"][0]["label"] for _, a in answers] == [labels[i % len(texts)] for i in range(64)]


@pytest.mark.slow
def test_pair_server_on_torch_finishes_the_request_in_flight_on_sigterm(pair_folder, tmp_path):
    pytest.importorskip("fastapi")
    server = Server(tmp_path, "--model", str(pair_folder), "--max-wait-ms", "1500", "--max-text-chars", "50")
    try:
        status, info = server.request("GET", "/info")
        assert info["backend"] == "torch" and info["pair"] is True
        for name, body, code, message in BAD_PAIR:
            assert server.request("POST", "/predict", body) == (code, {"detail": message}), name
        result = {}
        slow = threading.Thread(target=lambda: result.update(r=server.predict({"pairs": [["酒店很好", "房间很好"]]})))
        slow.start()
        time.sleep(0.5)  # the request waits in the batcher (--max-wait-ms 1500) when SIGTERM comes
        server.proc.send_signal(signal.SIGTERM)
        slow.join(30)
        status, answer = result["r"]
        assert status == 200 and len(answer["predictions"]) == 1 and len(answer["predictions"][0]["probs"]) == 2
    finally:
        code = server.stop()
    log = server.log.read_text()
    assert code == 0, log
    assert "serve: stopped after 1 requests (1 texts)" in log and "serve: shut down (SIGTERM)" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_two_worker_processes_serve_and_stop_on_sigterm(tmp_path):
    pytest.importorskip("fastapi")
    server = Server(tmp_path, "--model", str(FIXTURES / "lstm"), "--workers", "2")
    try:
        for _ in range(4):
            status, answer = server.predict({"texts": ["酒店很好", "好"]})
            assert status == 200 and len(answer["predictions"]) == 2
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()


def test_serve_refuses_a_bad_setting_with_one_line_before_it_starts(tmp_path, capsys):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import socket

    from datadistill.cli import main

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    bow = str(FIXTURES / "bow")
    cases = [
        (["--model", str(tmp_path / "nope")], f"{tmp_path / 'nope'}: model folder does not exist"),
        (
            ["--model", bow, "--port", str(port)],
            f"--host 127.0.0.1 --port {port}: cannot listen there (Address already in use)",
        ),
        (["--model", bow, "--max-wait-ms", "-1"], "serve: max_wait_ms must be in [0, 10000], got -1.0"),
        (["--model", bow, "--backend", "onnx"], "model.onnx: missing (an export folder holds"),
    ]
    try:
        for argv, message in cases:
            assert main(["serve", *argv]) == 2
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and err.startswith("datadistill serve: error: ") and message in err, err
    finally:
        busy.close()
