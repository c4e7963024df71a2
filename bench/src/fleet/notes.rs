//! The fleet section's reading of its figures, written by hand from the
//! run whose tables precede it (medians over the seeds; the tables carry
//! the ranges). Rerun `sidekey-bench fleet --report-only` after editing.

/// What the figures say, where sidekey loses and what would win it back.
pub const NOTES: &str = "\
### Reading

Figures below are medians over the three seeds (the tables give the ranges; where seeds disagree \
the ranges are narrow, well inside the gaps quoted here). Counts, not timings.

**What the fair model changed.** The first model's outage (5 minutes of fast 503s) let every \
client with a cached value coast; hung calls are what separate the policies now. Rivals that \
set no timeout (official-like, agent-like v3 with its defaults, Powertools) wait on a hung call \
until the function's 3 s timeout, and Lambda then resets the environment with its cache: about \
74% of their reads fail in scenario 4, against 23% for sidekey, whose 2 s deadline and \
serve-stale keep every environment that read a value serving it (0 failed reads of a held \
value, in every scenario and seed). The agent model is no longer a straw man: after its TTL it \
asks DescribeSecret and keeps its value, so in the steady state it makes a fifth of the \
GetSecretValue calls the official-like model makes.

**sidekey's advantages that survived the fair rivals**
- *Hung upstream (4)*: no failed read of a held value; rivals without a timeout fail 3.2x as \
many reads. The agent with its options (prefetch, TTL 3600) fares like sidekey on failures \
(1.69M vs 1.49M) but its prefetch, a BatchGetSecretValue per cold start, is throttled 0.73M \
times against the 100/s quota.
- *Regional outage with a replica (5)*: with `SIDEKEY_FALLBACK_REGIONS`, cold reads go to the \
replica: about 6,200 reads fail of 6.5M (0.1%), against 1.2M to 5M for every other policy, \
sidekey's defaults included. No rival fails over.
- *Parameter Store at 40/s (6)*: with its parameters prefetched (one GetParameters per cold \
start) sidekey fails no read and is never throttled; the official-like and Powertools models \
lose 85% to 97% of their reads to throttling and the timeouts it causes; the global variable \
29%. With its defaults (5 GetParameter per cold start) sidekey is throttled too and fails about \
0.15% of reads: prefetching parameters is what wins here.
- *Surge (1)*: sidekey is throttled nowhere; the agent's prefetch is throttled about 28,800 \
times (batch quota), Powertools (5 s) and no cache run GetSecretValue past its quota, and no \
cache also gets 429s from Lambda (its slower invocations reach the 1,000 concurrency).
- *Lambda Managed Instances (7)*: one cache per environment refreshed on its own timer makes \
the fewest calls of the policies that keep values fresh (about 1,500, against 4,000 to 4,400 \
for official-like, agent-like v3 and Powertools (300 s), one cache per process). Per \
16-worker environment and hour: sidekey about 24 calls, Powertools (300 s) about 71, \
Powertools (5 s, its default before May 2024) about 3,570, no cache about 36,300. Per read, \
as a Python function sees it (the table \"What one secret read costs a function\" above, same \
run's machine): a Powertools hit is an in-process lookup (about 3 us), a sidekey hit a \
localhost HTTP round trip (about 95 us), a read without cache a call to the service (about \
7 ms against moto; 15 ms median in this model). The e2e test `lmi::` shows the count with \
real processes: 16 `awslambdaric` workers reading 5 secrets make 5 calls through sidekey and \
80 through Powertools.

**Where sidekey loses, and what would win it back**
- *Cost when BatchGetSecretValue is billed per secret (2, 3, 7, 8)*: sidekey's INVOKE-time \
refresh batches secrets (cheapest per call: $0.28 against $0.67 per 1M invocations in 2) but \
fetches about 1.3x as many secret values as refetch-on-expiry, because refresh-ahead (the last \
20% of the TTL) and the riders (values past half their TTL joining a batch) refresh before \
expiry. Billed per secret it costs $0.87 against $0.67. Winning change: when batches bill per \
secret, refresh only what is due (no riders) and shrink `refresh_ahead` (serving the expired \
value while its refresh is in flight already hides the refresh); or refresh with GetSecretValue \
alone.
- *Fewest calls at any freshness*: the global variable and the agent with TTL 3600 make fewer \
calls than sidekey in every scenario but serve a rotated secret for the rest of the hour (about \
244,000 old reads in 3, against about 31,000 for sidekey). That is a freshness choice, not a \
loss; sidekey with `SECRETS_MANAGER_TTL=3600` would make the same trade.
- *Rotation tail (3)*: sidekey's last old read comes later after the rotation than the \
official-like model's (which refetches exactly at its TTL): a value refreshed ahead of its \
expiry just before the rotation lives another jittered TTL. Fewer old reads in all, a longer \
tail. Winning change: the same smaller `refresh_ahead`.
- *Outage without a replica (4)*: cold environments (recycled during the hour) fail their reads \
under every policy; nothing cached can serve what it never read. The global variable fails \
fewer reads than sidekey (1.22M vs 1.49M) only because its INIT hangs up to 10 s and Lambda \
throttles about 95,000 invocations (429) at the 1,000 concurrency instead: counting those, \
sidekey serves more. But sidekey makes the most calls of the caching policies in an outage \
(2.5M, against 1.9M for official-like): three attempts per cold read within the deadline and \
each failing value retried on its own after a backoff capped at 60 s. Winning changes: cap the \
retry backoff of a value being served stale at its TTL rather than 60 s, and make a cold read \
whose last attempt hung wait out a shorter single attempt; and, for cold starts, set \
`SIDEKEY_FALLBACK_REGIONS` (scenario 5).
- *Prefetch in an outage (4)*: `SIDEKEY_PREFETCH` adds calls (4.1M vs 2.6M) without saving a \
read, since every cold start prefetches into a failing service. Winning change: skip the \
prefetch of ids whose read failed in the last deadline (nothing to learn across environments, \
so: prefetch once, then let reads drive).

**`SIDEKEY_VERSION_CHECK`: keep `off` as the default.** Scenario 8 (customer-managed key, \
rotation): `describe` cuts KMS Decrypt calls from about 82,000 to 19,000 and keeps the same \
freshness, but it checks every secret on its own (DescribeSecret per secret per TTL) instead \
of one batch: $1.01 per 1M invocations against $0.86 with batches billed per call, $1.42 billed \
per secret. So `describe` pays only when batches bill per secret, or with many secrets under a \
customer-managed key; with AWS's own key (no KMS charge to save) it makes 2.5x the calls (82,000 against 33,000). Worth \
documenting as the setting for customer-managed keys, not a default. The agent's DescribeSecret \
path shows the same: $0.84, between the two.

**What drives these figures (assumptions to challenge)**: environment lifetimes drawn in [15, \
90] min (AWS publishes none; longer lifetimes shrink every policy's cold-read failures in 4 \
alike); half the calls in an outage hang, half answer 503; the function timeout is Lambda's \
default 3 s and a timeout resets the environment; rivals on the SDK's standard retry (boto3's \
legacy mode makes more attempts); token buckets with one second of burst; the official \
extension modelled from its documentation (closed source).
";
