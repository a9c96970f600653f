"""Slack ack latency: ``atombot run --slack-port`` beside a bare slack-bolt app that only acks.

Both servers run as subprocesses on this machine in the same run and talk to one local fake
Slack Web API (tests/fakes/slack_api.py). For each concurrency C the load generator sends N
signed ``/atom`` slash commands to each server with C in flight and times each HTTP answer;
the servers take turns in rounds (atombot, bare, bare, atombot, ...) so that a noisy machine
hurts both alike. atombot acks at once ("working on it") and routes in the background: its
round lasts until every receipt has reached the fake's response_url, so its background work
falls in its own rounds. Prints the machine, p50/p99 per server and the p99 ratio.

    python benchmarks/slack_ack.py                       # 200 requests per server, at 20 and 50
    python benchmarks/slack_ack.py -n 400 -c 20 50 --no-worker
    python benchmarks/slack_ack.py -c 50 --profile ack.prof   # then: python -m pstats ack.prof

The first run trains the intent classifier into the data directory (cached afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.slack.adapter import text as slack_text  # noqa: E402
from tests.fakes.slack_api import FakeSlack, SignedRequest  # noqa: E402

WORKING = slack_text("slack.ack.working", "en")
REQUESTS = (
    "draft an email to Dana about the delayed shipment",
    "summarize #sales since yesterday",
    "remind me tomorrow at 9 to send the report",
    "draft a reply to this message: can we move the demo to friday?",
    "status",
)


def reply_text(body: str) -> str:
    """The text of an ack body (JSON ``{"text": ...}``, plain text, or empty)."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    return str(value.get("text", "")) if isinstance(value, dict) else body


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_bare(port: int, api_url: str, token: str, secret: str) -> None:
    """The baseline: a bolt AsyncApp whose only listener acks the slash command."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    async def main() -> None:
        bolt = AsyncApp(client=AsyncWebClient(token=token, base_url=api_url), signing_secret=secret)

        @bolt.command("/atom")
        async def ack_only(ack: object) -> None:
            await ack()  # type: ignore[operator]

        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(
                await bolt.async_dispatch(await to_bolt_request(request))
            )

        app = web.Application()
        app.router.add_post("/slack/events", events)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


async def wait_until_serving(url: str, process: subprocess.Popen[bytes], limit: float) -> None:
    """Poll until something answers on the events URL (any status) or give up."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                async with session.post(url, data=b"{}", timeout=aiohttp.ClientTimeout(total=2)):
                    return
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} did not come up within {limit:.0f} s")


async def load(
    url: str, requests: Sequence[SignedRequest], concurrency: int
) -> tuple[list[float], list[int], list[str]]:
    """Send every request with ``concurrency`` in flight; latencies in ms, statuses, bodies."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: list[int] = []
    bodies: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(request: SignedRequest) -> None:
            async with gate:
                started = time.perf_counter()
                async with session.post(
                    url, data=request.body, headers=request.headers
                ) as response:
                    body = await response.text()
                latencies.append((time.perf_counter() - started) * 1000)
                statuses.append(response.status)
                bodies.append(body)

        await asyncio.gather(*(one(r) for r in requests))
    return latencies, statuses, bodies


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[int(q * 10) - 1]


def machine() -> str:
    """CPU model, cores usable by this process, and the load average (others' work)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{model}, {cores} cores (of {os.cpu_count()}), load average {load}"


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server subprocess with its output in ``log``."""
    handle = log.open("wb")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


Result = tuple[list[float], list[int], list[str]]


async def run(args: argparse.Namespace) -> None:
    """Start the fake, both servers, load them in alternating rounds, print the figures."""
    work: Path = args.work
    print(f"machine: {machine()}", flush=True)
    async with FakeSlack(rate_limits={}) as fake:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": fake.signing_secret,
            "SLACK_API_URL": fake.api_url,
            "ATOMBOT_DATA_DIR": str(work),
            "DATABASE_URL": f"sqlite:///{work / f'bench-{os.getpid()}.db'}",
            "ATOMBOT_LOG_LEVEL": "WARNING",
        }
        env.pop("SLACK_APP_TOKEN", None)
        if not args.no_worker:
            from models.generation.tiny import build_tiny_model

            env["ATOMBOT_MODEL"] = str(build_tiny_model(work / "tiny-lm"))
        bot_port, bare_port = free_port(), free_port()
        profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
        atombot_cmd = [sys.executable, *profile, "-m", "bot", "run", "--slack-port", str(bot_port)]
        if args.no_worker:
            atombot_cmd.append("--no-worker")
        bare_cmd = [sys.executable, __file__, "--serve-bare", str(bare_port), fake.api_url]
        servers = {
            "atombot": (start(atombot_cmd, env, work / "atombot.log"), bot_port),
            "bare bolt": (start(bare_cmd, env, work / "bare.log"), bare_port),
        }
        urls = {
            name: f"http://127.0.0.1:{port}/slack/events" for name, (_, port) in servers.items()
        }
        results: dict[tuple[int, str], Result] = {}
        sent = 0

        async def one_round(name: str, concurrency: int, count: int) -> None:
            nonlocal sent
            requests = [
                fake.signed_slash_command(
                    REQUESTS[(sent + i) % len(REQUESTS)], user_id=f"U{i % 40:04d}"
                )
                for i in range(count)
            ]
            sent += count
            receipts = len(fake.response_url_posts)
            latencies, statuses, bodies = await load(urls[name], requests, concurrency)
            if name == "atombot":
                # The round lasts until atombot's background work for it is done.
                await fake.wait_until(
                    lambda: len(fake.response_url_posts) >= receipts + count, within_s=600
                )
            kept = results.setdefault((concurrency, name), ([], [], []))
            kept[0].extend(latencies)
            kept[1].extend(statuses)
            kept[2].extend(bodies)

        try:
            for name, (process, _) in servers.items():
                await wait_until_serving(urls[name], process, limit=900)
                warmup = [fake.signed_slash_command("help", user_id="U0WARM") for _ in range(10)]
                await load(urls[name], warmup, 5)
            await asyncio.sleep(2)
            order = list(servers)
            for concurrency in args.concurrency:
                per_round = max(1, args.requests // args.rounds)
                for round_no in range(args.rounds):
                    for name in order if round_no % 2 == 0 else reversed(order):
                        await one_round(name, concurrency, per_round)
        finally:
            for process, _ in servers.values():
                process.terminate()
            for process, _ in servers.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()

    print(
        f"signed slash commands: {args.requests} per server and concurrency, in {args.rounds} "
        f"alternating rounds; worker={'off' if args.no_worker else 'on (tiny model)'}"
    )
    print(f"machine at the end: {machine()}")
    print(
        f"{'conc':>4} {'server':<10} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
        f"{'non-200':>8} {'acked at once':>14}"
    )
    for concurrency in args.concurrency:
        summary: dict[str, tuple[float, float]] = {}
        for name in servers:
            latencies, statuses, bodies = results[(concurrency, name)]
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            summary[name] = (p50, p99)
            immediate = sum(WORKING in reply_text(body) for body in bodies)
            bad = sum(status != 200 for status in statuses)
            print(
                f"{concurrency:>4} {name:<10} {p50:>9.1f} {p99:>9.1f} {max(latencies):>9.1f} "
                f"{bad:>8} {immediate:>14}"
            )
        (bot50, bot99), (bare50, bare99) = summary["atombot"], summary["bare bolt"]
        ratio = bot99 / bare99
        print(
            f"{concurrency:>4} ratio atombot/bare: p50 {bot50 / bare50:.2f}x, p99 {ratio:.2f}x "
            f"({'within' if ratio <= 1.5 else 'OVER'} 1.5x)"
        )
    print(f"logs and database in {work}")


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-n", "--requests", type=int, default=200, help="per server and concurrency"
    )
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per concurrency")
    parser.add_argument(
        "--no-worker", action="store_true", help="run atombot without its generation worker"
    )
    parser.add_argument("--data-dir", default=None, help="keep the classifier cache and logs here")
    parser.add_argument(
        "--profile",
        default=None,
        help="run atombot under cProfile, its event-loop thread, into FILE",
    )
    parser.add_argument(
        "--serve-bare", nargs=2, metavar=("PORT", "API_URL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(
            int(args.serve_bare[0]),
            args.serve_bare[1],
            os.environ["SLACK_BOT_TOKEN"],
            os.environ["SLACK_SIGNING_SECRET"],
        )
        return
    args.work = Path(args.data_dir or tempfile.mkdtemp(prefix="atombot-bench-"))
    args.work.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
