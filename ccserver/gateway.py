"""Gateway: the composition root, where every service of one server process is built.

Built once from the settings; the CLI is found and probed during ASGI lifespan start-up.
A missing CLI does not stop the server: /health reports it and chat requests get a 503
that says how to install it. This is the only module that names every concrete service;
the turn core gets the few it needs as one `TurnServices`, the routes get the gateway.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import trio

from ccproto import PlanOptions, structure_request

from .cluster.link import RedisLink
from .cluster.locks import SharedLocks
from .cluster.stats import ClusterStats
from .conversations.expiry import Janitor
from .conversations.locks import ConversationLocks
from .conversations.records import Records
from .conversations.redis_store import RedisStore
from .conversations.registry import Conversations
from .conversations.sessions import SessionFiles
from .conversations.sqlite import SQLiteStore
from .conversations.store import ConversationStore
from .conversations.transcripts import TranscriptShare
from .core.cache import ResponseCache
from .core.context import TurnServices
from .core.planning import planner
from .core.retry import RetryPolicy
from .edge.drain import Drain
from .edge.metrics import Stats
from .errors import CLIUnavailable
from .pool.admission import Admission
from .pool.pool import POOL_COUNTERS, Pool
from .proc.discovery import CLIInfo, find_cli, probe_cli
from .proc.guard import start_watchdog, stop_predecessors
from .proc.reading import RunLimits
from .settings import Settings
from .settings.startup import claude_options, cold_starts, plan_options

__all__ = ["Gateway"]

log = logging.getLogger("ccserver")


class Gateway:
    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = dict(os.environ if environ is None else environ)
        self.admission = Admission(
            max_live=settings.claude.max_concurrent_sessions,
            max_queued=settings.claude.max_queued_requests,
            queue_timeout=settings.claude.queue_timeout_seconds,
        )
        self.cli_path: str | None = None
        self.cli_info: CLIInfo | None = None
        #: How every run is planned; None until a CLI was found.
        self.options: PlanOptions | None = None
        self.workspace = Path(settings.claude.workspace)
        c = settings.claude
        self.limits = RunLimits(
            first_output=c.first_output_timeout_seconds,
            idle=c.idle_timeout_seconds,
            total=c.timeout_seconds,
            kill_grace=c.kill_grace_seconds,
            max_line_bytes=c.max_line_bytes,
            stderr_tail_bytes=c.stderr_tail_bytes,
        )
        #: This gateway among those that share a store: whose locks and figures are whose.
        self.gateway_id = f"gw_{uuid.uuid4().hex[:12]}"
        conv = settings.conversation
        #: The shared Redis, when conversations live there (`run_link` keeps it open).
        self.link = (RedisLink(conv.store_url, timeout=conv.store_timeout_seconds)
                     if conv.store_url else None)
        self.store: ConversationStore = (RedisStore(self.link) if self.link is not None
                                         else SQLiteStore(Path(conv.store_path)))
        files = SessionFiles({**self.environ, **c.extra_env})
        self.records = Records(
            self.store, files, conv, workspace=self.workspace,
            cli_version=lambda: (self.cli_info and self.cli_info.version) or "unknown",
        )
        self.shared_locks = (SharedLocks(self.link, self.gateway_id, ttl=conv.lock_seconds)
                             if self.link is not None else None)
        self.conversations = Conversations(self.records, ConversationLocks(self.shared_locks))
        self.pool = Pool(
            size=settings.pool.size,
            idle_seconds=settings.pool.idle_seconds,
            max_processes=c.max_concurrent_sessions,
            limits=self.limits,
            hold_seconds=settings.client_tools.hold_seconds,
            max_cold_starts=cold_starts(settings),
        )
        self.janitor = Janitor(self.records, self.conversations.locks,
                              on_remove=self.pool.forget)
        if self.link is not None:
            # Sessions travel with their conversations; a process that served one which
            # another gateway went on with is stale (conversations/transcripts.py).
            self.records.share = TranscriptShare(
                self.link, files, self.conversations.locks, gateway_id=self.gateway_id,
                keep_seconds=conv.session_timeout_minutes * 60, on_stale=self.pool.forget)
        self.cache = ResponseCache(settings.cache, link=self.link)
        self.retry = RetryPolicy.from_settings(c)
        self.stats = self._stats()
        #: This gateway's figures published for the others, and theirs added up (/stats).
        self.cluster_stats = (ClusterStats(self.link, self.gateway_id, self.stats.snapshot)
                              if self.link is not None else None)
        #: Cut by ccserver.serve when a graceful shutdown's grace runs out.
        self.drain = Drain()
        #: What a turn needs; None until a CLI was found.
        self.services: TurnServices | None = None

    async def run_link(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                       ) -> None:
        """For the server's lifetime, before `start`: the shared store's connection, if one
        is configured. Raises if it does not answer, which stops start-up."""
        if self.link is None:
            task_status.started()
            return
        await self.link.run(task_status=task_status)

    async def start(self) -> None:
        """Stop a dead predecessor's leftovers, open the store, find and probe the CLI, and
        make sure the workspace exists."""
        # First of all: a CLI a SIGKILLed gateway left running would append its turn to a
        # transcript after we rolled it back (proc/guard.py). None can once this returns.
        if stopped := await stop_predecessors():
            log.warning("stopped %d processes a previous gateway left running", stopped)
        start_watchdog()
        self.workspace.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        # Before looking for the CLI: a bad file-access or MCP setting stops start-up.
        extra = claude_options(self.settings, self.environ)
        self.cli_path = find_cli(self.settings, environ=self.environ)
        if self.cli_path is None:
            log.warning("Claude Code CLI not found: %s", self.cli_missing_message())
            return
        self.options = plan_options(self.settings, extra, executable=self.cli_path,
                                    workspace=self.workspace)
        self.services = TurnServices(
            settings=self.settings, environ=self.environ, options=self.options,
            limits=self.limits, retry=self.retry, pool=self.pool, admission=self.admission,
            conversations=self.conversations, records=self.records)
        self.cli_info = await probe_cli(self.cli_path, self.environ)
        version = self.cli_info.version or "version unknown"
        log.info("Claude Code CLI %s (%s)", self.cli_path, version)

    async def run_background(self, task_status: trio.TaskStatus[None]) -> None:
        """For the server's lifetime: the CLI processes, and expired conversations swept."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.pool.run)
            if self.cluster_stats is not None:
                nursery.start_soon(self.cluster_stats.run)
            if self.services is not None and self.settings.pool.size:
                # Warm processes for the plainest request: default model, no system prompt.
                plain = structure_request(b'{"messages": [{"role": "user", "content": "-"}]}')
                self.pool.want(*planner(self.services, plain))
            if self.shared_locks is not None and self.records.share is not None:
                nursery.start_soon(self.shared_locks.renew_forever)
                nursery.start_soon(self.records.share.run)
            task_status.started()
            await self.janitor.sweep_forever()

    def turn_services(self) -> TurnServices:
        """What a turn needs.

        Raises:
            CLIUnavailable: no CLI was found at start-up, so no turn can run.
        """
        if self.services is None:
            raise CLIUnavailable(self.cli_missing_message())
        return self.services

    def _stats(self) -> Stats:
        """The gateway's `Stats`, reading live CLI processes, cache, pool, conversations."""
        stats = Stats()
        stats.add_source("processes", lambda: {"live": self.admission.live,
                                               "queued": self.admission.queued})
        cold = self.pool.cold
        stats.add_source("cold_starts", lambda: {"limit": cold.limit, "running": cold.running,
                                                 "waiting": cold.waiting})
        stats.add_source("cache", self.cache.counters, counters=("hits", "misses", "stores"))
        stats.add_source("pool", self.pool.stats, counters=POOL_COUNTERS)
        stats.add_source("conversations", lambda: dict(self.records.counters),
                         counters=tuple(self.records.counters))
        if (share := self.records.share) is not None:
            stats.add_source("transcripts", lambda: dict(share.counters),
                             counters=tuple(share.counters))
        return stats

    async def wind_down(self) -> None:
        """At shutdown, before the housekeeping stops: the CLI processes end, and the
        transcripts of the last turns reach the shared store."""
        await self.pool.shutdown()
        if self.records.share is not None:
            await self.records.share.flush(self.settings.conversation.store_timeout_seconds * 5)

    async def stop(self) -> None:
        await self.store.close()

    def cli_missing_message(self) -> str:
        configured = self.settings.claude.command
        where = (
            f"claude.command is set to {configured!r}, which is not an executable file"
            if configured
            else "no Claude Code CLI was found in the project's node_modules or on PATH"
        )
        return (
            f"Claude Code CLI unavailable: {where}. Install the pinned CLI with `npm ci` in "
            "the project directory, or set claude.command (env CLAUDE_CODE__CLAUDE__COMMAND)."
        )
