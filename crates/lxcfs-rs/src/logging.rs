//! The daemon's log, written so that no state of its reader can stop the serving.
//!
//! stderr may be a pipe to a reader that goes away (`| tee`, `| logger`), a journal
//! stream that restarts, a file on a full disk, or a reader that stops reading. Before,
//! a failed write made tracing-subscriber report it with `eprintln!`, which panics on
//! that same broken stderr and took the supervisor and the worker down, and with them
//! every container's files. So:
//!
//! - When stderr is a pipe, a socket (journald's stream) or a terminal, whose reader can
//!   stall, handlers never write to it themselves: a formatted line goes into a bounded
//!   queue ([`QUEUE`] lines) and one thread writes it out. A full queue (the reader is
//!   stalled) drops the line; a FUSE thread never blocks on the log. A regular file or
//!   a device like /dev/null is written at once: it cannot stall, and a line is in the
//!   file when the call returns.
//! - A line the writer cannot write (EPIPE, ENOSPC, EIO) is counted and dropped; the
//!   next line that can be written is preceded by how many were lost and why.
//! - Nothing here panics: no `eprintln!`, no `expect`. If the writer thread cannot be
//!   started, lines are written synchronously with the same rules.
//!
//! `tracing-appender`'s non-blocking writer does the queueing, but reports its own
//! failures with `println!`/`eprintln!` (the very panic this module exists to remove),
//! so the few lines it would save are written here.
//!
//! SIGPIPE needs nothing: Rust's runtime ignores it before `main`, so a write to a pipe
//! without a reader fails with EPIPE instead of killing the process.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread; past this a stalled reader costs us lines, not
/// serving time.
const QUEUE: usize = 4096;

/// Lines handed to the queue, and lines the writer has finished with (written or not).
static QUEUED: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
/// Lines lost since the last report, by cause.
static UNWRITABLE: AtomicU64 = AtomicU64::new(0);
static OVERFLOWED: AtomicU64 = AtomicU64::new(0);

static SENDER: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();

/// Install the global subscriber: stderr, one line per event, as text (colours only on
/// a terminal and without `NO_COLOR`) or as JSON objects; each line written at once
/// until [`start_queue`].
pub fn init(debug: bool, json: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Queue)
        .with_target(false)
        .log_internal_errors(false);
    if json {
        // Fields flattened: `{"timestamp":…,"level":"INFO","message":…}`, as shippers
        // expect the message at the top level.
        builder.json().flatten_event(true).init();
    } else {
        builder
            .with_ansi(colours(
                io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init();
    }
}

/// Colours only on a terminal, and not when `NO_COLOR` is set to anything but the
/// empty string (no-color.org).
fn colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Wait (at most `limit`) until every queued line was handed to stderr: before an exit.
pub fn flush(limit: Duration) {
    let deadline = Instant::now() + limit;
    let target = QUEUED.load(Ordering::Acquire);
    while DONE.load(Ordering::Acquire) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One line written at once, under the same rules (for the last words of a process
/// whose logging may not be set up).
pub fn write_now(line: &str) {
    let mut buf = line.as_bytes().to_vec();
    if !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    emit(&buf);
}

/// Lines lost so far and not yet reported: (could not be written, queue was full).
fn lost() -> (u64, u64) {
    (
        UNWRITABLE.load(Ordering::Relaxed),
        OVERFLOWED.load(Ordering::Relaxed),
    )
}

/// Whether stderr is something whose reader can stop reading: a pipe, a socket, a
/// terminal (or something we cannot tell).
fn may_stall() -> bool {
    use rustix::fs::FileType;
    let err = io::stderr();
    if err.is_terminal() {
        return true;
    }
    match rustix::fs::fstat(&err) {
        Ok(st) => !matches!(
            FileType::from_raw_mode(st.st_mode),
            FileType::RegularFile | FileType::CharacterDevice
        ),
        Err(_) => true,
    }
}

/// From now on, queue lines for a writer thread when stderr can stall; the thread runs
/// `confine` first (a worker's writer drops its capabilities and installs the system
/// call filter on itself, as the worker's other threads get them). Not for `--remount`:
/// `setns` into a mount namespace refuses a multi-threaded caller.
pub fn start_queue(confine: fn()) {
    if may_stall() {
        start_writer(confine);
    }
}

fn start_writer(confine: fn()) {
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
    if std::thread::Builder::new()
        .name("log".into())
        .spawn(move || {
            confine();
            drain(rx)
        })
        .is_ok()
    {
        let _ = SENDER.set(tx);
    }
}

fn drain(rx: Receiver<Vec<u8>>) {
    for line in rx {
        emit(&line);
        DONE.fetch_add(1, Ordering::Release);
    }
}

/// Write one line to stderr, first saying what was lost if anything was; count a
/// failure instead of reporting it anywhere.
fn emit(line: &[u8]) {
    let mut err = io::stderr().lock();
    let (unwritable, overflowed) = lost();
    if unwritable + overflowed > 0 {
        let note = format!(
            "lxcfs-rs: {} log lines lost ({unwritable} could not be written to stderr, \
             {overflowed} dropped while the log reader lagged)\n",
            unwritable + overflowed
        );
        if err.write_all(note.as_bytes()).is_ok() {
            UNWRITABLE.fetch_sub(unwritable, Ordering::Relaxed);
            OVERFLOWED.fetch_sub(overflowed, Ordering::Relaxed);
        }
    }
    if err.write_all(line).is_err() {
        UNWRITABLE.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `MakeWriter` the subscriber formats into: each event is one `write` of a whole
/// line, queued or, without a writer thread, written at once.
struct Queue;

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Queue;
    fn make_writer(&'a self) -> Queue {
        Queue
    }
}

impl Write for Queue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match SENDER.get() {
            Some(tx) => {
                QUEUED.fetch_add(1, Ordering::Release);
                match tx.try_send(buf.to_vec()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        OVERFLOWED.fetch_add(1, Ordering::Relaxed);
                        DONE.fetch_add(1, Ordering::Release);
                    }
                }
            }
            None => emit(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("".into())));
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
    }
}
