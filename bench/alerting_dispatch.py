"""Dispatch rate: notifications from the outbox to an HTTP SMS gateway, in messages/s.

M notifications (default 2,000) are enqueued straight into the outbox of a throwaway
PostgreSQL database (``outbox.enqueue`` in one transaction, untimed), then the real
``alerting.dispatcher.Dispatcher`` sends them through the real ``http`` SMS channel to the
gateway double, at several ``dispatch.concurrency`` settings. The clock runs from the
dispatcher's start until the double holds all M; afterwards every message must have reached
the double exactly once and be marked ``sent`` after one attempt.

Beside each figure, measured in the same run against the same double:

- **raw HTTP** (the ceiling): M POSTs of the same JSON through one ``httpx.AsyncClient`` by
  *concurrency* workers, no outbox;
- **outbox only**: the same dispatcher with a channel that answers at once without any
  network, i.e. what claiming and recording cost.

The double (a stdlib ``ThreadingHTTPServer``) runs in a thread of this process, as tests use
it, and in a process of its own (``--double``), to show whether it, or sharing this process's
GIL with it, is the limit.

    python -m bench.alerting_dispatch [--messages 2000] [--concurrency 1 4 16 64] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import secrets
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from alerting import gateway_double, outbox
from alerting.channels import Channel, ChannelOptions, Delivered, Outgoing, build
from alerting.dispatcher import Dispatcher
from alerting.gateway_double import GatewayDouble
from bench._common import (
    ADMIN_URL,
    fmt_int,
    load_average,
    machine_facts,
    print_header,
    stop_on_sigterm,
    throwaway_database,
    write_json,
)
from radmon.config import load_settings
from radmon.config_alerting import DispatchSettings
from radmon.store import Store

PHONE = "+84901234567"
TEXT = (
    "[RADMON] KHẨN CẤP: #{n} Trạm {n} (ST{n:05d}) vượt mức liều 150 uSv/h (nền 0.1 uSv/h) "
    "20:35 21/11 (UTC+7). Trả lời OK {n} để xác nhận."
)


# -- the gateway double: in this process, in its own, or tuned --------------------------------


class _TunedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with what a production HTTP server sets: a listen backlog above
    socketserver's 5, and TCP_NODELAY (the double writes headers and body in two writes, so
    Nagle's algorithm holds the body until the client's delayed ACK of the headers)."""

    request_queue_size = 1024

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


def start_double(tuned: bool) -> GatewayDouble:
    """The unchanged GatewayDouble; *tuned*: its server class swapped for _TunedServer while
    it starts (nothing else differs: same handler, same bookkeeping)."""
    if not tuned:
        return GatewayDouble().start()
    stock = gateway_double.ThreadingHTTPServer
    gateway_double.ThreadingHTTPServer = _TunedServer  # type: ignore[misc]
    try:
        return GatewayDouble().start()
    finally:
        gateway_double.ThreadingHTTPServer = stock  # type: ignore[misc]


class ThreadDouble:
    """The stock double on a thread of this process (as the tests run it)."""

    where = "thread"

    def __init__(self) -> None:
        self.double = start_double(tuned=False)
        self.send_url = self.double.send_url

    def wait_for(self, n: int, timeout: float) -> bool:
        return self.double.wait_for(n, timeout)

    def count(self) -> int:
        return len(self.double.delivered)

    def stats(self) -> tuple[int, int, list[str]]:
        delivered = self.double.delivered
        return len(delivered), self.double.duplicates, [str(r["id"]) for r in delivered]

    def stop(self) -> None:
        self.double.stop()


def _serve_double(conn: Any, tuned: bool) -> None:
    double = start_double(tuned)
    conn.send(double.send_url)
    while True:
        command, *args = conn.recv()
        if command == "wait":
            conn.send(double.wait_for(*args))
        elif command == "count":
            conn.send(len(double.delivered))
        elif command == "stats":
            delivered = double.delivered
            conn.send((len(delivered), double.duplicates, [str(r["id"]) for r in delivered]))
        else:
            double.stop()
            conn.send(True)
            return


class ProcessDouble:
    """The double in a process of its own (it no longer shares this process's GIL); stock,
    or tuned (see _TunedServer)."""

    def __init__(self, tuned: bool) -> None:
        self.where = "tuned" if tuned else "process"
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve_double, args=(child, tuned), daemon=True)
        self.process.start()
        self.send_url = self.conn.recv()

    def _ask(self, *message: Any) -> Any:
        self.conn.send(message)
        return self.conn.recv()

    def wait_for(self, n: int, timeout: float) -> bool:
        return self._ask("wait", n, timeout)

    def count(self) -> int:
        return self._ask("count")

    def stats(self) -> tuple[int, int, list[str]]:
        return self._ask("stats")

    def stop(self) -> None:
        if self.process.is_alive():
            self._ask("stop")
        self.process.join(10)


def make_double(where: str) -> Any:
    return ThreadDouble() if where == "thread" else ProcessDouble(tuned=where == "tuned")


# -- the runs -------------------------------------------------------------------------------


class NullChannel(Channel):
    """Answers at once: the dispatcher's own cost (claim, record) without any network."""

    kind = "sms"

    def __init__(self, expected: int) -> None:
        super().__init__("sms", ChannelOptions())
        self.count, self.expected = 0, expected
        self.all_in = asyncio.Event()

    async def send(self, message: Outgoing) -> Delivered:
        self.count += 1
        if self.count >= self.expected:
            self.all_in.set()
        return Delivered(provider_id=message.key)


def rows(run: str, m: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"{run}-{n:06d}",
            "channel": "sms",
            "address": PHONE,
            "contact": "Duty officer",
            "route": "bench",
            "group_key": f"station_id=ST{n:05d}",
            "kind": "firing",
            "alarm_ids": [],
            "subject": "",
            "text": TEXT.format(n=n),
            "payload": {},
        }
        for n in range(m)
    ]


def reset_outbox(store: Store, run: str, m: int) -> None:
    with store.transaction() as conn:
        conn.execute(text("DELETE FROM notifications"))
        outbox.enqueue(conn, rows(run, m), datetime.now(UTC))


def outbox_state(store: Store) -> tuple[dict[str, int], int]:
    with store.engine.connect() as conn:
        counts = outbox.counts(conn)
        retried = conn.execute(
            text("SELECT count(*) FROM notifications WHERE attempts <> 1")
        ).scalar()
    return counts, int(retried or 0)


async def dispatch(
    store: Store,
    channel: Channel,
    concurrency: int,
    m: int,
    done: Callable[[], Awaitable[bool]],
    delivered: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    """Run the dispatcher until *done* says all *m* arrived (or its time is up)."""
    settings = DispatchSettings(concurrency=concurrency)
    dispatcher = Dispatcher(store, {"sms": channel}, settings)
    stop, wake = asyncio.Event(), asyncio.Event()
    cpu = time.thread_time()  # the event loop's thread: the dispatcher's own Python work
    began = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop, wake))
    complete = await done()
    elapsed = time.perf_counter() - began
    loop_cpu = time.thread_time() - cpu
    count = m if complete else await delivered()
    stop.set()
    await task
    return {
        "seconds": elapsed,
        "count": count,
        "rate": count / elapsed,
        "complete": complete,
        "loop_cpu_share": loop_cpu / elapsed,
        "sent": dispatcher.sent,
        "retried": dispatcher.retried,
        "failed": dispatcher.failed,
    }


async def raw_http(url: str, concurrency: int, run: str, m: int, cap_s: float) -> dict[str, Any]:
    """The ceiling: *m* POSTs of the same body by *concurrency* workers on one client; a
    request that fails (the connection reset) is counted and sent again at once."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(m):
        queue.put_nowait(n)
    errors: Counter[str] = Counter()
    ok = 0
    deadline = time.monotonic() + cap_s

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), headers={"User-Agent": "radmon-alerting"}
    ) as client:

        async def worker() -> None:
            nonlocal ok
            while not queue.empty() and time.monotonic() < deadline:
                n = queue.get_nowait()
                body = {"to": PHONE, "text": TEXT.format(n=n), "id": f"{run}-{n:06d}"}
                try:
                    answer = await client.post(url, json=body)
                except httpx.TransportError as exc:
                    errors[type(exc).__name__] += 1
                    queue.put_nowait(n)
                    continue
                if answer.is_success:
                    ok += 1
                else:
                    errors[f"HTTP {answer.status_code}"] += 1
                    queue.put_nowait(n)

        cpu = time.thread_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        loop_cpu = time.thread_time() - cpu
    return {
        "seconds": elapsed,
        "count": ok,
        "rate": ok / elapsed,
        "complete": ok == m,
        "errors": dict(errors),
        "loop_cpu_share": loop_cpu / elapsed,
    }


def check_once(double: Any, before: tuple[int, int, list[str]], run: str, count: int) -> dict:
    """Every key of *run* that arrived arrived once, and nothing else arrived meanwhile."""
    total, duplicates, ids = double.stats()
    mine = Counter(i for i in ids[before[0] :] if i.startswith(f"{run}-"))
    return {
        "delivered": sum(mine.values()),
        "distinct": len(mine),
        "duplicates_at_gateway": duplicates - before[1],
        "exactly_once": len(mine) >= count
        and all(v == 1 for v in mine.values())
        and duplicates == before[1]
        and total - before[0] == len(mine),
    }


async def measure(
    store: Store, backend: str, double: Any, concurrency: int, args: argparse.Namespace, null: bool
) -> list[dict[str, Any]]:
    m, cap = args.messages, args.max_run_s
    out = []
    base = {"backend": backend, "double": double.where, "concurrency": concurrency, "expected": m}

    # raw HTTP, no outbox: the ceiling
    run = f"raw-{secrets.token_hex(3)}"
    before = await asyncio.to_thread(double.stats)
    figure = await raw_http(double.send_url, concurrency, run, m, cap)
    checked = await asyncio.to_thread(check_once, double, before, run, figure["count"])
    out.append({**base, "what": "raw HTTP", **figure, **checked})

    # the dispatcher, through the http SMS channel
    run = f"disp-{secrets.token_hex(3)}"
    await asyncio.to_thread(reset_outbox, store, run, m)
    before = await asyncio.to_thread(double.stats)
    channel = build("sms", "sms", "http", {"url": double.send_url}, "bench")
    try:
        figure = await dispatch(
            store,
            channel,
            concurrency,
            m,
            lambda: asyncio.to_thread(double.wait_for, before[0] + m, cap),
            lambda: asyncio.to_thread(lambda: double.count() - before[0]),
        )
    finally:
        await channel.aclose()
    counts, retried = await asyncio.to_thread(outbox_state, store)
    checked = await asyncio.to_thread(check_once, double, before, run, figure["count"])
    # after the stop the dispatcher records what it had in flight: sent = what arrived
    checked["exactly_once"] = checked["exactly_once"] and counts["sent"] == checked["delivered"]
    out.append({**base, "what": "dispatcher", **figure, **checked, "outbox": counts})

    if null:  # the outbox alone: no network, so the double plays no part
        run = f"null-{secrets.token_hex(3)}"
        await asyncio.to_thread(reset_outbox, store, run, m)
        channel = NullChannel(m)

        async def all_in() -> bool:
            try:
                await asyncio.wait_for(channel.all_in.wait(), cap)
            except TimeoutError:
                return False
            return True

        async def so_far() -> int:
            return channel.count

        figure = await dispatch(store, channel, concurrency, m, all_in, so_far)
        counts, retried = await asyncio.to_thread(outbox_state, store)
        out.append(
            {
                **base,
                "double": "-",
                "what": "outbox only",
                **figure,
                "delivered": channel.count,
                "exactly_once": counts["sent"] == channel.count and not retried,
                "outbox": counts,
            }
        )
    return out


def run_backend(
    url: str, backend: str, args: argparse.Namespace, doubles: Sequence[Any]
) -> list[dict[str, Any]]:
    store = Store.open(load_settings(database={"url": url}))
    store.upgrade()
    results: list[dict[str, Any]] = []
    try:
        for concurrency in args.concurrency:
            for k, double in enumerate(doubles):
                found = asyncio.run(measure(store, backend, double, concurrency, args, k == 0))
                for row in found:
                    print_row(row)
                results.extend(found)
    finally:
        store.close()
    return results


def print_row(r: dict[str, Any]) -> None:
    once = "yes" if r.get("exactly_once") else "NO"
    errors = r.get("errors") or ({"retried": r["retried"]} if r.get("retried") else {})
    notes = f"  errors: {errors}" if errors else ""
    if not r["complete"]:
        notes += f"  ({r['count']:,} of {r['expected']:,} within the time cap)"
    print(
        f"{r['backend']:<10} {r['double']:>7} {r['concurrency']:>4} {r['what']:<12} "
        f"{fmt_int(r['rate']):>8}/s {r['seconds']:>7.2f} s  "
        f"loop CPU {100 * r['loop_cpu_share']:>3.0f} %  once: {once}{notes}",
        flush=True,
    )


def table(results: Sequence[dict[str, Any]]) -> None:
    """One line per backend, double and concurrency: dispatcher vs both references."""
    print()
    print(
        f"{'backend':<10} {'double':>7} {'conc':>4} {'dispatcher/s':>12} {'raw HTTP/s':>10} "
        f"{'ratio':>6} {'outbox only/s':>13} {'loop CPU':>8} {'once':>5} {'≥ 100/s':>8}"
    )
    null = {
        (r["backend"], r["concurrency"]): r["rate"] for r in results if r["what"] == "outbox only"
    }
    raw = {
        (r["backend"], r["double"], r["concurrency"]): r for r in results if r["what"] == "raw HTTP"
    }
    for r in results:
        if r["what"] != "dispatcher":
            continue
        ceiling = raw[(r["backend"], r["double"], r["concurrency"])]
        once = r["exactly_once"] and ceiling["exactly_once"]
        print(
            f"{r['backend']:<10} {r['double']:>7} {r['concurrency']:>4} {fmt_int(r['rate']):>12} "
            f"{fmt_int(ceiling['rate']):>10} {r['rate'] / ceiling['rate']:>6.2f} "
            f"{fmt_int(null[(r['backend'], r['concurrency'])]):>13} "
            f"{100 * r['loop_cpu_share']:>7.0f}% {'yes' if once else 'NO':>5} "
            f"{'met' if r['rate'] >= 100 else 'MISSED':>8}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.alerting_dispatch", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="notifications per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument(
        "--double",
        choices=("thread", "process", "tuned"),
        nargs="+",
        default=["thread", "tuned"],
        help="gateway doubles: stock in a thread here, stock in its own process, tuned "
        "(own process, TCP_NODELAY, listen backlog 1,024)",
    )
    parser.add_argument(
        "--max-run-s", type=float, default=30.0, help="time cap of one run (slow set-ups)"
    )
    parser.add_argument("--sqlite", action="store_true", help="also on a SQLite store")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.concurrency, args.max_run_s = 200, [1, 16], 5.0
    if args.messages < 1 or any(c < 1 or c > 256 for c in args.concurrency):
        parser.error("--messages must be ≥ 1 and --concurrency within 1..256")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    # one warning per retried send would bury the figures: retries are counted instead
    logging.getLogger("alerting.dispatcher").setLevel(logging.ERROR)
    facts = machine_facts(args.pg)
    places = list(dict.fromkeys(args.double))
    print_header(
        "alerting dispatch: outbox → Dispatcher → http SMS channel → gateway double",
        [
            f"{fmt_int(args.messages)} notifications per run, enqueued in one transaction "
            "before the clock starts; clock: dispatcher start → the double holds all of them "
            f"(a run stops after {args.max_run_s:g} s: then the rate is what arrived by then)",
            f"concurrency {', '.join(map(str, args.concurrency))} (DispatchSettings.concurrency); "
            "other dispatch settings at their defaults, database pool at its default (5)",
            f"gateway double (stdlib ThreadingHTTPServer): {', '.join(places)}",
            "references in the same run: raw HTTP = the same POSTs from one httpx.AsyncClient "
            "with as many workers (the ceiling); outbox only = the dispatcher with a channel "
            "that answers at once; loop CPU = CPU time of this process's event-loop thread / "
            "wall time",
            "backends: PostgreSQL" + (", SQLite (WAL, a file)" if args.sqlite else ""),
        ],
        facts,
    )
    print(f"{'backend':<10} {'double':>7} {'conc':>4} {'run':<12} {'rate':>10} {'time':>9}")
    doubles: list[Any] = []
    results: list[dict[str, Any]] = []
    try:
        for place in places:
            doubles.append(make_double(place))
        with throwaway_database(args.pg) as url:
            results += run_backend(url, "PostgreSQL", args, doubles)
        if args.sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'outbox.db'}"
                results += run_backend(url, "SQLite", args, doubles)
    finally:
        for double in doubles:
            double.stop()
    table(results)
    print(f"\nload average at the end: {load_average()}")
    write_json(args.json, {"machine": facts, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
