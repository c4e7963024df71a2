// Read a secret and a parameter with the AWS SDK for JavaScript v3, written
// exactly as AWS's documentation shows it: nothing here knows about sidekey.
//
// Give the function two environment variables and every read goes through
// sidekey's cache (and the rest of the SDK's calls through sidekey to AWS):
//
//   AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:2773
//   AWS_ENDPOINT_URL_SSM=http://127.0.0.1:2773
//
// The end-to-end suite runs it under aws-lambda-ric (tests/e2e/sdk.rs).
// Environment: SECRET_ID, PARAMETER_NAME (optional). The handler answers
// the values' length and SHA-256, never the values.
import { createHash } from "node:crypto";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";

// Created once per execution environment, reused by every invocation.
const secrets = new SecretsManagerClient({});
const ssm = new SSMClient({});

const summary = (value) => ({
  length: value.length,
  sha256: createHash("sha256").update(value).digest("hex"),
});

export const handler = async () => {
  const secretId = process.env.SECRET_ID;
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
  console.log(`read secret ${secretId}: ${SecretString.length} characters`);
  const answer = { secret: summary(SecretString) };
  const name = process.env.PARAMETER_NAME;
  if (name) {
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    answer.parameter = summary(Parameter.Value);
  }
  return answer;
};
