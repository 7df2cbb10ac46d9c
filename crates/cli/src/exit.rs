//! Exit codes: one per kind of failure a script may want to handle differently.
//! docs/cli.md lists them; changing one is a breaking change.

use std::process::ExitCode;

use strongroom_core::{Error, ErrorKind};

/// Any failure not listed below (I/O, an unexpected backend response).
pub(crate) const OTHER: u8 = 1;
/// Bad input: usage (clap's own code), key name, value, configuration.
pub(crate) const BAD_INPUT: u8 = 2;
/// The secret or version does not exist, or is deleted.
pub(crate) const NOT_FOUND: u8 = 3;
/// Not authenticated, or not allowed.
pub(crate) const AUTH: u8 = 4;
/// The backend cannot be reached now; retrying later may work.
pub(crate) const UNAVAILABLE: u8 = 5;
/// A check-and-set precondition did not hold.
pub(crate) const CONFLICT: u8 = 6;
/// Wrong master key, or a modified store.
pub(crate) const DECRYPT: u8 = 7;
/// The backend cannot do this (a write to a read-only store).
pub(crate) const UNSUPPORTED: u8 = 8;

/// The exit code for `error`.
pub(crate) fn code(error: &Error) -> ExitCode {
    ExitCode::from(match error.kind() {
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::InvalidKey | ErrorKind::InvalidValue | ErrorKind::Config => BAD_INPUT,
        ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => AUTH,
        ErrorKind::Unavailable => UNAVAILABLE,
        ErrorKind::Conflict => CONFLICT,
        ErrorKind::Decrypt => DECRYPT,
        ErrorKind::Unsupported => UNSUPPORTED,
        _ => OTHER,
    })
}
