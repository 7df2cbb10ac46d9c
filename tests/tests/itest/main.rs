//! The one integration-test binary: every real-server suite is a module here, so `cargo test`
//! links one binary. Run it with `cargo xtask itest`, which starts, seeds and stops the servers.
//!
//! - `services`: raw HTTP round trips proving each server is what it claims to be.
//! - `cluster`: a three-node OpenBao cluster's leader killed, paused and partitioned under
//!   load; only with `cargo xtask itest --cluster`, which starts that cluster.

mod agent;
mod aws;
mod breaker;
mod cli;
mod cluster;
mod conformance;
mod facade;
mod faults;
mod gcp;
mod key_slots;
mod keys;
mod least_privilege;
mod prefix;
mod raw;
mod rotation;
mod services;
mod ssm;
mod support;
mod vault;
