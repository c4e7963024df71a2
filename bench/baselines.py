"""Python baselines for the sidekey benchmark (run by sidekey-bench).

Measures, in one process, what one secret read costs a Python function:
  * Powertools for AWS Lambda `parameters.get_secret` with its cache
    (max_age 300 s, sidekey's default TTL), after one cold read;
  * boto3 `get_secret_value` on every read (no cache);
  * sidekey over localhost, the way a Python function reads the official
    extension (http.client keep-alive GET with the token header, json.loads);
  * boto3 `get_secret_value` unchanged, pointed at sidekey's SDK-compatible
    endpoint (what AWS_ENDPOINT_URL_SECRETS_MANAGER does), served from the
    cache after one cold read.

AWS_ENDPOINT_URL points boto3 at moto on loopback. Prints a JSON list of
{"path", "cached", "reads", "p50_us", "p99_us"} on stdout.
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse


def percentiles(samples_ns):
    samples = sorted(samples_ns)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] / 1e3
    return pick(0.50), pick(0.99)


def measure(path, cached, reads, read, warmup=10):
    for _ in range(warmup):
        read()
    samples = []
    for _ in range(reads):
        t = time.perf_counter_ns()
        read()
        samples.append(time.perf_counter_ns() - t)
    p50, p99 = percentiles(samples)
    print(f"  {path}: p50 {p50:.1f} us", file=sys.stderr)
    return {"path": path, "cached": cached, "reads": reads, "p50_us": p50, "p99_us": p99}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()

    import boto3
    from aws_lambda_powertools.utilities import parameters

    results = []
    secret = args.secret

    def powertools():
        assert parameters.get_secret(secret, max_age=300)

    results.append(measure("Powertools get_secret, cached (Python)", True, args.reads, powertools))

    conn = http.client.HTTPConnection("127.0.0.1", args.port)
    headers = {"X-Aws-Parameters-Secrets-Token": os.environ["AWS_SESSION_TOKEN"]}
    url = "/secretsmanager/get?secretId=" + urllib.parse.quote(secret, safe="")

    def via_sidekey():
        conn.request("GET", url, headers=headers)
        response = response_ = conn.getresponse()
        body = response_.read()
        assert response.status == 200, response.status
        assert json.loads(body)["SecretString"]

    results.append(measure("sidekey extension via http.client (Python)", True, args.reads, via_sidekey))

    through = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{args.port}")

    def via_sdk_endpoint():
        assert through.get_secret_value(SecretId=secret)["SecretString"]

    results.append(
        measure("boto3 get_secret_value through sidekey's SDK endpoint (Python)", True, args.reads, via_sdk_endpoint)
    )

    client = boto3.client("secretsmanager")

    def no_cache():
        assert client.get_secret_value(SecretId=secret)["SecretString"]

    results.append(
        measure("no cache: boto3 get_secret_value each read (Python)", False, max(50, args.reads // 10), no_cache, 5)
    )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
