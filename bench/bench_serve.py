"""Load test of `datadistill serve`: requests/s, texts/s, latency and errors at several concurrencies.

    python bench/bench_serve.py --model work/bench/export/bow              # a student folder: torch backend
    python bench/bench_serve.py --model work/bench/export/bow.onnx         # an export folder: onnx backend
    python bench/bench_serve.py --model M --workers 2 --concurrency 64 --seconds 10 --client httpx

Starts the server as a subprocess on 127.0.0.1 (a free port), then for each concurrency (1, 16, 64)
runs two bounded phases (--seconds each, at most --max-requests): single-text requests and batch
requests of --batch texts (ChnSentiCorp test reviews), each connection sending one bad request (malformed
JSON, a missing or mistyped field, an empty list, too long a text, too many texts, pairs to a
single-text model) every --bad-every requests. It reports requests/s, texts/s (answered texts of good
requests), p50/p99 latency of good requests, the count of every status, and the CPU the client and
the server used (on a 2-core machine the client takes its share: see client_cpu). Prints a table,
writes bench/out/serve_<name>.json, and stops the server with SIGTERM.

The default client is a minimal asyncio HTTP/1.1 client on keep-alive connections (uvloop when
installed): httpx's AsyncClient spends several times more CPU per request (--client httpx measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def read_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        return [r["text_a"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def bad_bodies() -> list[tuple[str, bytes, int]]:
    """(kind, body, the status the server must answer) for a single-text model with the default limits."""
    return [
        ("malformed JSON", b'{"text": "\xe5\xa5\xbd', 400),
        ("missing field", b'{"txt": "good"}', 422),
        ("mistyped field", b'{"texts": ["good", 3]}', 422),
        ("empty list", b'{"texts": []}', 422),
        ("text too long", json.dumps({"text": "好" * 10_001}).encode(), 422),
        ("too many texts", json.dumps({"texts": ["好"] * 1025}).encode(), 422),
        ("pairs to a single-text model", b'{"pairs": [["a", "b"]]}', 422),
    ]


def http_request(body: bytes) -> bytes:
    head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class RawConnection:
    """One keep-alive HTTP/1.1 connection: send a request, read status and body (content-length framing)."""

    def __init__(self, port: int) -> None:
        self.port, self.reader, self.writer = port, None, None

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await self.reader.readexactly(int(m.group(1))) if m else b""
        if re.search(rb"(?i)\r\nconnection: *close", head):
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class HttpxConnection:
    def __init__(self, client) -> None:
        self.client = client

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        body = raw.split(b"\r\n\r\n", 1)[1]
        r = await self.client.post("/predict", content=body, headers={"content-type": "application/json"})
        return r.status_code, r.content

    async def close(self) -> None:
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid] + children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return total


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError):
                pass
    return out


async def phase(args, port: int, server_pid: int, concurrency: int, batch: int, texts: list[str]) -> dict:
    """Run one bounded phase; returns its measurements."""
    good = []
    step = batch
    for i in range(0, max(len(texts), 4096), step):
        chunk = [texts[(i + j) % len(texts)] for j in range(step)]
        payload = {"text": chunk[0]} if batch == 1 else {"texts": chunk}
        good.append((http_request(json.dumps(payload, ensure_ascii=False).encode()), len(chunk)))
    bad = [(kind, http_request(body), status) for kind, body, status in bad_bodies()]
    statuses: Counter[str] = Counter()
    wrong: Counter[str] = Counter()  # a bad request that got another status, or a good one that failed
    latencies: list[float] = []
    answered = 0
    sent = 0
    deadline = time.perf_counter() + args.seconds
    client = None
    if args.client == "httpx":
        import httpx

        client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_connections=concurrency), timeout=60
        )

    async def worker(w: int) -> None:
        nonlocal answered, sent
        conn = HttpxConnection(client) if client is not None else RawConnection(port)
        k = w * 7919
        try:
            while time.perf_counter() < deadline and sent < args.max_requests:
                sent += 1
                k += 1
                is_bad = args.bad_every > 0 and k % args.bad_every == 0
                if is_bad:
                    kind, raw, want = bad[(k // args.bad_every) % len(bad)]
                else:
                    raw, n = good[k % len(good)]
                t0 = time.perf_counter()
                try:
                    status, body = await conn.call(raw)
                except (OSError, asyncio.IncompleteReadError) as e:
                    statuses[f"conn:{type(e).__name__}"] += 1
                    await conn.close()
                    continue
                dt = time.perf_counter() - t0
                statuses[str(status)] += 1
                if is_bad:
                    if status != want:
                        wrong[f"{kind}: {status}"] += 1
                elif status == 200:
                    latencies.append(dt)
                    answered += n
                    if k % 50 == 0 and len(json.loads(body)["predictions"]) != n:
                        wrong["answer with the wrong number of predictions"] += 1
                else:
                    wrong[f"good request: {status}"] += 1
        finally:
            await conn.close()

    cpu_client, cpu_server, t0 = time.process_time(), cpu_seconds(server_pid), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu_client, cpu_server = time.process_time() - cpu_client, cpu_seconds(server_pid) - cpu_server
    if client is not None:
        await client.aclose()
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return dict(
        concurrency=concurrency,
        texts_per_request=batch,
        seconds=wall,
        requests=sum(statuses.values()),
        requests_per_s=sum(statuses.values()) / wall,
        texts_per_s=answered / wall,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        statuses=dict(sorted(statuses.items())),
        errors_5xx=sum(v for k, v in statuses.items() if k.startswith("5")),
        wrong=dict(wrong),
        client_cpu=cpu_client / wall,
        server_cpu=cpu_server / wall,
    )


def start_server(args) -> tuple[subprocess.Popen, int, Path]:
    log = Path(tempfile.mkstemp(prefix="bench_serve_", suffix=".log")[1])
    cmd = [sys.executable, "-m", "datadistill.cli", "serve", "--model", args.model, "--port", "0"]
    cmd += ["--workers", str(args.workers), "--threads", str(args.threads), "--max-batch", str(args.max_batch)]
    cmd += ["--sub-batch", str(args.sub_batch)]
    cmd += ["--max-wait-ms", str(args.max_wait_ms)] + (["--backend", args.backend] if args.backend else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.time() + 120
    while time.time() < deadline:
        m = re.search(r"on http://127\.0\.0\.1:(\d+) ", log.read_text(errors="replace"))
        if proc.poll() is not None:
            sys.exit(f"the server stopped: {log.read_text(errors='replace')}")
        if m:
            import http.client

            try:
                c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    time.sleep(1.0 * args.workers)  # let every worker come up
                    return proc, int(m.group(1)), log
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"the server did not start: {log.read_text(errors='replace')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="work/bench/export/bow", help="student folder or export folder")
    ap.add_argument("--backend", choices=["torch", "onnx"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--sub-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--batch", type=int, default=256, help="texts per request in the batch phases")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    ap.add_argument("--max-requests", type=int, default=200_000, help="most requests of each phase")
    ap.add_argument("--bad-every", type=int, default=20, help="one bad request in this many (0: none)")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/chnsenticorp/test.tsv"))
    ap.add_argument("--name", help="result name (default: from the model folder and settings)")
    args = ap.parse_args()
    texts = read_texts(Path(args.data))
    name = args.name or f"{Path(args.model).name}_w{args.workers}_{args.client}"
    load_before = os.getloadavg()
    proc, port, log = start_server(args)
    info = json.loads(_get(port, "/info"))
    rows = []
    try:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        for c in args.concurrency:
            for batch in (1, args.batch):
                r = runner(phase(args, port, proc.pid, c, batch, texts))
                rows.append(r)
                print(
                    f"c={c} texts/request={batch}: {r['requests_per_s']:,.0f} req/s, {r['texts_per_s']:,.0f} texts/s, "
                    f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['statuses']}",
                    file=sys.stderr,
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    print(
        f"\n{'conc':>4} {'texts/req':>9} {'requests':>8} {'req/s':>8} {'texts/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'5xx':>4} {'4xx':>5} {'wrong':>5} {'client cpu':>10} {'server cpu':>10}"
    )
    for r in rows:
        n4 = sum(v for k, v in r["statuses"].items() if k.startswith("4"))
        print(
            f"{r['concurrency']:4d} {r['texts_per_request']:9d} {r['requests']:8,d} {r['requests_per_s']:8,.0f} "
            f"{r['texts_per_s']:9,.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['errors_5xx']:4d} {n4:5d} "
            f"{sum(r['wrong'].values()):5d} {r['client_cpu'] * 100:9.0f}% {r['server_cpu'] * 100:9.0f}%"
        )
    print(f"server exit status after SIGTERM: {code}")
    out = HERE / "out" / f"serve_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = dict(
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        command=" ".join(["python", *sys.argv]),
        settings={k: v for k, v in vars(args).items() if k != "data"},
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        server=info,
        server_exit_status=code,
        server_log=log.read_text(errors="replace").splitlines()[:20],
        rows=rows,
    )
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


def _get(port: int, path: str) -> bytes:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    return c.getresponse().read()


if __name__ == "__main__":
    main()
