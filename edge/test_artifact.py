#!/usr/bin/env python3
"""Test the deployable artifact: the built sidekey-edge.zip, as Lambda runs it.

Unpacks the zip into a temporary directory, replaces its config.json with
one aimed at loopback stand-ins, imports handler.py with this machine's
python3 (standard library only) and calls handler(event, None) as the
Python runtime would:

* moto's server plays Secrets Manager, behind a counting proxy (this file);
* a loopback HTTPS server plays the external API and checks that the
  Authorization header is exactly the stored key and the body is
  {"source":"lambda-edge"}. Its certificate comes from a throwaway CA made
  with the openssl CLI and handed to the module through SSL_CERT_FILE, so
  the shipped TLS stack and its system-CA-store lookup are exercised (plain
  HTTP if openssl is missing, said so in the output).

Checks: the request passes through unchanged, many invocations make one
GetSecretValue in total, an API refusal becomes a 502 response, and the key
appears in no reply.

    python3 edge/test_artifact.py [target/edge/sidekey-edge.zip]

moto_server is found through SIDEKEY_MOTO_SERVER (set by scripts/tools.sh),
then target/tools/bin/moto_server, then PATH.
"""
import copy
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "edge-artifact-k3y-" + os.urandom(6).hex()
SECRET_ID = "sidekey/edge-artifact"
INVOCATIONS = 50

EVENT = {
    "Records": [
        {
            "cf": {
                "config": {
                    "distributionDomainName": "d111111abcdef8.cloudfront.net",
                    "distributionId": "EDFDVBD6EXAMPLE",
                    "eventType": "viewer-request",
                    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                },
                "request": {
                    "clientIp": "203.0.113.178",
                    "headers": {
                        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                        "user-agent": [{"key": "User-Agent", "value": "curl/8.5.0"}],
                        "accept": [{"key": "accept", "value": "*/*"}],
                    },
                    "method": "GET",
                    "querystring": "size=LARGE",
                    "uri": "/picture.jpg",
                    "unmodelledField": {"kept": [1, True, None]},
                },
            }
        }
    ]
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_binary():
    for candidate in (
        os.environ.get("SIDEKEY_MOTO_SERVER"),
        os.path.join(ROOT, "target", "tools", "bin", "moto_server"),
        shutil.which("moto_server"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("moto_server not found: run scripts/test.sh (or source scripts/tools.sh test)")


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/moto-api/")
            conn.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not start")


def aws_call(port, target, payload, region="us-east-1"):
    """An unsigned JSON 1.1 call to moto (it reads the region from the scope)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "POST",
        "/",
        body=json.dumps(payload),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/%s/secretsmanager/aws4_request, "
            "SignedHeaders=host, Signature=0" % region,
        },
    )
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, (target, resp.status, body[:200])
    return json.loads(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(handler_class):
    server = Server(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def counting_proxy(upstream_port):
    """Forwards to moto and counts calls per X-Amz-Target operation."""
    counts = {}
    lock = threading.Lock()

    class Proxy(Quiet):
        def do_POST(self):
            body = self.body()
            op = self.headers.get("X-Amz-Target", "?").split(".")[-1]
            with lock:
                counts[op] = counts.get(op, 0) + 1
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.answer(
                resp.status,
                data,
                [(k, v) for k, v in resp.getheaders() if k.lower() in ("content-type", "x-amzn-requestid")],
            )

    return serve(Proxy), counts


def make_tls(work):
    """A throwaway CA and a leaf for IP 127.0.0.1; None without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    d = os.path.join(work, "tls")
    os.makedirs(d)

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=sidekey test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "1", "-extfile", "ext.cnf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key"))
    return ctx, os.path.join(d, "ca.pem")


def api_stand_in(tls_context):
    """The external API: 2xx only for the exact key and the expected body."""
    state = {"status": 200, "calls": 0, "bad": []}

    class Api(Quiet):
        def do_POST(self):
            body = self.body()
            state["calls"] += 1
            if self.headers.get("Authorization") != KEY:
                state["bad"].append("wrong Authorization header")
            if json.loads(body or b"null") != {"source": "lambda-edge"}:
                state["bad"].append("wrong body")
            self.answer(state["status"] if not state["bad"] else 400, b'{"ok":true}', [("Content-Type", "application/json")])

    server = Server(("127.0.0.1", 0), Api)
    if tls_context:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def main():
    zip_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "edge", "sidekey-edge.zip")
    moto, moto_port = start_moto()
    work = tempfile.mkdtemp(prefix="sidekey-edge-artifact-")
    try:
        aws_call(moto_port, "secretsmanager.CreateSecret", {"Name": SECRET_ID, "SecretString": json.dumps({"apikey": KEY, "other": "x"})})
        proxy, counts = counting_proxy(moto_port)
        tls = make_tls(work)
        api, api_state = api_stand_in(tls[0] if tls else None)
        scheme = "https" if tls else "http"
        if tls:
            # rustls-native-certs reads SSL_CERT_FILE instead of the system store.
            os.environ["SSL_CERT_FILE"] = tls[1]
        else:
            print("openssl not found: the API stand-in speaks plain HTTP")

        with zipfile.ZipFile(zip_path) as z:
            names = sorted(z.namelist())
            z.extractall(work)
        assert "handler.py" in names and "config.json" in names, names
        assert any(n.startswith("sidekey_edge/") and n.endswith(".so") for n in names), names
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(
                {
                    "secret_id": SECRET_ID,
                    "field": "apikey",
                    "api_url": "%s://127.0.0.1:%d/v1/edge" % (scheme, api.server_address[1]),
                    "primary_region": "us-east-1",
                    "replica_regions": ["eu-west-1"],
                    "ttl_seconds": 300,
                    "timeout_ms": 2000,
                    "secrets_manager_endpoint": "http://127.0.0.1:%d" % proxy.server_address[1],
                },
                f,
            )
        # What Lambda puts in every function's environment.
        os.environ.update(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_SESSION_TOKEN="test-session",
            AWS_REGION="us-east-1",
        )
        sys.path.insert(0, work)
        import handler  # noqa: E402  (the artifact's own handler.py)
        import sidekey_edge  # noqa: E402

        assert os.path.dirname(handler.__file__) == work, handler.__file__

        expected = EVENT["Records"][0]["cf"]["request"]
        for i in range(INVOCATIONS):
            out = handler.handler(copy.deepcopy(EVENT), None)
            assert out == expected, (i, out)
            assert KEY not in json.dumps(out)
        assert api_state["bad"] == [], api_state["bad"]
        assert api_state["calls"] == INVOCATIONS, api_state
        assert counts.get("GetSecretValue") == 1, counts
        metrics = json.loads(sidekey_edge.metrics())
        assert metrics["upstream_calls"] == 1, metrics
        print("pass-through over %s: %d invocations, %d GetSecretValue, cache %s" % (scheme, INVOCATIONS, counts["GetSecretValue"], metrics))

        api_state["status"] = 401
        out = handler.handler(copy.deepcopy(EVENT), None)
        assert out["status"] == "502", out
        assert KEY not in json.dumps(out)
        api_state["status"] = 500
        out = handler.handler(copy.deepcopy(EVENT), None)
        assert out["status"] == "502", out
        out = handler.handler({"Records": []}, None)
        assert out["status"] == "502", out
        assert counts.get("GetSecretValue") == 1, counts
        print("refusals: API 401/500 and a malformed event answered 502; still 1 GetSecretValue")
        print("edge artifact test: OK")
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
