//! Progress reporting for pulls: a small trait the puller calls, a silent implementation for
//! tests and scripts, and terminal bars (`indicatif`) for the CLI.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Callbacks of a pull, one transfer at a time.
pub trait Progress {
    /// The next transfer is the blob `digest` (called before `start`, also when the blob is
    /// already in the store).
    fn blob(&mut self, _digest: &crate::Digest, _size: Option<u64>) {}
    /// A transfer of `total` bytes (if known) starts, `done` of them already there.
    fn start(&mut self, _label: &str, _total: Option<u64>, _done: u64) {}
    /// `n` more bytes arrived.
    fn inc(&mut self, _n: u64) {}
    /// The position went back (a server ignored a Range request, a restart).
    fn reset(&mut self, _done: u64) {}
    /// The transfer ended.
    fn finish(&mut self, _msg: &str) {}
    /// A line of information (source chosen, retry, resume).
    fn note(&mut self, _msg: &str) {}
}

/// The bar layout: label, bar, bytes, rate, time left.
const TEMPLATE: &str =
    "{msg:32!} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>11} eta {eta}";

/// No output.
pub struct Silent;
impl Progress for Silent {}

/// `indicatif` bars on stderr, one per transfer.
#[derive(Default)]
pub struct Bars {
    bar: Option<ProgressBar>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars::default()
    }
}

impl Progress for Bars {
    fn start(&mut self, label: &str, total: Option<u64>, done: u64) {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        let style =
            ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        bar.set_position(done);
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn inc(&mut self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn reset(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&mut self, msg: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_with_message(msg.to_string());
        }
    }

    fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bar_template_is_valid() {
        assert!(indicatif::ProgressStyle::with_template(super::TEMPLATE).is_ok());
    }
}
