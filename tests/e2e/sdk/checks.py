"""The SDK-compatible endpoint's checks, through boto3 as function code
uses it (tests/e2e/sdk.rs invokes this under awslambdaric, the function's
environment pointing both services at sidekey). Each event names a check;
answers carry codes, names and summaries, never a value."""

import hashlib
import json
import os

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

secrets = boto3.client("secretsmanager")
ssm = boto3.client("ssm")


def summary(value):
    return hashlib.sha256(value.encode()).hexdigest()


def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def lambda_handler(event, context):
    # The simulator's Runtime API sends the event without a JSON content
    # type, and awslambdaric then hands it over as bytes.
    if isinstance(event, (bytes, str)):
        event = json.loads(event)
    check = event["check"]
    if check == "reads":
        for _ in range(event["times"]):
            secret = secrets.get_secret_value(SecretId=event["secret"])["SecretString"]
            value = ssm.get_parameter(Name=event["parameter"], WithDecryption=True)["Parameter"]["Value"]
        return {"secret": summary(secret), "parameter": summary(value)}
    if check == "tree":
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=event["path"], Recursive=True, WithDecryption=True, PaginationConfig={"PageSize": 1}
        )
        names, count = [], 0
        for page in pages:
            count += 1
            names.extend(p["Name"] for p in page["Parameters"])
        return {"names": names, "pages": count}
    if check == "batch":
        answer = secrets.batch_get_secret_value(SecretIdList=event["ids"])
        return {
            "names": sorted(v["Name"] for v in answer["SecretValues"]),
            "errors": sorted(e["SecretId"] for e in answer.get("Errors", [])),
        }
    if check == "parameters":
        answer = ssm.get_parameters(Names=event["names"], WithDecryption=True)
        return {
            "names": sorted(p["Name"] + (p.get("Selector") or "") for p in answer["Parameters"]),
            "invalid": answer["InvalidParameters"],
        }
    if check == "missing":
        try:
            secrets.get_secret_value(SecretId=event["secret"])
        except secrets.exceptions.ResourceNotFoundException:
            return {"raised": "ResourceNotFoundException"}
        return {"raised": None}
    if check == "throttled":
        attempts = []
        client = boto3.client("secretsmanager")
        client.meta.events.register("before-send", lambda **_: attempts.append(1))
        return {"code": code(lambda: client.get_secret_value(SecretId=event["secret"])), "attempts": len(attempts)}
    if check == "describe":
        return {"name": secrets.describe_secret(SecretId=event["secret"])["Name"]}
    if check == "write":
        secrets.put_secret_value(SecretId=event["secret"], SecretString=event["value"])
        read = secrets.get_secret_value(SecretId=event["secret"])["SecretString"]
        return {"sees_its_write": read == event["value"]}
    if check == "forged":
        forged = boto3.client(
            "secretsmanager",
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key="not-the-functions-secret-key",
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
        other_key = boto3.client(
            "secretsmanager",
            aws_access_key_id="ASIAANOTHERROLE",
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
        unsigned = boto3.client("secretsmanager", config=Config(signature_version=UNSIGNED))
        read = lambda client: lambda: client.get_secret_value(SecretId=event["secret"])
        return {
            "forged": code(read(forged)),
            "other_key": code(read(other_key)),
            "unsigned": code(read(unsigned)),
        }
    raise ValueError(f"no check {check}")
