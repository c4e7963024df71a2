"""A function as it runs under Lambda Managed Instances: one of many Python
processes in one environment, each taking invocations on its own.

Each invocation reads the same secrets twice over: through sidekey (one
cache for the whole environment) and through Powertools' in-process cache
(one per process), the way most Python functions cache today. It answers
the process id and digests, never a value.
"""

import hashlib
import json
import os
import time
import urllib.parse
import urllib.request

from aws_lambda_powertools.utilities import parameters

SECRET_IDS = os.environ["SECRET_IDS"].split(",")
PORT = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
TOKEN = os.environ["AWS_SESSION_TOKEN"]

# The test sends its invocations once every process has got this far.
print("lmi worker ready", flush=True)


def digest(value):
    return hashlib.sha256(value.encode()).hexdigest()


def through_sidekey(secret_id):
    url = f"http://127.0.0.1:{PORT}/secretsmanager/get?secretId={urllib.parse.quote(secret_id, safe='')}"
    request = urllib.request.Request(url, headers={"X-Aws-Parameters-Secrets-Token": TOKEN})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["SecretString"]


def through_powertools(secret_id):
    # Powertools' own cache, in this process only; max_age longer than the
    # test so it never refetches: every extra call is another process's.
    return parameters.get_secret(secret_id, max_age=300)


def timed(read, secret_id):
    started = time.perf_counter()
    value = read(secret_id)
    return digest(value), (time.perf_counter() - started) * 1e6


def lambda_handler(event, context):
    sidekey = [timed(through_sidekey, i) for i in SECRET_IDS]
    powertools = [timed(through_powertools, i) for i in SECRET_IDS]
    # Long enough that the invocations sent together spread over the
    # processes instead of one process taking several in turn.
    if isinstance(event, (bytes, str)):  # the emulator sends no JSON content type
        event = json.loads(event or "{}")
    time.sleep(float(event.get("hold", 0.3)))
    return {
        "pid": os.getpid(),
        "sidekey": [d for d, _ in sidekey],
        "powertools": [d for d, _ in powertools],
        # Microseconds per read, as the function sees them.
        "sidekey_us": [us for _, us in sidekey],
        "powertools_us": [us for _, us in powertools],
    }
