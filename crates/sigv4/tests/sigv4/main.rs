//! The integration tests of strongroom-sigv4, in one binary. None uses the network or the
//! process environment.

mod providers;
mod signing;
mod suite;
