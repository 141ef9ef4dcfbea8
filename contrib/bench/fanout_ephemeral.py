"""The bench's `fanout` workload with and without typing and receipts flowing.

Issue 3 asks for the `fanout` figures "while typing and receipts flow":
message delivery to 50 long-polling listeners must not get worse when the
same room also carries typing notifications and read receipts (every one of
which wakes every listener's /sync too).

This script drives the benchmark harness's own load generator (`load.py`
from the bench directory, imported, not copied): each round runs its
`fanout` workload twice against the same server, once plain and once with a
side load started when the timed section starts and stopped when it ends:

* typists: the first ``--typists`` listeners each send ``typing: true``
  (timeout 5 s) every ``--typing-interval-s`` seconds, and ``typing: false``
  every other time, staggered;
* readers: the first ``--readers`` listeners each send an ``m.read`` receipt
  for the newest message of the run every ``--receipt-interval-s`` seconds
  (when it changed), staggered, as a client that marks what it has shown.

The order alternates (plain first in odd rounds), and a table of medians over
the rounds is printed, with the ratio plain/with for latencies (>= 1: no
worse with the side load) and the side load's request counts and errors.

    .venv/bin/python contrib/bench/fanout_ephemeral.py --bench-dir ../shared/bench \\
        --url http://127.0.0.1:18100 --pid PID --rounds 3

Runs with the bench venv's interpreter (needs aiohttp): bench.sh's venv, e.g.
``~/.cache/myelin-bench/venv/bin/python``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote


def _load_module(bench_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bench_load", bench_dir / "load.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no load.py in {bench_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module
    spec.loader.exec_module(module)
    return module


class SideLoad:
    """Typing and receipts in the fanout room during the timed section."""

    def __init__(self, load: Any, opts: argparse.Namespace) -> None:
        self.load = load
        self.opts = opts
        self.enabled = False
        self.room: str | None = None
        self.listeners: list[Any] = []
        self.latest_event: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.api: Any = None
        self.counts = {"typing": 0, "receipts": 0, "errors": 0}

    def install(self) -> None:
        """Patch load.py's Ctx, Api and Measure so the fanout workload carries the side load."""
        side = self
        ctx_cls, api_cls, measure_cls = self.load.Ctx, self.load.Api, self.load.Measure
        orig_join_all, orig_raw = ctx_cls.join_all, api_cls.raw
        orig_enter, orig_exit = measure_cls.__enter__, measure_cls.__exit__

        async def join_all(ctx, users, room_id):
            await orig_join_all(ctx, users, room_id)
            if len(users) == ctx.args.fanout_listeners:  # the fanout listeners joining its room
                side.room, side.listeners, side.api = room_id, list(users), ctx.api

        async def raw(api, method, path, token=None, body=None, params=None, **kw):
            status, data = await orig_raw(api, method, path, token, body, params, **kw)
            if (side.room is not None and method == "PUT" and status == 200
                    and "/send/m.room.message/" in path and quote(side.room, safe="") in path):
                try:
                    side.latest_event = json.loads(data)["event_id"]
                except (ValueError, KeyError, TypeError):
                    pass
            return status, data

        def enter(measure):
            result = orig_enter(measure)
            if side.enabled and side.room is not None:
                side.start()
            return result

        def exit_(measure, *exc):
            if side.tasks:
                side.stop()
            return orig_exit(measure, *exc)

        ctx_cls.join_all, api_cls.raw = join_all, raw
        measure_cls.__enter__, measure_cls.__exit__ = enter, exit_

    def start(self) -> None:
        o = self.opts
        for i, user in enumerate(self.listeners[:o.typists]):
            offset = o.typing_interval_s * i / max(o.typists, 1)
            self.tasks.append(asyncio.ensure_future(self._typist(user, offset)))
        for i, user in enumerate(self.listeners[:o.readers]):
            offset = o.receipt_interval_s * i / max(o.readers, 1)
            self.tasks.append(asyncio.ensure_future(self._reader(user, offset)))

    def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        self.tasks = []

    async def _typist(self, user: Any, offset: float) -> None:
        await asyncio.sleep(offset)
        path = f"/_matrix/client/v3/rooms/{quote(self.room, safe='')}/typing/{quote(user.user_id, safe='')}"
        typing = True
        while True:
            body = {"typing": True, "timeout": 5000} if typing else {"typing": False}
            await self._call("PUT", path, user.token, body, "typing")
            typing = not typing
            await asyncio.sleep(self.opts.typing_interval_s)

    async def _reader(self, user: Any, offset: float) -> None:
        await asyncio.sleep(offset)
        marked = None
        while True:
            latest = self.latest_event
            if latest is not None and latest != marked:
                path = (f"/_matrix/client/v3/rooms/{quote(self.room, safe='')}/receipt/m.read/"
                        f"{quote(latest, safe='')}")
                await self._call("POST", path, user.token, {}, "receipts")
                marked = latest
            await asyncio.sleep(self.opts.receipt_interval_s)

    async def _call(self, method: str, path: str, token: str, body: dict, kind: str) -> None:
        try:
            status, _ = await self.api.raw(method, path, token, body)
        except Exception:
            status = -1
        if status == 200:
            self.counts[kind] += 1
        else:
            self.counts["errors"] += 1


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench-dir", type=Path, required=True, help="directory holding the harness's load.py")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--typists", type=int, default=10)
    p.add_argument("--typing-interval-s", type=float, default=1.0)
    p.add_argument("--readers", type=int, default=50)
    p.add_argument("--receipt-interval-s", type=float, default=2.0)
    opts, rest = p.parse_known_args(argv)
    load = _load_module(opts.bench_dir)
    side = SideLoad(load, opts)
    side.install()

    results: dict[str, list[dict]] = {"plain": [], "with": []}
    side_counts: list[dict] = []
    for rnd in range(opts.rounds):
        order = ["plain", "with"] if rnd % 2 == 0 else ["with", "plain"]
        for kind in order:
            args = load.parse_args(rest + ["--workloads", "fanout"])
            side.enabled = kind == "with"
            side.room, side.latest_event = None, None
            side.counts = {"typing": 0, "receipts": 0, "errors": 0}
            doc = asyncio.run(load.run(args))
            res = doc["workloads"]["fanout"]
            if "error" in res:
                print(f"round {rnd + 1} {kind}: FAILED {res['error']}", file=sys.stderr)
                return 1
            results[kind].append(res)
            if kind == "with":
                side_counts.append(dict(side.counts, wall_s=res["details"].get("wall_s")))
            time.sleep(2)

    print(f"\nfanout, {opts.rounds} rounds; side load: {opts.typists} typists every {opts.typing_interval_s}s, "
          f"{opts.readers} readers every {opts.receipt_interval_s}s")
    print("medians over rounds; ratio = plain/with for these lower-is-better figures (>= 1: no worse with it)")
    print(f"{'figure':<18}{'plain':>12}{'with':>12}{'ratio':>8}   plain rounds / with rounds")

    def row(name: str, values: dict[str, list[Any]], ratio: bool) -> None:
        a, b = _median(values["plain"]), _median(values["with"])
        r = (a / b) if ratio and a and b else None
        rounds = " ".join(str(v) for v in values["plain"]) + " / " + " ".join(str(v) for v in values["with"])
        print(f"{name:<18}{a if a is not None else '-':>12}{b if b is not None else '-':>12}"
              f"{(f'{r:.2f}' if r else '-'):>8}   {rounds}")

    for name in ["deliver_p50_ms", "deliver_p95_ms", "deliver_p99_ms", "missed", "cpu_ms_per_msg"]:
        row(name, {k: [r["figures"].get(name, {}).get("value") for r in v] for k, v in results.items()}, True)
    for key in ("sync_responses", "limited", "sync_errors", "other_cpu_frac"):
        row(key, {k: [r["details"].get(key) for r in v] for k, v in results.items()}, False)
    for i, c in enumerate(side_counts):
        print(f"side load round {i + 1}: {c['typing']} typing, {c['receipts']} receipts, {c['errors']} errors "
              f"in {c['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
