"""``templates/iam-policy.json`` lists every permission lbuild's own calls need (README's promise)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_deploy import BUCKET, REPO, Demo, Run

#: API operations whose IAM action has another name.
ACTIONS = {"s3.HeadObject": "s3:GetObject", "s3.HeadBucket": "s3:ListBucket", "s3.ListObjectsV2": "s3:ListBucket",
           "s3.CreateMultipartUpload": "s3:PutObject", "s3.UploadPart": "s3:PutObject",
           "s3.CompleteMultipartUpload": "s3:PutObject", "s3.ListMultipartUploads": "s3:ListBucketMultipartUploads",
           "lambda.GetFunctionConfiguration": "lambda:GetFunctionConfiguration",
           "resource-groups-tagging-api.GetResources": "tag:GetResources"}


def _allowed() -> set[str]:
    policy = json.loads((REPO / "templates" / "iam-policy.json").read_text(encoding="utf-8"))
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def _needed(*runs: Run) -> set[str]:
    ops = {op for run in runs for op, _ in run.recorder.calls}
    return {ACTIONS.get(op, op.replace(".", ":", 1)) for op in ops}


def test_the_policy_allows_every_call_of_a_deploy_with_a_bucket_a_canary_and_a_big_artifact(
        demo: Demo, big_wheels: Path) -> None:
    demo.aws.create_bucket(BUCKET)
    demo.bucket = BUCKET
    demo.extra_links = (big_wheels,)
    demo.extra_functions = {"media": "bigdata\n"}
    demo.write()
    runs = [demo.deploy()]
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(e, c):\n    return 2\n")
    runs += [demo.deploy("--canary", "10"), demo.deploy(), demo.run("plan"), demo.run("unlock", "none")]
    missing = sorted(_needed(*runs) - _allowed())
    assert missing == [], f"templates/iam-policy.json lacks {missing}"
