"""Integration fixtures: moto in server mode on 127.0.0.1 (``moto_endpoint``) and ``aws_env``; the fault
proxy in front of it (``fault_proxy``) and short botocore retry sleeps (``fast_backoff``); a package index on
127.0.0.1 (``local_index``)."""

from tests.support.faultproxy import fast_backoff, fault_proxy
from tests.support.index_server import local_index
from tests.support.moto_server import aws_env, moto_endpoint

__all__ = ["aws_env", "fast_backoff", "fault_proxy", "local_index", "moto_endpoint"]

# The deploy demo project (defined with its tests) serves the prune tests too.
from tests.integration.test_deploy import big_wheels, demo, deploy_wheels, run_cli  # noqa: F401

# A real Docker engine and the local registry of .ci/docker-up, for the image tests.
from tests.support.docker_engine import docker_engine, test_registry  # noqa: F401
