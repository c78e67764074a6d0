"""Storage benchmarks: /storage/v1 through supabase-py's storage client against raw file copies on
the same disk, and the server's memory while a large file streams in.

storage_upload      MB/s of a 64 MiB upload (multipart, as storage3 sends it) into a private bucket;
                    baseline: `shutil.copyfile` of the same file on the same disk (what the server's
                    own write costs at least).
storage_download    MB/s of downloading it back through supabase-py; same baseline.
storage_upload_resumable
                    MB/s of the same 64 MiB file through the sync engine's resumable upload
                    (`SupabaseRemote.upload_resumable`: TUS, 6 MB chunks, per-byte progress, a state file);
                    baseline: storage3's multipart upload of it in the same run (ratio > 1: TUS is faster).
storage_upload_rss  peak RSS of the localbase process above its idle RSS while a 100 MB file uploads
                    (sampled every 5 ms); baseline: the issue's goal, 64 MB (ratio > 1 = under it).

They run on a stack of their own (started here, beside the harness's): the 100 MB file needs a
global upload limit above Supabase's default 50 MiB (`STORAGE_FILE_SIZE_LIMIT`), and its RSS must not
include other benchmarks' leftovers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from supabase import Client, ClientOptions, create_client

from bench.harness import BenchEnv, Figure, figure, median
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote
from tests.stackproc import StackProcess

MIB = 1024 * 1024
THROUGHPUT_BYTES = 64 * MIB
RSS_BYTES = 100 * 1000 * 1000
ROUNDS = 3
BUCKET = "bench"


@contextmanager
def storage_stack(env: BenchEnv) -> Iterator[StackProcess]:
    folder = env.tmp / "storage-stack"
    stack = StackProcess(
        folder / f"data-{len(list(folder.glob('data-*'))) if folder.exists() else 0}",
        env={"STORAGE_FILE_SIZE_LIMIT": str(256 * MIB)},
    )
    stack.data_dir.parent.mkdir(parents=True, exist_ok=True)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def _client(stack: StackProcess, http: httpx.Client) -> Client:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(
                headers={"Authorization": f"Bearer {stack.service_role_key}"},
                httpx_client=http,
                auto_refresh_token=False,
                persist_session=False,
            ),
        )


def _make_file(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(left, 4 * MIB)
            fh.write(os.urandom(n))
            left -= n
    return path


def _copy_mb_s(src: Path, tmp: Path) -> float:
    times = []
    for i in range(ROUNDS):
        dst = tmp / f"copy-{i}.bin"
        started = time.perf_counter()
        shutil.copyfile(src, dst)
        with dst.open("rb") as fh:
            os.fsync(fh.fileno())  # the server fsyncs each upload; so does the baseline
        times.append(time.perf_counter() - started)
        dst.unlink()
    return src.stat().st_size / MIB / median(times)


def throughput(env: BenchEnv) -> list[Figure]:
    src = _make_file(env.tmp / "upload.bin", THROUGHPUT_BYTES)
    baseline = _copy_mb_s(src, env.tmp)
    with storage_stack(env) as stack, httpx.Client(timeout=600) as http:
        files = _client(stack, http).storage
        files.create_bucket(BUCKET)
        up_times, down_times = [], []
        for i in range(ROUNDS):
            started = time.perf_counter()
            files.from_(BUCKET).upload(f"t/{i}.bin", src, {"content-type": "application/octet-stream"})
            up_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            data = files.from_(BUCKET).download(f"t/{i}.bin")
            down_times.append(time.perf_counter() - started)
            assert len(data) == THROUGHPUT_BYTES
            del data
    src.unlink()
    mb = THROUGHPUT_BYTES / MIB
    return [
        figure(
            "storage_upload",
            mb / median(up_times),
            "MB/s",
            "raw file copy + fsync, same disk",
            baseline,
            higher_is_better=True,
            size_mib=64,
        ),
        figure(
            "storage_download",
            mb / median(down_times),
            "MB/s",
            "raw file copy + fsync, same disk",
            baseline,
            higher_is_better=True,
            size_mib=64,
        ),
    ]


def resumable(env: BenchEnv) -> list[Figure]:
    src = _make_file(env.tmp / "resumable.bin", THROUGHPUT_BYTES)
    with storage_stack(env) as stack, httpx.Client(timeout=600) as http:
        files = _client(stack, http).storage
        files.create_bucket(BUCKET)
        multipart = []
        for i in range(ROUNDS):
            started = time.perf_counter()
            files.from_(BUCKET).upload(f"m/{i}.bin", src, {"content-type": "application/octet-stream"})
            multipart.append(time.perf_counter() - started)

        async def tus_rounds() -> list[float]:
            remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key), timeout=120)
            times, reports = [], 0

            def progress(done: int, size: int) -> None:
                nonlocal reports
                reports += 1

            try:
                await remote.use_token(stack.service_role_key)
                for i in range(ROUNDS):
                    started = time.perf_counter()
                    await remote.upload_resumable(
                        BUCKET,
                        f"r/{i}.bin",
                        src,
                        "application/octet-stream",
                        progress=progress,
                        state=env.tmp / "resumable.tus",
                    )
                    times.append(time.perf_counter() - started)
            finally:
                await remote.close()
            assert reports > ROUNDS * 200, reports  # per 256 KB piece, not per chunk
            return times

        resumable_times = asyncio.run(tus_rounds())
        assert files.from_(BUCKET).info("r/0.bin")["size"] == THROUGHPUT_BYTES
    src.unlink()
    mb = THROUGHPUT_BYTES / MIB
    return [
        figure(
            "storage_upload_resumable",
            mb / median(resumable_times),
            "MB/s",
            "storage3 multipart upload, same file, same run",
            mb / median(multipart),
            higher_is_better=True,
            size_mib=64,
            chunk_mib=6,
        )
    ]


def upload_rss(env: BenchEnv) -> list[Figure]:
    src = _make_file(env.tmp / "rss.bin", RSS_BYTES)
    with storage_stack(env) as stack, httpx.Client(timeout=600) as http:
        assert stack.proc is not None
        server = psutil.Process(stack.proc.pid)
        files = _client(stack, http).storage
        files.create_bucket(BUCKET)
        files.from_(BUCKET).upload("warm.bin", b"warm")  # pools, imports and first-request caches are idle cost
        time.sleep(0.5)  # not synchronization: lets the allocator settle before the idle reading
        idle = server.memory_info().rss
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, server.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            files.from_(BUCKET).upload("big.bin", src, {"content-type": "application/octet-stream"})
        finally:
            done.set()
            sampler.join()
        size = files.from_(BUCKET).info("big.bin")["size"]
        assert size == RSS_BYTES, size
    src.unlink()
    above = (peak - idle) / 1e6
    return [
        figure(
            "storage_upload_rss",
            max(above, 0.001),
            "MB",
            "goal: 64 MB above idle",
            64.0,
            higher_is_better=False,
            idle_mb=round(idle / 1e6, 1),
            file_mb=100,
        )
    ]


BENCHES = {"storage_upload": throughput, "storage_upload_resumable": resumable, "storage_upload_rss": upload_rss}
