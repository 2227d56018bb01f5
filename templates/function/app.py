"""A sample Lambda function: answers an API Gateway or function URL request with JSON."""

import json

import idna  # a small pure-Python dependency, only to show that requirements are packaged


def handler(event, context):
    """Return ``{"message": "hello, <name>"}``; ``?name=...`` sets the name."""
    params = (event or {}).get("queryStringParameters") or {}
    body = {
        "message": f"hello, {params.get('name', 'world')}",
        "idna": idna.encode("bücher.example").decode("ascii"),
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
