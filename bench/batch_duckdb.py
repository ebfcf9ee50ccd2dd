#!/usr/bin/env python3
"""DuckDB's side of bench/batch.sh: the two Pinterest BatchJobs of examples/pinterest/ run in
DuckDB, plus the helpers the script needs (worker configuration, result comparison).

    batch_duckdb.py config YAML DATA WORK   print the worker configuration of a BatchJob YAML
    batch_duckdb.py clean DATA OUT          pinterest-clean: DATA/{pin,geo,user}/*.json -> OUT/clean/
    batch_duckdb.py aggregate OUT           pinterest-aggregate: OUT/clean/ -> OUT/results/
    batch_duckdb.py compare A B             the nine result tables (and the cleaned tables) of
                                            two lakes hold the same rows, else exit 1

`clean` and `aggregate` print one line on stdout: `seconds peak_rss_kib` (the job, from the
connection to the last output written; the peak resident memory of this process), and one
JSON line per output table on stderr, like the worker's summary. Run each job in a fresh
process so the peak is the job's. DuckDB keeps its default threads (one per core).

The aggregation job runs the steps of examples/pinterest/batch-aggregate.yaml as they are
(their SQL is valid DuckDB). The cleaning job is the YAML's DataFusion SQL in DuckDB's
dialect; the differences in form:
- inputs are `read_json(..., format = 'newline_delimited', columns = {...})` with the YAMLs'
  schema types, outputs `COPY (...) TO '.../data.parquet' (FORMAT parquet, COMPRESSION zstd)`;
- `parse_count` is a SQL macro (below) with the rules of docs/batch.md "Functions";
- `make_array(a, b)` is the list literal `[a, b]`, `arrow_cast(TRY_CAST(x AS TIMESTAMP),
  'Timestamp(Microsecond, Some("UTC"))')` is `TRY_CAST(x AS TIMESTAMP)` (microseconds; DuckDB
  reads the values as written, as the worker's UTC does);
- every step is a view, computed again by every query that reads it, as the worker's are.
"""
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

RAW_SCHEMAS = {
    "pin": {
        "index": "BIGINT", "unique_id": "VARCHAR", "title": "VARCHAR", "description": "VARCHAR",
        "poster_name": "VARCHAR", "follower_count": "VARCHAR", "tag_list": "VARCHAR",
        "is_image_or_video": "VARCHAR", "image_src": "VARCHAR", "downloaded": "BIGINT",
        "save_location": "VARCHAR", "category": "VARCHAR",
    },
    "geo": {
        "ind": "BIGINT", "timestamp": "VARCHAR", "latitude": "DOUBLE", "longitude": "DOUBLE",
        "country": "VARCHAR",
    },
    "user": {
        "ind": "BIGINT", "first_name": "VARCHAR", "last_name": "VARCHAR", "age": "BIGINT",
        "date_joined": "VARCHAR",
    },
}

# parse_count(text) -> BIGINT (docs/batch.md): digits, an optional fraction, an optional suffix
# k/M/B in either case, surrounding spaces ignored; rounded half away from zero (all values are
# positive, so half up); anything else, and anything beyond BIGINT, NULL. As in the worker, the
# whole part is exact and the fraction counts to 18 digits: whole * unit + round(0.fraction *
# unit). A whole part of more than 19 significant digits is beyond BIGINT whatever the unit.
PARSE_COUNT = r"""
CREATE OR REPLACE MACRO parse_count_unit(s) AS
  CASE lower(right(s, 1)) WHEN 'k' THEN 1000 WHEN 'm' THEN 1000000 WHEN 'b' THEN 1000000000
       ELSE 1 END;
CREATE OR REPLACE MACRO parse_count_number(s) AS
  CASE WHEN lower(right(s, 1)) IN ('k', 'm', 'b') THEN left(s, length(s) - 1) ELSE s END;
CREATE OR REPLACE MACRO parse_count_value(whole, fraction, unit) AS
  CASE WHEN length(ltrim(whole, '0')) <= 19 THEN
    TRY_CAST(CAST(whole AS HUGEINT) * unit
             + CAST(round(CAST('0.' || left(fraction || '0', 18) AS DECIMAL(38, 18)) * unit)
                    AS HUGEINT)
             AS BIGINT)
  END;
CREATE OR REPLACE MACRO parse_count_trimmed(s) AS
  CASE WHEN regexp_full_match(s, '[0-9]+(\.[0-9]+)?[kKmMbB]?') THEN
    parse_count_value(split_part(parse_count_number(s), '.', 1),
                      split_part(parse_count_number(s), '.', 2), parse_count_unit(s))
  END;
CREATE OR REPLACE MACRO parse_count(t) AS parse_count_trimmed(trim(t));
"""

CLEAN = {
    "pin": """
        SELECT DISTINCT
          "index" AS ind,
          NULLIF(unique_id, '') AS unique_id,
          CASE WHEN title IN ('', 'No Title Data Available') THEN NULL ELSE title END AS title,
          CASE WHEN description IN ('', 'No description available Story format',
                                    'No description available')
               THEN NULL ELSE description END AS description,
          parse_count(follower_count) AS follower_count,
          CASE WHEN poster_name IN ('', 'User Info Error') THEN NULL ELSE poster_name END
            AS poster_name,
          CASE WHEN tag_list IN ('', 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e') THEN NULL
               ELSE tag_list END AS tag_list,
          NULLIF(is_image_or_video, '') AS is_image_or_video,
          CASE WHEN image_src IN ('', 'Image src error.') THEN NULL ELSE image_src END
            AS image_src,
          CASE WHEN save_location = '' THEN NULL
               WHEN starts_with(save_location, 'Local save in ')
               THEN substr(save_location, 15)
               ELSE save_location END AS save_location,
          NULLIF(category, '') AS category
        FROM raw_pin""",
    "geo": """
        WITH distinct_geo AS (
          SELECT DISTINCT
            ind,
            NULLIF(country, '') AS country,
            latitude,
            longitude,
            TRY_CAST(NULLIF("timestamp", '') AS TIMESTAMP) AS "timestamp"
          FROM raw_geo
        )
        SELECT ind, country, [latitude, longitude] AS coordinates, "timestamp"
        FROM distinct_geo""",
    "user": """
        SELECT DISTINCT
          ind,
          NULLIF(concat_ws(' ', NULLIF(first_name, ''), NULLIF(last_name, '')), '')
            AS user_name,
          age,
          TRY_CAST(NULLIF(date_joined, '') AS TIMESTAMP) AS date_joined
        FROM raw_user""",
}

# The aggregation's SQL is the YAML's own (it is valid DuckDB as written): its steps without an
# output are views, the others the nine result tables. For the cross-check, each result's key
# columns and its median column, if any.
AGGREGATE_YAML = Path(__file__).resolve().parent.parent / "examples/pinterest/batch-aggregate.yaml"
RESULT_KEYS = {
    "popular_category_by_country": (["country"], None),
    "popular_category_by_year": (["post_year"], None),
    "top_user_by_country": (["country"], None),
    "top_country_by_followers": (["country"], None),
    "popular_category_by_age_group": (["age_group"], None),
    "median_followers_by_age_group": (["age_group"], "median_follower_count"),
    "users_joined_by_year": (["post_year"], None),
    "median_followers_by_join_year": (["post_year"], "median_follower_count"),
    "median_followers_by_age_group_and_join_year": (["age_group", "post_year"],
                                                    "median_follower_count"),
}


def aggregate_steps():
    """The aggregation BatchJob's steps: (name, SQL, writes an output)."""
    import yaml

    with open(AGGREGATE_YAML) as f:
        steps = yaml.safe_load(f)["spec"]["steps"]
    return [(step["name"], step["sql"], "output" in step) for step in steps]


TABLES = ["pin", "geo", "user"]
MEDIAN_TOLERANCE = 1e-9  # relative


def sql_string(text):
    return "'" + str(text).replace("'", "''") + "'"


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def config(yaml_path, data, work):
    """The worker configuration of a BatchJob YAML: its spec's inputs and steps as they are,
    s3://pinterest-lake/raw/... -> file://DATA/..., other s3://pinterest-lake/... ->
    file://WORK/lake/..."""
    import yaml

    with open(yaml_path) as f:
        job = yaml.safe_load(f)
    data, work = os.path.abspath(data), os.path.abspath(work)

    def local(url):
        lake = "s3://pinterest-lake/"
        if not url.startswith(lake):
            raise SystemExit(f"{yaml_path}: {url} is not under {lake}")
        rest = url[len(lake):]
        if rest.startswith("raw/"):
            return f"file://{data}/{rest[len('raw/'):]}"
        return f"file://{work}/lake/{rest}"

    inputs = job["spec"]["inputs"]
    steps = job["spec"]["steps"]
    for item in inputs:
        item["url"] = local(item["url"])
    for step in steps:
        if "output" in step:
            step["output"]["url"] = local(step["output"]["url"])
    document = {"batchJob": f"bench/{job['metadata']['name']}", "inputs": inputs, "steps": steps}
    print(json.dumps(document, indent=2))


def clean(data, out):
    import duckdb

    started = time.monotonic()
    con = duckdb.connect()
    con.execute(PARSE_COUNT)
    for table in TABLES:
        columns = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}"
                                  for k, v in RAW_SCHEMAS[table].items()) + "}"
        con.execute(f"""CREATE VIEW raw_{table} AS SELECT * FROM read_json(
            {sql_string(Path(data) / table / '*.json')}, format = 'newline_delimited',
            columns = {columns})""")
    summaries = []
    for table in TABLES:
        target = Path(out) / "clean" / table
        target.mkdir(parents=True, exist_ok=True)
        (rows,) = con.execute(f"COPY ({CLEAN[table]}) TO {sql_string(target / 'data.parquet')} "
                              "(FORMAT parquet, COMPRESSION zstd)").fetchone()
        summaries.append({"step": f"clean_{table}", "rows": rows, "url": str(target)})
    con.close()
    finish(started, summaries)


def aggregate(out):
    steps = aggregate_steps()  # before the clock starts, as the worker reads its config
    import duckdb

    started = time.monotonic()
    con = duckdb.connect()
    for table, name in zip(TABLES, ["pins", "geos", "users"]):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM "
                    f"read_parquet({sql_string(Path(out) / 'clean' / table / '*.parquet')})")
    summaries = []
    for name, sql, written in steps:
        con.execute(f"CREATE VIEW {name} AS {sql}")
        if not written:
            continue
        target = Path(out) / "results" / name
        target.mkdir(parents=True, exist_ok=True)
        (rows,) = con.execute(f"COPY ({sql}) TO {sql_string(target / 'data.parquet')} "
                              "(FORMAT parquet, COMPRESSION zstd)").fetchone()
        summaries.append({"step": name, "rows": rows, "url": str(target)})
    con.close()
    finish(started, summaries)


def finish(started, summaries):
    seconds = time.monotonic() - started
    for summary in summaries:
        print(json.dumps(summary), file=sys.stderr)
    print(f"{seconds:.3f} {peak_rss_kib()}")


def compare(a, b):
    """Exit 1 unless lakes a and b (directories with clean/ and results/) hold the same rows:
    the cleaned tables and the nine result tables, as multisets (EXCEPT ALL both ways), with
    medians equal to a relative 1e-9."""
    import duckdb

    con = duckdb.connect()
    problems = []

    def scan(lake, path):
        return f"read_parquet({sql_string(Path(lake) / path / '*.parquet')})"

    def rows(sql):
        return con.execute(sql).fetchall()

    tables = [(f"clean/{t}", None, None) for t in TABLES]
    tables += [(f"results/{name}", keys, median) for name, (keys, median) in RESULT_KEYS.items()]
    for path, keys, median in tables:
        left, right = scan(a, path), scan(b, path)
        n_left = rows(f"SELECT count(*) FROM {left}")[0][0]
        n_right = rows(f"SELECT count(*) FROM {right}")[0][0]
        if n_left != n_right:
            problems.append(f"{path}: {n_left} rows in {a}, {n_right} in {b}")
            continue
        if median is None:
            only_left = rows(f"SELECT * FROM {left} EXCEPT ALL SELECT * FROM {right} LIMIT 5")
            only_right = rows(f"SELECT * FROM {right} EXCEPT ALL SELECT * FROM {left} LIMIT 5")
            if only_left or only_right:
                problems.append(f"{path}: only in {a}: {only_left}; only in {b}: {only_right}")
            continue
        on = " AND ".join(f"l.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)
        matched = rows(f"SELECT {', '.join('l.' + k for k in keys)}, l.{median}, r.{median} "
                       f"FROM {left} l JOIN {right} r ON {on}")
        if len(matched) != n_left:
            problems.append(f"{path}: {len(matched)} of {n_left} groups match on {keys}")
        for *key, x, y in matched:
            if not math.isclose(x, y, rel_tol=MEDIAN_TOLERANCE, abs_tol=0.0):
                problems.append(f"{path}: {key}: median {x} in {a}, {y} in {b}")
    if problems:
        print(f"the results of {a} and {b} differ:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"{len(tables)} tables equal", file=sys.stderr)


def main(argv):
    commands = {"config": (config, 3), "clean": (clean, 2), "aggregate": (aggregate, 1),
                "compare": (compare, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        raise SystemExit(__doc__)
    command, _ = commands[argv[1]]
    command(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
