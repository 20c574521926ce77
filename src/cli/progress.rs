//! Progress of long CLI work on stderr (stdout stays the command's output): a bar with rate
//! and time left on a terminal (indicatif), plain lines every few seconds when stderr is not a
//! terminal (logs, CI), and always one line at the end.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One piece of long work: `what` counted in `unit`s, out of `total` when known.
pub struct Progress {
    what: String,
    unit: &'static str,
    total: Option<u64>,
    started: Instant,
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

struct Plain {
    done: u64,
    last_line: Instant,
}

impl Progress {
    /// Starts showing progress.
    pub fn new(what: &str, unit: &'static str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let template = if total.is_some() {
                "{msg} [{bar:30}] {human_pos}/{human_len} {unit} ({per_sec}, {eta} left)"
            } else {
                "{msg} {spinner} {human_pos} {unit} ({per_sec})"
            };
            let style = ProgressStyle::with_template(&template.replace("{unit}", unit))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(what.to_string());
            bar
        });
        Progress {
            what: what.to_string(),
            unit,
            total,
            started: Instant::now(),
            bar,
            plain: Mutex::new(Plain {
                done: 0,
                last_line: Instant::now(),
            }),
        }
    }

    /// Sets how much is done.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut plain = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        plain.done = done;
        if plain.last_line.elapsed() >= PLAIN_EVERY {
            plain.last_line = Instant::now();
            self.line(done, false);
        }
    }

    /// Adds to what is done (from several tasks at once).
    pub fn add(&self, n: u64) {
        let done = {
            let mut plain = self.plain.lock().unwrap_or_else(|e| e.into_inner());
            plain.done += n;
            plain.done
        };
        self.set(done);
    }

    /// What is done so far.
    pub fn done(&self) -> u64 {
        match &self.bar {
            Some(bar) => bar.position(),
            None => self.plain.lock().unwrap_or_else(|e| e.into_inner()).done,
        }
    }

    /// Ends the work with a last line.
    pub fn finish(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.finish_and_clear();
        }
        self.line(done, true);
    }

    /// `what: done/total unit (pct), rate/s, N s left` (or `… done in N s`).
    fn line(&self, done: u64, finished: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let mut text = format!("{}: {done}", self.what);
        if let Some(total) = self.total {
            let pct = if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            text.push_str(&format!("/{total} {} ({pct:.0}%)", self.unit));
        } else {
            text.push_str(&format!(" {}", self.unit));
        }
        text.push_str(&format!(", {rate:.0}/s"));
        if finished {
            text.push_str(&format!(", done in {secs:.1} s"));
        } else if let Some(total) = self.total.filter(|_| rate > 0.0) {
            let left = total.saturating_sub(done) as f64 / rate;
            text.push_str(&format!(", {left:.0} s left"));
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}
