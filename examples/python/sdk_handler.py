"""Read a secret and a parameter with boto3, written exactly as AWS's
documentation shows it: nothing here knows about sidekey.

Give the function two environment variables and every read goes through
sidekey's cache (and the rest of the SDK's calls through sidekey to AWS):

    AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:2773
    AWS_ENDPOINT_URL_SSM=http://127.0.0.1:2773

The end-to-end suite runs it under awslambdaric (tests/e2e/sdk.rs).

Environment: SECRET_ID (a secret name or ARN), PARAMETER_NAME (optional).
The handler answers the values' length and SHA-256, never the values.
"""

import hashlib
import os

import boto3

# Created once per execution environment, reused by every invocation.
secrets = boto3.client("secretsmanager")
ssm = boto3.client("ssm")


def summary(value):
    digest = hashlib.sha256(value.encode()).hexdigest()
    return {"length": len(value), "sha256": digest}


def lambda_handler(event, context):
    secret_id = os.environ["SECRET_ID"]
    secret = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    print(f"read secret {secret_id}: {len(secret)} characters")
    answer = {"secret": summary(secret)}
    name = os.environ.get("PARAMETER_NAME")
    if name:
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        answer["parameter"] = summary(parameter["Value"])
    return answer
