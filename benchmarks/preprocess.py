"""Preprocessing throughput and memory at hospital scale: synthetic 1024² PNG radiographs through ``build_cache``
(MONAI, parallel workers) into a 512² uint8 memory-mapped cache.

Generating the PNGs is outside the timing. Peak memory is reported two ways: the largest resident set of this
process and of any one worker (``getrusage``), and the largest sum over the whole process tree, sampled every
0.1 s; the tree's RSS after 10 % and 90 % of the run shows whether memory grows with the image count.

Run: .venv/bin/python benchmarks/preprocess.py --images 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from PIL import Image

from privfair.data.preprocess import build_cache


def write_pngs(directory: Path, start: int, stop: int, size: int) -> list[str]:
    """Radiograph-like 8-bit PNGs: a smooth chest-like field, shifted and scaled per image, with mild noise."""
    rng = np.random.default_rng(start)
    y, x = np.mgrid[0:size, 0:size] / size
    field = (
        120
        + 80 * np.exp(-((x - 0.3) ** 2 + (y - 0.5) ** 2) / 0.05)
        + 80 * np.exp(-((x - 0.7) ** 2 + (y - 0.5) ** 2) / 0.05)
    )
    paths = []
    for i in range(start, stop):
        image = np.roll(field, rng.integers(-40, 40, 2), axis=(0, 1)) * rng.uniform(0.7, 1.1)
        image += rng.normal(0, 4, (size // 8, size // 8)).repeat(8, 0).repeat(8, 1)
        path = directory / f"{i:06d}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, compress_level=1)
        paths.append(str(path))
    return paths


class TreeRssSampler(threading.Thread):
    """Samples the resident set of this process and all its children until stopped; keeps the peak."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.interval, self.peak, self.samples, self._done = interval, 0, [], threading.Event()

    def run(self):
        me = psutil.Process()
        while not self._done.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            self.samples.append((time.perf_counter(), total))
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024, help="PNG side length")
    parser.add_argument("--out", type=int, default=512, help="cached side length")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="preprocessing workers")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a new one under /tmp, removed after)")
    parser.add_argument("--histogram-equalize", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="privfair-bench-", dir=args.dir))
    try:
        images = scratch / "png"
        images.mkdir()
        start = time.perf_counter()
        chunks = [(i, min(i + 500, args.images)) for i in range(0, args.images, 500)]
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            paths = [
                p
                for part in pool.map(write_pngs, [images] * len(chunks), *zip(*chunks), [args.size] * len(chunks))
                for p in part
            ]
        png_bytes = sum(os.path.getsize(p) for p in paths)
        print(
            f"generated {len(paths):,} PNGs of {args.size}² ({png_bytes / 1e9:.2f} GB) in "
            f"{time.perf_counter() - start:.0f} s (not timed below)"
        )

        manifest = pd.DataFrame({"image_id": [Path(p).stem for p in paths], "path": paths})
        options = {
            "spatial_size": [args.out, args.out],
            "cache_dtype": "uint8",
            "histogram_equalize": args.histogram_equalize,
        }
        load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
        sampler = TreeRssSampler()
        sampler.start()
        start = time.perf_counter()
        build_cache(manifest, options, scratch / "cache.npy", scratch / "cache.parquet", num_workers=args.workers)
        seconds = time.perf_counter() - start
        sampler.stop()

        cache = np.load(scratch / "cache.npy", mmap_mode="r")
        assert cache.shape == (len(paths), 1, args.out, args.out) and cache[-1].max() > 0
        in_run = [(t - start, rss) for t, rss in sampler.samples if t >= start]
        at_10 = next(rss for t, rss in in_run if t >= 0.1 * seconds)
        at_90 = next(rss for t, rss in in_run if t >= 0.9 * seconds)
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"preprocessed {len(paths):,} images {args.size}² -> {args.out}² uint8 with {args.workers} worker(s) "
            f"on {os.cpu_count()} CPU(s) (load average before: {load_before:.1f})"
        )
        print(f"  {len(paths) / seconds:.1f} images/s ({seconds:.0f} s)")
        print(
            f"  peak RSS: process tree {sampler.peak / 2**20:.0f} MiB (sampled); main process {self_peak:.0f} MiB, "
            f"largest child {child_peak:.0f} MiB (getrusage)"
        )
        print(f"  process tree RSS after 10% of the time {at_10 / 2**20:.0f} MiB, after 90% {at_90 / 2**20:.0f} MiB")
        print(
            f"  cache {os.path.getsize(scratch / 'cache.npy') / 1e9:.2f} GB "
            f"(200,000 images: {200_000 * args.out**2 / 1e9:.0f} GB)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
