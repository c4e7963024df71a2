// Read a secret (and a parameter) through the AWS Parameters and Secrets
// Lambda Extension's HTTP API, written the way AWS's documentation shows it:
// the global fetch, the port from PARAMETERS_SECRETS_EXTENSION_HTTP_PORT
// (default 2773) and the function's session token in the
// X-Aws-Parameters-Secrets-Token header.
//
// Nothing here knows about sidekey: attach sidekey's layer instead of the
// official one and this code runs unchanged. The end-to-end suite runs it
// under aws-lambda-ric (tests/e2e/platforms.rs).
//
// Environment: SECRET_ID (a secret name or ARN), PARAMETER_NAME (optional).
// The handler uses the values and never logs or returns them: it answers
// their length and SHA-256, which is what the tests check.

import { createHash } from "node:crypto";

const port = process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT ?? "2773";
const endpoint = `http://localhost:${port}`;

async function get(path) {
  const response = await fetch(endpoint + path, {
    headers: { "X-Aws-Parameters-Secrets-Token": process.env.AWS_SESSION_TOKEN },
  });
  if (!response.ok) {
    throw new Error(`the extension answered ${response.status} for ${path.split("?")[0]}`);
  }
  return response.json();
}

export async function getSecret(secretId) {
  const query = new URLSearchParams({ secretId });
  return (await get(`/secretsmanager/get?${query}`)).SecretString;
}

export async function getParameter(name) {
  const query = new URLSearchParams({ name, withDecryption: "true" });
  return (await get(`/systemsmanager/parameters/get?${query}`)).Parameter.Value;
}

const summary = (value) => ({
  length: value.length,
  sha256: createHash("sha256").update(value).digest("hex"),
});

export const handler = async (event) => {
  const secretId = process.env.SECRET_ID;
  const secret = await getSecret(secretId);
  console.log(`read secret ${secretId}: ${secret.length} characters`);
  const result = { secret: summary(secret) };
  const name = process.env.PARAMETER_NAME;
  if (name) {
    result.parameter = summary(await getParameter(name));
    console.log(`read parameter ${name}`);
  }
  return result;
};
