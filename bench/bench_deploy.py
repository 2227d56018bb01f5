#!/usr/bin/env python3
"""Benchmark ``lbuild deploy`` against moto in server mode on 127.0.0.1 (never real AWS).

    python bench/bench_deploy.py [--workload DIR] [--functions 40] [--pool real|local] [--throttle 0.2 --reps 3]
                                 [--triggers]

Measures, in one run: the first deploy (everything created) and a no-op deploy (nothing changed), with wall
time and lbuild's own request counts (reads, writes; the no-op must write nothing and read in pages, not per
function), plus a deploy after one function's source changed. moto answers ListFunctions in one page whatever
its size (AWS: 50 a page) and ends a GetResources page at 100 tags. ``lbuild package`` runs first, untimed, so
the figures are about publishing. Needs moto[server] (lbuild's test extra) in the running interpreter.

``--throttle RATE`` adds, in the same run, first deploys from an empty moto through the fault proxy of
tests/support/faultproxy.py, fault-free and with the proxy answering RATE of all requests with throttling (half 429
TooManyRequestsException, half 400 ThrottlingException), ``--reps`` times each, interleaved, and a deploy
whose every GetFunction of one function is throttled (how long a persistent throttle takes to fail).

``--triggers`` gives every function an SQS trigger on its own queue, log retention and reserved concurrency,
every second one an EventBridge rule and every fifth one a notification on one shared S3 bucket (which also
holds a foreign notification), so the read and write counts cover the wiring stage: the no-op deploy must
still write nothing, and its reads per function show what the sweeps cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import REPO, compile_lbuild, kit, moto

sys.path.insert(0, str(REPO))  # tests/support/faultproxy.py


def lbuild(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, dict | None, str]:
    command = os.environ.get("LBUILD", f"{sys.executable} -m lbuild").split()
    started = time.perf_counter()
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        document = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        document = None
    return seconds, done.returncode, document, done.stderr


def _reset(endpoint: str) -> None:
    """An empty moto again, with the role the workload names."""
    import urllib.request

    import boto3

    for path, body in (("/moto-api/reset", b"{}"), ("/moto-api/config", b'{"lambda": {"use_docker": false}}')):
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}{path}", data=body, method="POST",
                                                      headers={"Content-Type": "application/json"})).read()
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    boto3.client("iam", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_role(RoleName="bench-lambda",
                                                              AssumeRolePolicyDocument=json.dumps(trust))


def add_triggers(workload: Path, endpoint: str, functions: int) -> None:
    """Queues, a shared bucket and their triggers in the workload's lbuild.toml (see ``--triggers``)."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    sqs, s3 = client("sqs"), client("s3")
    s3.create_bucket(Bucket="bench-uploads", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    foreign = sqs.create_queue(QueueName="foreign", Attributes={"VisibilityTimeout": "60"})
    foreign_arn = sqs.get_queue_attributes(QueueUrl=foreign["QueueUrl"], AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(Bucket="bench-uploads", NotificationConfiguration={
        "QueueConfigurations": [{"Id": "someone-else", "QueueArn": foreign_arn["Attributes"]["QueueArn"],
                                 "Events": ["s3:ObjectRemoved:*"]}]})
    config = workload / "lbuild.toml"
    text = config.read_text(encoding="utf-8")
    names = sorted(p.name for p in (workload / "functions").iterdir())[:functions]
    extra = []
    for n, name in enumerate(names):
        url = sqs.create_queue(QueueName=f"q-{name}", Attributes={"VisibilityTimeout": "900"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        extra.append(f"[[functions.{name}.triggers]]\nsqs = \"{arn}\"\nbatch_size = 5\n")
        if n % 2 == 0:
            extra.append(f"[[functions.{name}.triggers]]\neventbridge = '{{\"source\": [\"bench.{name}\"]}}'\n")
        if n % 5 == 0:
            extra.append(f"[[functions.{name}.triggers]]\ns3 = \"bench-uploads\"\nprefix = \"{name}/\"\n")
    text = text.replace("[project]\n", "[project]\nlog_retention_days = 14\n", 1)
    for name in names:  # reserved concurrency is a function's own key
        text = text.replace(f"[functions.{name}]\n", f"[functions.{name}]\nreserved_concurrency = 2\n", 1)
    config.write_text(text + "\n" + "\n".join(extra), encoding="utf-8")


def throttled(workload: Path, env: dict[str, str], rate: float, reps: int) -> list[tuple[str, float, dict | None]]:
    """First deploys fault-free and under ``rate`` throttling, interleaved; then a persistent throttle."""
    from tests.support.faultproxy import FaultProxy, Rule

    endpoint = env["AWS_ENDPOINT_URL"]
    rows: list[tuple[str, float, dict | None]] = []
    free: list[float] = []
    slow: list[float] = []
    with FaultProxy(endpoint, seed=1) as proxy:
        proxied = {**env, "AWS_ENDPOINT_URL": proxy.url}
        for rep in range(reps):
            for label, throttle, times in (("fault-free", False, free), (f"{rate:.0%} throttled", True, slow)):
                _reset(endpoint)
                proxy.seed = rep + 1
                proxy.reset()  # both through the proxy (it adds Lambda's RevisionIds, which moto lacks)
                if throttle:
                    proxy.add(Rule("throttle429", rate=rate / 2))
                    proxy.add(Rule("throttle400", rate=(rate / 2) / (1 - rate / 2)))
                seconds, code, document, err = lbuild(["deploy", "--yes", "--json"], workload, proxied)
                if code or document is None:
                    sys.exit(f"{label} first deploy failed ({code}):\n{err}")
                times.append(seconds)
                faults = sum(1 for entry in proxy.log if entry.fault)
                rows.append((f"first deploy, {label} #{rep + 1}" + (f" ({faults} throttled)" if faults else ""),
                             seconds, document["requests"]))
        _reset(endpoint)
        proxy.reset()
        proxy.add(Rule("throttle429", service="lambda", op="^GetFunction$", path="fn001"))
        seconds, code, document, _ = lbuild(["deploy", "--yes", "--json"], workload, proxied)
        rows.append((f"persistent throttle: exit {code}, {proxy.count('GetFunction', fault='throttle429')} tries",
                     seconds, None))
    free.sort()
    slow.sort()
    ratio = slow[len(slow) // 2] / free[len(free) // 2]
    rows.append((f"median ratio throttled / fault-free: {ratio:.2f}x", 0.0, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=Path, help="an existing workload to copy (default: generate one)")
    parser.add_argument("--functions", type=int, default=40)
    parser.add_argument("--pool", default="real", choices=("real", "local"))
    parser.add_argument("--throttle", type=float, default=0.0, help="also measure deploys under this throttle rate")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--triggers", action="store_true", help="give the functions triggers and settings")
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/bench-deploy-{int(time.time())}.json"))
    options = parser.parse_args()
    compile_lbuild()

    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    workload = work / "workload"
    if options.workload:
        shutil.copytree(options.workload, workload)
    else:
        subprocess.run([sys.executable, str(kit() / "make_workload.py"), "--functions", str(options.functions),
                        "--seed", "1", "--pool", options.pool, "--runtime", "python3.11", "--architecture",
                        "x86_64", "--out", str(workload)], check=True, stdout=subprocess.DEVNULL)
    with moto(work / "cache") as env:
        if options.triggers:
            add_triggers(workload, env["AWS_ENDPOINT_URL"], options.functions)
        seconds, code, _, err = lbuild(["package", "--json"], workload, env)
        if code:
            sys.exit(f"lbuild package failed ({code}):\n{err}")
        rows = [("package (untimed setup)", seconds, None)]
        for label, prepare in (("first deploy", None), ("no-op deploy", None), ("one function changed", "touch")):
            if prepare == "touch":
                with (workload / "functions" / "fn001" / "app.py").open("a", encoding="utf-8") as handle:
                    handle.write("# changed\n")
            seconds, code, document, err = lbuild(["deploy", "--yes", "--json"], workload, env)
            if code or document is None:
                sys.exit(f"{label}: lbuild deploy failed ({code}):\n{err}")
            rows.append((label, seconds, document["requests"]))
        seconds, code, document, err = lbuild(["plan", "--json"], workload, env)
        rows.append((f"plan after deploy (exit {code})", seconds, document["requests"] if document else None))
        if options.throttle:
            rows += throttled(workload, env, options.throttle, options.reps)
    functions = options.functions
    triggers = ", with triggers and settings" if options.triggers else ""
    print(f"\nlbuild deploy against moto server, {functions} functions ({options.pool} pool{triggers})")
    print(f"{'step':34} {'wall s':>8} {'reads':>6} {'writes':>6} {'reads/fn':>8} {'calls/100 fn':>12}")
    for label, seconds, requests in rows:
        reads = requests["reads"] if requests else ""
        writes = requests["writes"] if requests else ""
        per = f"{requests['reads'] / functions:.2f}" if requests else ""
        hundred = f"{(requests['reads'] + requests['writes']) * 100 / functions:.1f}" if requests else ""
        print(f"{label:34} {seconds:8.2f} {reads!s:>6} {writes!s:>6} {per:>8} {hundred:>12}")
    options.out.write_text(json.dumps([{"step": r[0], "seconds": round(r[1], 3), "requests": r[2]} for r in rows],
                                      indent=2), encoding="utf-8")
    print(f"\nresults: {options.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
