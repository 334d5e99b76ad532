"""Where a chat line's CPU goes in a running ``helpdesk serve`` (``HELPDESK_PROFILE=FILE``).

Benchmark instrumentation (bench/chat.py ``--profile``), off unless the variable is set.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from flask import Flask


class EventProfiler:
    """``HELPDESK_PROFILE=FILE`` (bench/chat.py ``--profile``): where a chat line's CPU goes.

    Wraps python-socketio's ``_handle_event_internal``, which runs each event in a thread of its
    own (the handler and its acknowledgement), so a fresh ``cProfile.Profile`` per event sees
    that thread only. Only ``chat.message`` events are
    profiled; their stats are merged and written to FILE (pstats) every few seconds, with the
    handlers' own CPU (``thread_time``) beside the process's over the same span (first to last
    line) in FILE.txt, so what is spent outside them (sockets' reader and writer threads, waking
    threads, the GIL) shows too. ``HELPDESK_PROFILE_CPU_ONLY=1`` skips cProfile (its overhead).
    """

    def __init__(self, path: str, cpu_only: bool) -> None:
        self.path = path
        self.cpu_only = cpu_only
        self.lock = threading.Lock()
        self.stats: Any = None
        self.events = 0
        self.handler_cpu = 0.0
        self.handler_wall = 0.0
        self.first: tuple[float, float] | None = None  # (process CPU, wall) at the first line
        self.last: tuple[float, float] = (0.0, 0.0)
        self.dumped = -1
        self.thread_cpu0: dict[int, tuple[str, float]] = {}
        self.thread_cpu: dict[int, tuple[str, float]] = {}
        self.gc_seconds = [0.0, 0.0, 0.0]  # per generation, while lines were handled
        self.gc_counts = [0, 0, 0]
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self.first is not None:
            generation = int(info.get("generation", 0))
            self.gc_seconds[generation] += time.perf_counter() - self._gc_started
            self.gc_counts[generation] += 1

    def install(self, app: Flask) -> None:
        import cProfile
        import pstats

        server = app.extensions["socketio"].server
        inner = server._handle_event_internal

        def profiled(*args: Any) -> Any:
            data = args[3] if len(args) > 3 else None
            if not (isinstance(data, list) and data and data[0] == "chat.message"):
                return inner(*args)
            with self.lock:
                if self.first is None:
                    self.first = (time.process_time(), time.perf_counter())
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            # CPU time, not wall: a thread waiting for the GIL or a lock costs nothing here.
            prof = None if self.cpu_only else cProfile.Profile(time.thread_time)
            try:
                if prof is None:
                    return inner(*args)
                return prof.runcall(inner, *args)
            finally:
                cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
                with self.lock:
                    self.events += 1
                    self.handler_cpu += cpu
                    self.handler_wall += wall
                    self.last = (time.process_time(), time.perf_counter())
                    if prof is not None:
                        if self.stats is None:
                            self.stats = pstats.Stats(prof)
                        else:
                            self.stats.add(prof)

        server._handle_event_internal = profiled
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._dump_loop, daemon=True).start()

    def _dump_loop(self) -> None:
        while True:
            time.sleep(1)
            self._sample_threads()
            self.dump()

    def _sample_threads(self) -> None:
        # CPU of long-lived threads by kind (what they run), sampled: sockets' readers and
        # writers, gunicorn's connection threads, the worker loop. Threads that ended between
        # samples (one per event) are the handlers' figure above.
        if self.first is None:
            return
        for thread in threading.enumerate():
            if thread.ident is None:
                continue
            try:
                cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except (OSError, ValueError):
                continue
            target = getattr(thread, "_target", None)
            kind = getattr(target, "__qualname__", None) or type(thread).__name__
            if thread.ident not in self.thread_cpu0:
                self.thread_cpu0[thread.ident] = (kind, cpu)
            self.thread_cpu[thread.ident] = (kind, cpu)

    def dump(self) -> None:
        with self.lock:
            if self.first is None or self.dumped == self.events:
                return
            self.dumped = n = self.events
            process = self.last[0] - self.first[0]
            span = self.last[1] - self.first[1]
            with open(self.path + ".txt.tmp", "w") as out:
                out.write(
                    f"lines {n}  span {span:.1f}s  process CPU {1000 * process / n:.2f} ms/line"
                    f"  handler CPU {1000 * self.handler_cpu / n:.2f} ms/line"
                    f"  handler wall {1000 * self.handler_wall / n:.2f} ms/line\n"
                    f"GC per line (ms) by generation: "
                    + ", ".join(f"{1000 * t / n:.2f}" for t in self.gc_seconds)
                    + f"  collections: {self.gc_counts}\n"
                )
                by_kind: dict[str, list[float]] = {}
                for ident, (kind, cpu) in self.thread_cpu.items():
                    entry = by_kind.setdefault(kind, [0.0, 0])
                    entry[0] += cpu - self.thread_cpu0[ident][1]
                    entry[1] += 1
                for kind, (cpu, count) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
                    out.write(f"  {kind}: {1000 * cpu / n:.2f} ms/line over {count} threads\n")
            os.replace(self.path + ".txt.tmp", self.path + ".txt")
            if self.stats is not None:
                self.stats.dump_stats(self.path + ".tmp")
                os.replace(self.path + ".tmp", self.path)
