//! The Mizan program: command-line entry points over the ledger and its stores.
//!
//! - [`cli`]: argument parsing and dispatch.
//! - [`demo`]: `mizan demo`, demo people with months of history, served.
//! - [`bench`]: `mizan bench ledger`.
//! - [`load`]: `mizan ledger load`, the child process of the crash test.

/// Prints a line to standard output. When the reader has gone (`mizan … | head`),
/// the program ends quietly instead of panicking on the broken pipe.
macro_rules! say {
    ($($argument:tt)*) => {
        $crate::write_line(format_args!($($argument)*))
    };
}

pub mod bench;
pub mod bench_http;
pub mod cli;
pub mod demo;
mod http_client;
pub mod keys;
pub mod load;
pub mod sanctions;

#[doc(hidden)]
pub fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}
