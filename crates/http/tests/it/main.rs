//! Integration tests of strongroom-http against servers on loopback that the tests start
//! themselves: protocol-fault responders (hyper and raw TCP) and a rustls TLS server with a
//! CA made by rcgen. One binary, so `cargo test` links once.

mod faults;
mod leaks;
mod pool;
mod support;
mod tls;
