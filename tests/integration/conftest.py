"""Integration fixtures: moto in server mode on 127.0.0.1 (``moto_endpoint``) and ``aws_env``."""

from tests.support.moto_server import aws_env, moto_endpoint

__all__ = ["aws_env", "moto_endpoint"]
