// The SDK-compatible endpoint's checks, through the AWS SDK for JavaScript
// v3 as function code uses it (tests/e2e/sdk.rs invokes this under
// aws-lambda-ric, the function's environment pointing both services at
// sidekey). Each event names a check; answers carry codes, names and
// digests, never a value.
import { createHash } from "node:crypto";
import {
  BatchGetSecretValueCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { GetParameterCommand, SSMClient, paginateGetParametersByPath } from "@aws-sdk/client-ssm";

const secrets = new SecretsManagerClient({});
const ssm = new SSMClient({});
const digest = (v) => createHash("sha256").update(v).digest("hex");

export const handler = async (event) => {
  switch (event.check) {
    case "reads": {
      let secret, value;
      for (let i = 0; i < event.times; i++) {
        ({ SecretString: secret } = await secrets.send(new GetSecretValueCommand({ SecretId: event.secret })));
        ({ Parameter: { Value: value } } = await ssm.send(
          new GetParameterCommand({ Name: event.parameter, WithDecryption: true }),
        ));
      }
      return { secret: digest(secret), parameter: digest(value) };
    }
    case "tree": {
      const names = [];
      let pages = 0;
      const paginator = paginateGetParametersByPath(
        { client: ssm, pageSize: 1 },
        { Path: event.path, Recursive: true, WithDecryption: true },
      );
      for await (const page of paginator) {
        pages += 1;
        names.push(...page.Parameters.map((p) => p.Name));
      }
      return { names, pages };
    }
    case "batch": {
      const out = await secrets.send(new BatchGetSecretValueCommand({ SecretIdList: event.ids }));
      return {
        names: out.SecretValues.map((v) => v.Name).sort(),
        errors: (out.Errors ?? []).map((e) => e.SecretId).sort(),
      };
    }
    case "missing":
      try {
        await secrets.send(new GetSecretValueCommand({ SecretId: event.secret }));
        return { raised: null };
      } catch (e) {
        return { raised: e instanceof ResourceNotFoundException ? e.name : `other: ${e.name}` };
      }
    case "describe": {
      const out = await secrets.send(new DescribeSecretCommand({ SecretId: event.secret }));
      return { name: out.Name };
    }
    case "write": {
      await secrets.send(new PutSecretValueCommand({ SecretId: event.secret, SecretString: event.value }));
      const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: event.secret }));
      return { sees_its_write: SecretString === event.value };
    }
    case "forged": {
      const forged = new SecretsManagerClient({
        credentials: {
          accessKeyId: process.env.AWS_ACCESS_KEY_ID,
          secretAccessKey: "not-the-functions-secret-key",
          sessionToken: process.env.AWS_SESSION_TOKEN,
        },
      });
      try {
        await forged.send(new GetSecretValueCommand({ SecretId: event.secret }));
        return { forged: null };
      } catch (e) {
        return { forged: e.name };
      }
    }
    default:
      throw new Error(`no check ${event.check}`);
  }
};
