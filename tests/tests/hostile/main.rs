//! The hostile-network suite: every endpoint the AWS side calls, against a lying server
//! (`strongroom_itests::hostile`), in every way it can lie.
//!
//! Each case must end in a typed error within the configured timeout, read no more than the
//! body limit, panic in no task, and leave the client working once the server answers
//! normally again. Needs no external server: `cargo test -p strongroom-itests --test hostile`
//! (it also runs inside `cargo xtask itest`). The table of outcomes is in
//! docs/reliability.md ("Hostile servers").

// The outcome figures of docs/reliability.md are printed (`-- --nocapture`).
#![allow(clippy::print_stdout)]

mod aws;
mod providers;
mod server;
mod support;
mod vault;
