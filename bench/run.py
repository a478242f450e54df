"""`make bench`: aicp against the direct upstream and the peer gateways, in one run.

Uses the shared harness (../shared/bench, or AICP_BENCH_DIR): the fake
upstream, the load generator and matrix.py. aicp runs with one worker pinned
to CPU 0 (and, with --workers2, two workers on both cores). LiteLLM and
Portkey run in the same session when their baseline installs exist (or with
--peers, which installs them from the package registries first).

Prints one table with ratios and writes bench/results/<timestamp>/.
All traffic stays on 127.0.0.1 and every cell is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("AICP_BENCH_DIR", ROOT.parent / "shared" / "bench"))
PEERS = {
    "litellm": ("run_litellm_baseline.sh", Path("/tmp/bench-litellm/litellm-venv/bin/litellm")),
    "portkey": (
        "run_portkey_baseline.sh",
        Path("/tmp/bench-portkey/portkey/node_modules/@portkey-ai/gateway"),
    ),
}


AICP = ROOT / ".venv" / "bin" / "aicp"
BENCH_MASTER = "sk-bench-master-loopback-only"
#: The question of the load generator's chat preset (../shared/bench/load.py).
PROBE_QUESTION = "Say hello in one short sentence."


def matrix(
    name: str,
    out: Path,
    args: argparse.Namespace,
    cpu: str,
    workers: int,
    env: dict[str, str] | None = None,
    headers: list[str] | None = None,
    source: Path | None = None,
    config: str = "bench.yaml",
) -> None:
    env = {"AICP_DATA_DIR": tempfile.mkdtemp(prefix="aicp-bench-"), **(env or {})}
    # Another checkout's src first on the path: the same venv runs an older aicp.
    path = f"PYTHONPATH={source / 'src'} " if source is not None else ""
    cmd = (
        f"exec env {path}AICP_BENCH_UPSTREAM={{upstream}} {AICP} serve --config "
        f"{ROOT / 'bench' / config} --port {{port}} --workers {workers} --log-level warning"
    )
    extra: list[str] = []
    for key, value in env.items():
        extra += ["--gateway-env", f"{key}={value}"]
    for header in headers or []:
        extra += ["-H", header]
    subprocess.run(
        [
            sys.executable,
            str(HARNESS / "matrix.py"),
            "--name",
            name,
            "--gateway-port",
            "14001",
            "--ready-path",
            "/ready",
            "--gateway-cmd",
            cmd,
            "--gateway-cpu",
            cpu,
            "--latencies",
            args.latencies,
            "--concurrency",
            args.concurrency,
            "--stream-concurrency",
            "1,10",
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--ttfb",
            "--out",
            str(out),
            *extra,
        ],
        check=True,
    )


@contextlib.contextmanager
def gateway(config: str, port: str, env: dict[str, str]) -> Iterator[str]:
    """`aicp serve` on `config` and a loopback port, until ready; its base URL."""
    proc = subprocess.Popen(
        [
            str(AICP),
            "serve",
            "--config",
            str(ROOT / "bench" / config),
            "--port",
            port,
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def post(url: str, body: Mapping[str, object], key: str = BENCH_MASTER) -> dict[str, object]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer: dict[str, object] = json.loads(resp.read())
        return answer


def identity_key(data_dir: str) -> str:
    """A virtual key with a budget and rate limits, made through the admin API.

    The identity run measures what authentication, budget reservation and
    rate limiting add: every request carries this key, so all three run.
    """
    env = {"AICP_DATA_DIR": data_dir, "AICP_MASTER_KEY": BENCH_MASTER, "AICP_BENCH_UPSTREAM": "1"}
    with gateway("bench.yaml", "14077", env) as base:
        made = post(
            base + "/admin/keys",
            {
                "name": "bench",
                "rpm": 100_000_000,
                "tpm": 2_000_000_000,
                "budget_usd": 1_000_000,
                "budget_period": "monthly",
            },
        )
        return str(made["key"])


def cache_probe(config: str) -> None:
    """Three times the load generator's request through a gateway on `config`: the last
    two must be cache hits, or the cache cells would measure misses."""
    upstream = subprocess.Popen(
        [sys.executable, str(HARNESS / "fake_upstream.py"), "--port", "14078"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AICP_DATA_DIR": tempfile.mkdtemp(prefix="aicp-bench-probe-"),
        "AICP_MASTER_KEY": BENCH_MASTER,
        "AICP_BENCH_UPSTREAM": "14078",
    }
    ask = {"model": "fake-model", "messages": [{"role": "user", "content": PROBE_QUESTION}]}
    try:
        time.sleep(0.5)
        with gateway(config, "14079", env) as base:
            for _ in range(3):
                post(base + "/v1/chat/completions", ask)
            req = urllib.request.Request(
                base + "/admin/cache/stats", headers={"authorization": f"Bearer {BENCH_MASTER}"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                hits = int(json.loads(resp.read())["hits"])
    finally:
        upstream.terminate()
        upstream.wait(10)
    if hits != 2:
        sys.exit(f"{config}: {hits} of 3 identical requests were cache hits, not 2")
    print(f"{config}: 2 of 3 identical requests answered from the cache")


def peer(name: str, out: Path, args: argparse.Namespace) -> None:
    script, _ = PEERS[name]
    env = {
        **os.environ,
        "OUT": str(out),
        "DURATION": str(args.duration),
        "WARMUP": str(args.warmup),
        "LATENCIES": args.latencies,
        "CONCURRENCY": args.concurrency,
        "STREAM_CONCURRENCY": "1,10",
    }
    subprocess.run(["bash", str(HARNESS / script)], env=env, check=True)


def load(out: Path) -> list[dict[str, object]]:
    rows = []
    for path in sorted(out.rglob("results.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def pick(
    rows: list[dict[str, object]], label: str, preset: str, c: int, engine: str = "wrk"
) -> dict[str, object] | None:
    for r in rows:
        if (
            r.get("label") == label
            and r.get("preset") == preset
            and r.get("concurrency") == c
            and r.get("upstream_latency_ms") == 0
            and r.get("engine", "wrk") == engine
        ):
            return r
    return None


def num(row: dict[str, object] | None, key: str) -> float | None:
    if row is None or row.get(key) is None:
        return None
    return float(row[key])  # type: ignore[arg-type]


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows: list[dict[str, object]]) -> str:
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    direct_c1 = pick(rows, "direct", "chat", 1)
    direct_ttfb = pick(rows, "direct", "chat-stream", 1, "python")
    lines = [
        "| system | req/s c=1 | req/s c=10 | CPU ms/req c=10 | added p50 c=1 (ms) "
        "| streams/s c=10 | added TTFB p50 c=1 (ms) | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, dict[str, float | None]] = {}
    for label in labels:
        c1, c10 = pick(rows, label, "chat", 1), pick(rows, label, "chat", 10)
        st = pick(rows, label, "chat-stream", 10)
        ttfb = pick(rows, label, "chat-stream", 1, "python")
        added = None
        if label != "direct" and c1 and direct_c1:
            added = num(c1, "p50_ms") - num(direct_c1, "p50_ms")  # type: ignore[operator]
        added_ttfb = None
        ours_ttfb, base_ttfb = num(ttfb, "ttfb_p50_ms"), num(direct_ttfb, "ttfb_p50_ms")
        if label != "direct" and ours_ttfb is not None and base_ttfb is not None:
            added_ttfb = ours_ttfb - base_ttfb
        summary[label] = {"rps10": num(c10, "rps"), "cpu": num(c10, "gateway_cpu_ms_per_req")}
        cells = [
            label,
            fmt(num(c1, "rps"), 0),
            fmt(num(c10, "rps"), 0),
            fmt(num(c10, "gateway_cpu_ms_per_req")),
            fmt(added),
            fmt(num(st, "rps"), 0),
            fmt(added_ttfb),
            fmt(num(c10, "gateway_rss_mb"), 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    ours = summary.get("aicp", {})
    for peer_label in ("litellm-w1", "portkey", "direct"):
        theirs = summary.get(peer_label)
        if theirs and ours.get("rps10") and theirs.get("rps10"):
            ratio = ours["rps10"] / theirs["rps10"]  # type: ignore[operator]
            lines.append(f"\naicp / {peer_label} req/s at c=10: {ratio:.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--latencies", default="0")
    ap.add_argument("--concurrency", default="1,10")
    ap.add_argument("--peers", action="store_true", help="install and run LiteLLM and Portkey")
    ap.add_argument("--no-peers", action="store_true", help="skip the peers even when installed")
    ap.add_argument("--workers2", action="store_true", help="also run aicp --workers 2")
    ap.add_argument(
        "--identity",
        action="store_true",
        help="also run aicp with a virtual key that has a budget and rate limits",
    )
    ap.add_argument(
        "--cache",
        action="store_true",
        help="also run aicp answering every request from its exact, then its semantic cache",
    )
    ap.add_argument(
        "--baseline",
        metavar="REF",
        action="append",
        default=[],
        help="also run aicp as of this git commit (e.g. the one before a change), same run; "
        "may be given more than once",
    )
    args = ap.parse_args()
    if not (HARNESS / "matrix.py").exists():
        sys.exit(f"bench harness not found at {HARNESS} (set AICP_BENCH_DIR)")
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    matrix("aicp", out / "aicp", args, cpu="0", workers=1)
    for ref in args.baseline:
        source = Path(tempfile.mkdtemp(prefix="aicp-baseline-"))
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        matrix(f"aicp@{ref}", out / f"aicp-baseline-{ref}", args, "0", 1, source=source)
    if args.identity:
        data_dir = tempfile.mkdtemp(prefix="aicp-bench-identity-")
        key = identity_key(data_dir)
        env = {"AICP_DATA_DIR": data_dir, "AICP_MASTER_KEY": BENCH_MASTER}
        headers = [f"Authorization: Bearer {key}"]
        matrix("aicp-key", out / "aicp-key", args, "0", 1, env, headers)
    if args.cache:
        # One body sent again and again: every request after the first is a hit.
        cache_probe("bench-cache.yaml")
        cache_probe("bench-semantic.yaml")
        matrix("aicp-exact-hits", out / "aicp-exact-hits", args, "0", 1, config="bench-cache.yaml")
        matrix(
            "aicp-semantic-hits",
            out / "aicp-semantic-hits",
            args,
            "0",
            1,
            config="bench-semantic.yaml",
        )
    if args.workers2:
        matrix("aicp-2w", out / "aicp-2w", args, cpu="0,1", workers=2)
    for name, (_, marker) in PEERS.items():
        if not args.no_peers and (args.peers or marker.exists()):
            peer(name, out / name, args)
    text = table(load(out))
    (out / "table.md").write_text(text + "\n")
    print(text)
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
