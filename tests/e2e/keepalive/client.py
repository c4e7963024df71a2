"""A function's keep-alive client of the extension, as Python code holds one
across invocations (http.client, stdlib: no reconnect behind its back).
Reads once, waits for a line on stdin, reads again on the same connection.
Prints one JSON line per read: the status and the connection's local port,
or the exception."""
import http.client
import json
import sys

port, token, secret = sys.argv[1], sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)


def read():
    try:
        conn.request(
            "GET",
            f"/secretsmanager/get?secretId={secret}",
            headers={"X-Aws-Parameters-Secrets-Token": token},
        )
        answer = conn.getresponse()
        answer.read()
        print(json.dumps({"status": answer.status, "port": conn.sock.getsockname()[1]}), flush=True)
    except Exception as e:  # the reset the test looks for
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


read()
sys.stdin.readline()
read()
