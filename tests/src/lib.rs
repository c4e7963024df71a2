/*!
The harness of sidekey's end-to-end tests: real emulators, all on loopback.

* [`moto`]: moto's server standing in for Secrets Manager, SSM and KMS.
* [`proxy`]: a counting, fault-injecting HTTP proxy in front of moto.
* [`aws`]: SDK clients pointed at an endpoint, to seed and inspect moto.
* [`hygiene`]: every seeded value, scanned for in every log and error body.
* [`runtime`]: a function runtime that answers every invocation at once.
* [`faults`]: the upstream-fault scenarios the tests assert on and `faults_probe` prints.
*/

#[cfg(feature = "sdk")]
pub mod aws;
pub mod client;
#[cfg(feature = "sdk")]
pub mod faults;
pub mod hygiene;
pub mod lambda;
pub mod moto;
pub mod proxy;
pub mod runtime;
pub mod seed;
pub mod stub;
