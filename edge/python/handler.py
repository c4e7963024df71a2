"""Lambda@Edge viewer-request handler: the work is done in Rust (sidekey_edge).

The module is configured once per environment, at import, from the
config.json bundled next to this file (Lambda@Edge has no environment
variables). A bad config or missing credentials fail the import, so the
function fails its init instead of answering wrongly.
"""
import json
import os

import sidekey_edge

sidekey_edge.configure(os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json"))


def handler(event, context):
    return json.loads(sidekey_edge.handle(json.dumps(event)))
