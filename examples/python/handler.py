"""Read a secret (and a parameter) through the AWS Parameters and Secrets
Lambda Extension's HTTP API, written the way AWS's documentation shows it:
the standard library's urllib.request, the port from
PARAMETERS_SECRETS_EXTENSION_HTTP_PORT (default 2773) and the function's
session token in the X-Aws-Parameters-Secrets-Token header.

Nothing here knows about sidekey: attach sidekey's layer instead of the
official one and this code runs unchanged. The end-to-end suite runs it
under awslambdaric (tests/e2e/platforms.rs).

Environment: SECRET_ID (a secret name or ARN), PARAMETER_NAME (optional),
BATCH_SECRET_IDS (optional, comma-separated: read together in one request
with sidekey's /secretsmanager/batch, BatchGetSecretValue's shape).
The handler uses the values and never logs or returns them: it answers
their length and SHA-256, which is what the tests check.
"""

import hashlib
import json
import os
import urllib.parse
import urllib.request

PORT = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
ENDPOINT = f"http://localhost:{PORT}"


def _get(path):
    headers = {"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN")}
    request = urllib.request.Request(ENDPOINT + path, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def get_secret(secret_id):
    query = urllib.parse.urlencode({"secretId": secret_id})
    return _get(f"/secretsmanager/get?{query}")["SecretString"]


def get_parameter(name):
    query = urllib.parse.urlencode({"name": name, "withDecryption": "true"})
    return _get(f"/systemsmanager/parameters/get?{query}")["Parameter"]["Value"]


def get_secrets(secret_ids):
    """Several secrets in one round trip: {name: SecretString}; ids that
    could not be read are in the answer's Errors, with their error code."""
    query = urllib.parse.urlencode({"secretIds": ",".join(secret_ids)})
    answer = _get(f"/secretsmanager/batch?{query}")
    for error in answer["Errors"]:
        print(f"could not read {error['SecretId']}: {error['ErrorCode']}")
    return {value["Name"]: value["SecretString"] for value in answer["SecretValues"]}


def _summary(value):
    return {"length": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}


def lambda_handler(event, context):
    secret_id = os.environ["SECRET_ID"]
    secret = get_secret(secret_id)
    print(f"read secret {secret_id}: {len(secret)} characters")
    result = {"secret": _summary(secret)}
    name = os.environ.get("PARAMETER_NAME")
    if name:
        result["parameter"] = _summary(get_parameter(name))
        print(f"read parameter {name}")
    batch = os.environ.get("BATCH_SECRET_IDS")
    if batch:
        values = get_secrets(batch.split(","))
        result["batch"] = {name: _summary(value) for name, value in values.items()}
        print(f"read {len(values)} secrets in one batch")
    return result
