#!/usr/bin/env python3
"""PySpark's side of bench/batch.sh (optional): the two Pinterest BatchJobs in Spark SQL,
local[2], on the same files as the worker and DuckDB.

    batch_spark.py start                check that a local session starts; print its seconds
    batch_spark.py clean DATA OUT       pinterest-clean: DATA/{pin,geo,user}/*.json -> OUT/clean/
    batch_spark.py aggregate OUT        pinterest-aggregate: OUT/clean/ -> OUT/results/

`clean` and `aggregate` print one line on stdout: `start_seconds job_seconds peak_rss_kib
job_cpu_seconds` (the session start; the job from then to the last output written; the peak
resident memory of this process plus the peaks of its descendants, the Spark JVM; the CPU
time, user and system, of all of them during the job), and one JSON line per output on stderr.
Each runs in a fresh process with its own session.

The SQL is the DuckDB translation (batch_duckdb.py) in Spark's dialect: backquoted
identifiers, `array(a, b)` for the list, `TIMESTAMP_NTZ` for a timestamp without time zone,
`startswith`, and `parse_count` expanded inline as an SQL expression (Spark SQL has no macros;
a Python UDF would measure Python, not Spark).
"""
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import batch_duckdb as duck  # noqa: E402

SPARK_TYPES = {"BIGINT": "BIGINT", "VARCHAR": "STRING", "DOUBLE": "DOUBLE"}


def parse_count(t):
    """docs/batch.md parse_count as one Spark SQL expression over the text expression t."""
    s = f"trim({t})"
    unit = (f"CASE lower(right({s}, 1)) WHEN 'k' THEN 1000 WHEN 'm' THEN 1000000 "
            f"WHEN 'b' THEN 1000000000 ELSE 1 END")
    whole = f"regexp_extract({s}, '^([0-9]+)', 1)"
    fraction = f"regexp_extract({s}, '^[0-9]+\\\\.([0-9]+)', 1)"
    return (f"CASE WHEN {s} RLIKE '^[0-9]+(\\\\.[0-9]+)?[kKmMbB]?$' "
            f"AND length(trim(LEADING '0' FROM {whole})) <= 19 THEN "
            f"try_cast(CAST({whole} AS DECIMAL(38, 0)) * CAST({unit} AS DECIMAL(10, 0)) + "
            f"round(CAST(concat('0.', left(concat({fraction}, '0'), 18)) AS DECIMAL(19, 18)) "
            f"* CAST({unit} AS DECIMAL(10, 0))) AS BIGINT) END")


def spark_sql(sql):
    sql = sql.replace('"', "`")
    sql = sql.replace("[latitude, longitude]", "array(latitude, longitude)")
    sql = sql.replace("AS TIMESTAMP)", "AS TIMESTAMP_NTZ)")
    sql = sql.replace("starts_with(", "startswith(")
    sql = sql.replace("parse_count(follower_count)", parse_count("follower_count"))
    return sql


def session():
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").appName("tributary-bench")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            .config("spark.sql.parquet.compression.codec", "zstd")
            .getOrCreate())


def family():
    """This process and its live descendants (the JVM)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    found, grown = {os.getpid()}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grown = True
    return found


def cpu_seconds():
    """User and system CPU seconds of this process and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in family():
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except (OSError, ValueError):
            pass
    return total


def peak_rss_kib():
    """This process's peak plus the peaks of its live descendants (the JVM)."""
    total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for pid in family() - {os.getpid()}:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        except OSError:
            pass
    return total


def write(spark, name, sql, target, summaries):
    spark.sql(spark_sql(sql)).write.mode("overwrite").parquet(str(target))
    summaries.append((name, target))


def run(job, *args):
    started = time.monotonic()
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    start_seconds = time.monotonic() - started
    started, cpu_started = time.monotonic(), cpu_seconds()
    summaries = []
    if job == "clean":
        data, out = args
        for table in duck.TABLES:
            schema = ", ".join(f"`{k}` {SPARK_TYPES[v]}" for k, v in duck.RAW_SCHEMAS[table].items())
            spark.read.schema(schema).json(str(Path(data) / table / "*.json")) \
                .createOrReplaceTempView(f"raw_{table}")
        for table in duck.TABLES:
            write(spark, f"clean_{table}", duck.CLEAN[table], Path(out) / "clean" / table, summaries)
    else:
        (out,) = args
        for table, name in zip(duck.TABLES, ["pins", "geos", "users"]):
            spark.read.parquet(str(Path(out) / "clean" / table)).createOrReplaceTempView(name)
        for name, sql, written in duck.aggregate_steps():
            spark.sql(spark_sql(sql)).createOrReplaceTempView(name)
            if written:
                write(spark, name, sql, Path(out) / "results" / name, summaries)
    job_seconds = time.monotonic() - started
    cpu = cpu_seconds() - cpu_started
    peak = peak_rss_kib()
    for name, target in summaries:
        rows = spark.read.parquet(str(target)).count()
        print(json.dumps({"step": name, "rows": rows, "url": str(target)}), file=sys.stderr)
    spark.stop()
    print(f"{start_seconds:.3f} {job_seconds:.3f} {peak} {cpu:.2f}")


def main(argv):
    if argv[1:2] == ["start"]:
        started = time.monotonic()
        spark = session()
        spark.range(1).count()
        print(f"{time.monotonic() - started:.3f}")
        spark.stop()
    elif argv[1:2] == ["clean"] and len(argv) == 4 or argv[1:2] == ["aggregate"] and len(argv) == 3:
        run(argv[1], *argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
