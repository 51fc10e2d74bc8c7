"""Uploads of 3 MB product images: upload and thumbnail throughput, and the API's memory while 20 stream at once.

The API runs as its own process (uvicorn) on a fresh database and data dir. Three figures, each
against a baseline:
- upload throughput: POST /attachments one after another (stream to a temp file, hash, sniff,
  decode, thumbnail, store, commit the row) against writing the same bytes to a file (write,
  fsync, rename), the least any store does;
- thumbnail throughput: our inspection (JPEG decoded in draft mode, border histogram, a 320 px
  JPEG) against decoding each image whole and thumbnailing it, in this process;
- memory: the API's resident memory growth while N uploads stream at once (each sent in 64 KB
  chunks with a pause between), against the bytes in flight (N × the image size).

    cd /work/main && .venv/bin/python -m bench.uploads --db sqlite [--images 20 --concurrent 20] [--record]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.harness.databases import fresh_database, migrate
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg, tree_memory
from bench.harness.services import REPO_ROOT, IsolatedService, free_port, stop_all
from bench.harness.timing import rate, summarize

MB = 1024 * 1024
CHUNK = 64 * 1024


def product_jpeg(target_bytes: int, *, seed: int) -> bytes:
    """Return a JPEG of about target_bytes: a photo-like noisy image (noise barely compresses, as fabric detail)."""
    side = max(64, int(1400 * math.sqrt(target_bytes / (2.3 * MB))))
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def _start_api(data_dir: Path, url: str) -> tuple[IsolatedService, str]:
    port = free_port()
    env = {
        "ECOMFLOW_DATA_DIR": str(data_dir),
        "ECOMFLOW_DATABASE_URL": url,
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    argv = [sys.executable, "-m", "uvicorn", "ecomflow.api.app:create_app", "--factory", "--port", str(port)]
    service = IsolatedService(
        name="api",
        argv=[*argv, "--host", "127.0.0.1", "--log-level", "warning"],
        env=env,
        health_url=f"http://127.0.0.1:{port}/health",
        log_path=data_dir / "api.log",
    )
    service.start()
    service.wait_healthy(60)
    return service, f"http://127.0.0.1:{port}"


def _token(data_dir: Path, url: str) -> str:
    """Create the uploading user with the CLI, in the benchmark's own database; return the token it prints."""
    env = {**os.environ, "ECOMFLOW_DATA_DIR": str(data_dir), "ECOMFLOW_DATABASE_URL": url}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ecomflow")), "users", "add", "bench-visual", "--role", "visual"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _upload(http: httpx.Client, data: bytes, name: str, *, slow: bool = False) -> float:
    """Upload one file; return the seconds it took. A slow upload sends 64 KB chunks with a pause between."""

    def body() -> Iterator[bytes]:
        boundary = b"--benchboundary"
        yield boundary + f'\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
            if slow:
                time.sleep(0.005)
        yield b"\r\n" + boundary + b"--\r\n"

    started = time.perf_counter()
    answer = http.post(
        "/attachments", content=body(), headers={"Content-Type": "multipart/form-data; boundary=benchboundary"}
    )
    if answer.status_code != 201:
        raise RuntimeError(f"upload of {name} failed: {answer.status_code} {answer.text}")
    return time.perf_counter() - started


def _raw_writes(images: list[bytes], directory: Path) -> list[float]:
    """Write each image as a bare file store would (write, fsync, rename); return each one's seconds."""
    times = []
    for number, data in enumerate(images):
        started = time.perf_counter()
        temp = directory / f"raw-{number}.tmp"
        with temp.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(directory / f"raw-{number}")
        times.append(time.perf_counter() - started)
    return times


def _thumbnails(images: list[bytes], directory: Path, *, ours: bool) -> list[float]:
    """Make each image's thumbnail our way (draft decode, border histogram) or by decoding it whole."""
    from ecomflow.engine.files.image_inspection import inspect_image
    from ecomflow.engine.files.thumbnails import write_thumbnail

    times = []
    for number, data in enumerate(images):
        path = directory / f"thumb-source-{number}.jpg"
        path.write_bytes(data)
        started = time.perf_counter()
        if ours:
            inspected = inspect_image(path, filename=path.name, max_pixels=60_000_000)
            write_thumbnail(inspected.working_copy, spool_dir=directory).unlink()
        else:
            with Image.open(path) as image:
                image.load()
                image.thumbnail((320, 320))
                image.convert("RGB").save(directory / f"whole-{number}.jpg", "JPEG", quality=80)
        times.append(time.perf_counter() - started)
    return times


def _memory_while_streaming(api: IsolatedService, base: str, token: str, images: list[bytes]) -> dict[str, Any]:
    """Stream one slow upload per image at once; sample the API's memory every 20 ms; return idle and peak."""
    pid = api.process.pid
    idle = tree_memory(pid)["rss_mb"]
    peak = idle
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_memory(pid)["rss_mb"])
            stop.wait(0.02)

    errors: list[str] = []

    def send(number: int, data: bytes) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as http:
            try:
                _upload(http, data, f"concurrent-{number}.jpg", slow=True)
            except Exception as exc:
                errors.append(str(exc))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    senders = [threading.Thread(target=send, args=(n, data)) for n, data in enumerate(images)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if errors:
        raise RuntimeError(f"{len(errors)} concurrent uploads failed: {errors[0]}")
    return {"idle_mb": idle, "peak_mb": peak, "growth_mb": round(peak - idle, 1), "seconds": round(seconds, 2)}


def run(db: str, *, images: int, concurrent: int, size_bytes: int, keep_data: bool) -> dict[str, Any]:
    """Measure the three figures on a fresh database and data dir."""
    load_before = loadavg()
    data_dir = make_data_dir("uploads")
    pictures = [product_jpeg(size_bytes, seed=n) for n in range(max(images, concurrent) * 2)]
    sequential, streaming = pictures[:images], pictures[images : images + concurrent]
    figures: dict[str, Any] = {"load_before": load_before, "image_bytes": summarize([len(p) for p in pictures])}
    try:
        with fresh_database(db, data_dir) as url:
            migrate(url)
            token = _token(data_dir, url)
            api, base = _start_api(data_dir, url)
            try:
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
                    _upload(http, product_jpeg(200_000, seed=999), "warm-up.jpg")
                    upload_times = [_upload(http, data, f"seq-{n}.jpg") for n, data in enumerate(sequential)]
                figures["memory"] = _memory_while_streaming(api, base, token, streaming)
            finally:
                stop_all([api])
        with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
            raw_times = _raw_writes(sequential, Path(scratch))
            ours = _thumbnails(sequential, Path(scratch), ours=True)
            whole = _thumbnails(sequential, Path(scratch), ours=False)
    finally:
        finish_data_dir(data_dir, keep=keep_data)
    total_mb = sum(len(p) for p in sequential) / MB
    figures.update(
        uploads={
            "per_s": rate(upload_times),
            "mb_per_s": round(total_mb / sum(upload_times), 1),
            "latency_ms": summarize(upload_times, scale=1000),
        },
        raw_write={"mb_per_s": round(total_mb / sum(raw_times), 1)},
        thumbnails={"ours_per_s": rate(ours), "whole_decode_per_s": rate(whole)},
        in_flight_mb=round(sum(len(p) for p in streaming) / MB, 1),
        concurrent=concurrent,
        load_after=loadavg(),
    )
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the figures as (name, value) rows, ours beside each baseline."""
    uploads, memory, thumbs = figures["uploads"], figures["memory"], figures["thumbnails"]
    latency = uploads["latency_ms"]
    size = figures["image_bytes"]
    return [
        ("image size (JPEG)", f"{size['min'] / MB:.2f}–{size['max'] / MB:.2f} MB (n={size['n']})"),
        ("POST /attachments one after another", f"{uploads['per_s']} uploads/s · {uploads['mb_per_s']} MB/s"),
        ("… latency", f"p50 {latency['p50']:.0f} · p95 {latency['p95']:.0f} · max {latency['max']:.0f} ms"),
        ("baseline: write + fsync + rename of the same bytes", f"{figures['raw_write']['mb_per_s']} MB/s"),
        ("thumbnails: ours (draft decode + border + 320 px JPEG)", f"{thumbs['ours_per_s']} images/s"),
        ("baseline: decode whole + thumbnail", f"{thumbs['whole_decode_per_s']} images/s"),
        (
            f"API memory while {figures['concurrent']} uploads stream at once",
            f"idle {memory['idle_mb']} MB → peak {memory['peak_mb']} MB (+{memory['growth_mb']} MB) "
            f"in {memory['seconds']} s",
        ),
        ("baseline: bytes in flight", f"{figures['in_flight_mb']} MB"),
    ]


def ratio_text(figures: dict[str, Any]) -> str:
    """Put each figure against its baseline in one line."""
    uploads = figures["uploads"]["mb_per_s"] / max(figures["raw_write"]["mb_per_s"], 0.001)
    thumbs = figures["thumbnails"]
    thumb_ratio = thumbs["ours_per_s"] / max(thumbs["whole_decode_per_s"], 0.001)
    memory = figures["memory"]["growth_mb"] / max(figures["in_flight_mb"], 0.001)
    return (
        f"uploads at {uploads:.0%} of a bare file write's MB/s; thumbnails {thumb_ratio:.1f}× a whole decode; "
        f"memory growth {memory:.0%} of the bytes in flight"
    )


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the benchmark's entry for bench/RESULTS.md."""
    return Entry(benchmark="uploads", setting=setting, ratio=ratio_text(figures), rows=rows(figures))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its rows and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.uploads", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument("--images", type=int, default=20, help="images uploaded one after another")
    parser.add_argument("--concurrent", type=int, default=20, help="uploads streaming at once")
    parser.add_argument("--size-kb", type=int, default=3 * 1024 - 100, help="about how big each JPEG is")
    args = parser.parse_args(argv)
    figures = run(
        args.db, images=args.images, concurrent=args.concurrent, size_bytes=args.size_kb * 1024, keep_data=args.keep
    )
    print_rows(rows(figures))
    print(ratio_text(figures))
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.uploads",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
