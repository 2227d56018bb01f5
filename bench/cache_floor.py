#!/usr/bin/env python3
"""The floor of bench_cache_runners.py: the S3 requests a runner makes, sent by plain boto3 and nothing else.

    python bench/cache_floor.py PLAN.json   (AWS_ENDPOINT_URL and credentials from the environment)

PLAN.json: ``{"bucket", "workers", "gets": [[key, ...], ...], "puts": [[key, file], ...]}``. Each ``gets`` item
is a chain of GetObject calls made one after the other (a 404 counts as done), as a runner reads a metadata
object before its zip; each ``puts`` item one create-only PutObject (``If-None-Match: *``, SHA-256 checksum) of
a file's bytes. The chains run on ``workers`` threads with one client (lbuild's: one attempt, 32 connections,
``aws.S3_CONFIG``), then the puts. Prints JSON: seconds for the requests alone (client made and warmed first),
this process's CPU seconds meanwhile, and the request count.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from lbuild.publisher.aws import S3_CONFIG


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=32).merge(S3_CONFIG)
    client: Any = boto3.client("s3", config=config)
    bucket = plan["bucket"]
    client.head_bucket(Bucket=bucket)

    def chain(keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(client.exceptions.NoSuchKey):
                client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(item: list[str]) -> None:
        key, path = item
        data = Path(path).read_bytes()
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", ChecksumAlgorithm="SHA256",
                          ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=plan["workers"]) as pool:
        list(pool.map(chain, plan["gets"]))
        list(pool.map(put, plan["puts"]))
    print(json.dumps({"seconds": round(time.perf_counter() - started, 3),
                      "cpu_s": round(time.process_time() - cpu, 3),
                      "requests": sum(len(c) for c in plan["gets"]) + len(plan["puts"])}))


if __name__ == "__main__":
    main()
