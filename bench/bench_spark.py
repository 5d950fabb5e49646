#!/usr/bin/env python3
"""``mmcore run`` next to ``mmcore.spark.process`` on a local Spark session, same files, same output.

Standalone and offline. Both read the image files of ``--source`` (default ../shared/corpus/jpeg)
and write Parquet rows of mmcore.jobs.SCHEMA into a fresh temporary folder; the time is the wall
clock from start to the last file written, best of ``--repeat`` rounds (alternating order).

Contestants:

  mmcore run                 mmcore.jobs.runner.run(SRC, OUT, Config(workers=N)) in-process
  spark local[N]             mmcore.spark.process(spark.read.format("binaryFile").load(SRC),
                             Config(workers=1)).write.parquet(OUT): N tasks of one thread each;
                             the session is started (and its Python workers warmed on 8 files)
                             before timing; its start-up is printed apart. Spark's default splits
                             (spark.sql.files.openCostInBytes 4 MB: ~30 files of 200 kB a task)
  spark local[N], few splits the same with openCostInBytes = --open-cost (default 0): splits of
                             max(total / N, ...) bytes up to maxPartitionBytes, so fewer tasks and
                             less of Spark's per-task cost (~60 ms of a core per Python task here)
  spark local[N], read_images mmcore.spark.read_images(spark, SRC): the folder listed on the driver
                             as mmcore run lists it, the executors reading the files by path (the
                             bytes never pass through the JVM; the rows equal mmcore run's, ids
                             included); Spark's default parallelism (N tasks)

    python bench/bench_spark.py                  # the corpus jpeg/ folder, 1 round
    python bench/bench_spark.py --source DIR --cores 4 --repeat 3

Prints the machine, versions, the file set and the table (images/s and MB/s).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_decode import machine_lines


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(here.parent / "shared" / "corpus" / "jpeg"))
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="local[N] and mmcore's workers")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--open-cost", default="0", help="spark.sql.files.openCostInBytes of the 'few splits' contestant"
    )
    a = p.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import pyspark
    from pyspark.sql import SparkSession

    import mmcore
    import mmcore.spark as ms
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run

    files = sorted(f for f in Path(a.source).rglob("*") if f.is_file())
    mb = sum(f.stat().st_size for f in files) / 1e6
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[:1]
    print("\n".join(machine_lines()))
    versions = f"mmcore {mmcore.__version__}, pyspark {pyspark.__version__}, {' '.join(java)}"
    print(f"{versions}, python {platform.python_version()}")
    print(f"files: {len(files)} ({mb:.1f} MB) under {a.source}")

    t0 = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{a.cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(a.cores))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    warm = [str(f) for f in files[:8]]
    ms.process(spark.read.format("binaryFile").load(warm), Config(workers=1)).count()
    print(f"spark session start + warm-up: {time.perf_counter() - t0:.1f} s")

    def mmcore_run(out: str) -> None:
        run(a.source, out, Config(workers=a.cores), progress=None)

    def files_df(open_cost: str) -> Any:
        spark.conf.set("spark.sql.files.openCostInBytes", open_cost)
        return spark.read.format("binaryFile").load(a.source, recursiveFileLookup=True)

    def spark_run(open_cost: str) -> Callable[[str], None]:
        def go(out: str) -> None:
            ms.process(files_df(open_cost), Config(workers=1)).write.parquet(out)

        return go

    def images_run(out: str) -> None:
        ms.process(ms.read_images(spark, a.source), Config(workers=1)).write.parquet(out)

    default_cost = spark.conf.get("spark.sql.files.openCostInBytes") or "4194304"
    parts = {c: files_df(c).rdd.getNumPartitions() for c in (default_cost, a.open_cost)}
    best: dict[str, float] = {}
    contestants = [
        ("mmcore run", mmcore_run),
        (f"spark local[{a.cores}], default splits ({parts[default_cost]} tasks)", spark_run(default_cost)),
        (
            f"spark local[{a.cores}], openCostInBytes={a.open_cost} ({parts[a.open_cost]} tasks)",
            spark_run(a.open_cost),
        ),
        (f"spark local[{a.cores}], mmcore.spark.read_images", images_run),
    ]
    for r in range(a.repeat):
        for name, fn in contestants if r % 2 == 0 else contestants[::-1]:
            tmp = tempfile.mkdtemp(prefix="bench_spark_")
            try:
                t = time.perf_counter()
                fn(os.path.join(tmp, "out"))
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    spark.stop()
    print("\n| contestant | seconds | images/s | MB/s |\n|---|---|---|---|")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {len(files) / s:.1f} | {mb / s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
