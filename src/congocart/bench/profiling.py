"""`--profile`: py-spy samples the API workers during each timed run.

py-spy reads the workers' stacks from outside (no code in the API, little
overhead with `--nonblocking`), and writes collapsed stacks ("a;b;c 12"),
which this module ranks into the functions where the workers spend their
CPU: by self time and, for our own code, inclusive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True, slots=True)
class Hotspot:
    function: str  # "name (path/module.py)"
    self_pct: float
    total_pct: float


@dataclass(frozen=True)
class Profile:
    samples: int
    by_self: list[Hotspot]
    ours: list[Hotspot]  # frames in congocart/, by inclusive time
    files: list[str]


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def api_workers(server_pid: int, workers: int) -> list[int]:
    """uvicorn's worker processes (the supervisor itself when there is one process)."""
    try:
        server = psutil.Process(server_pid)
        children = server.children()
    except psutil.NoSuchProcess:
        return []
    spawned = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            if "spawn_main" in " ".join(child.cmdline()):
                spawned.append(child.pid)
    return spawned if workers > 1 else [server_pid]


def _frame(raw: str) -> str:
    return _LINE_NUMBER.sub(")", raw.strip())


def rank(lines: Iterable[str], *, top: int = 12) -> tuple[int, list[Hotspot], list[Hotspot]]:
    """Samples, hottest functions by self time, our functions by inclusive time."""
    samples = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if samples == 0:
        return 0, [], []

    def hotspot(function: str) -> Hotspot:
        return Hotspot(
            function=function,
            self_pct=100 * own[function] / samples,
            total_pct=100 * inclusive[function] / samples,
        )

    by_self = [hotspot(f) for f, _ in own.most_common(top)]
    ours = [hotspot(f) for f, _ in inclusive.most_common() if "congocart/" in f][:top]
    return samples, by_self, ours


class Profiler:
    """One `py-spy record` per API worker for the length of a timed run."""

    def __init__(self, directory: Path, *, rate: int = 100) -> None:
        self.directory = directory
        self.rate = rate
        self._processes: list[asyncio.subprocess.Process] = []
        self._files: list[Path] = []

    async def start(self, pids: list[int], *, name: str, duration: float) -> None:
        executable = py_spy_path()
        if executable is None:
            raise RuntimeError("py-spy is not installed (it is in the bench dependency group)")
        self.directory.mkdir(parents=True, exist_ok=True)
        for pid in pids:
            path = self.directory / f"{name}-pid{pid}.txt"
            process = await asyncio.create_subprocess_exec(
                executable,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(duration))),
                "--rate",
                str(self.rate),
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(path),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            self._processes.append(process)
            self._files.append(path)

    async def finish(self) -> Profile | None:
        for process in self._processes:
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        lines: list[str] = []
        for path in self._files:
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()
        files = [str(path) for path in self._files if path.exists()]
        self._processes, self._files = [], []
        samples, by_self, ours = rank(lines)
        if samples == 0:
            return None
        return Profile(samples=samples, by_self=by_self, ours=ours, files=files)
