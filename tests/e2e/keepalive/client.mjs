// A function's keep-alive client of the extension, as Node.js code holds
// one across invocations (an http.Agent with keepAlive). Reads once, waits
// for a line on stdin, reads again. Prints one JSON line per read: the
// status and the socket's local port, or the error.
import http from "node:http";

const [port, token, secret] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function read() {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: "127.0.0.1",
        port,
        path: `/secretsmanager/get?secretId=${encodeURIComponent(secret)}`,
        agent,
        headers: { "X-Aws-Parameters-Secrets-Token": token },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, port: req.socket.localPort }));
      },
    );
    req.on("error", (e) => resolve({ error: `${e.code}: ${e.message}` }));
  });
}

console.log(JSON.stringify(await read()));
process.stdin.once("data", async () => {
  console.log(JSON.stringify(await read()));
  agent.destroy();
  process.exit(0);
});
