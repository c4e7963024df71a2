//! sidekey's end-to-end suite: one binary, one module per component.

mod anchors;
mod batch;
mod cache_moto;
mod demo;
mod edge;
mod extension;
mod fleet;
mod lmi;
mod platforms;
mod reliability;
mod sdk;
mod upstream_faults;
