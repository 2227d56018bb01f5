"""Pieces the deploy and image benchmarks share: the workload generator, a moto server on 127.0.0.1, and
compiled bytecode for the lbuild they measure."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"


def kit() -> Path:
    """The folder of ``make_workload.py`` (``../shared/bench`` beside the repo)."""
    for candidate in (REPO.parent / "shared" / "bench", Path("/work/shared/bench")):
        if (candidate / "make_workload.py").is_file():
            return candidate
    sys.exit("make_workload.py not found (expected ../shared/bench)")


def compile_lbuild() -> None:
    """Compile the bytecode of the lbuild this interpreter imports, as `pip install` does for a normal install.

    An editable install (or a checkout on PYTHONPATH) under PYTHONDONTWRITEBYTECODE would otherwise compile
    lbuild's sources again on every run measured (about 0.06 s each).
    """
    spec = importlib.util.find_spec("lbuild")
    if spec is not None and spec.origin:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(spec.origin).parent)], check=True)


@contextmanager
def moto(cache: Path) -> Iterator[dict[str, str]]:
    """A moto server on 127.0.0.1 (Docker use off) with the role ``bench-lambda``; yields the env for lbuild."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint}/moto-api/config", data=b'{"lambda": {"use_docker": false}}', method="POST",
            headers={"Content-Type": "application/json"})).read()
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_role(
            RoleName="bench-lambda", AssumeRolePolicyDocument=json.dumps(trust))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIP_", "UV_INDEX"))}
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", LBUILD_CACHE_DIR=str(cache), PIP_CONFIG_FILE="/dev/null")
        yield env
    finally:
        server.stop()
