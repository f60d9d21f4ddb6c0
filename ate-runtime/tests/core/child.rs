//! Child processes: this test binary started again, running only [`entry`], which does what the
//! `ATE_CORE_CHILD` variable says. The parent reads the child's stdout line by line.
//!
//! `entry` is an ordinary test: in a normal run the variable is not set and it returns at once;
//! only a child started by [`spawn`] (which sets the variable) does any work in it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the child does: `commit` (the crash test's loop), `compact` (the same, compacting), `hold`
/// (keep a chain open) or `hostile`.
pub const ROLE: &str = "ATE_CORE_CHILD";

/// Starts this binary as a child running [`entry`] with `role` and the variables `envs`, and
/// captures its output.
///
/// No log is opened in this process until the child has printed its first line (see
/// [`FORK`](crate::common::FORK)): by then it has run its exec, and with it closed its copies of
/// our descriptors (the kernel lets `spawn` return slightly before it does so).
pub fn spawn(role: &str, envs: &[(&str, String)]) -> (Child, Output) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let _no_open = crate::common::FORK.write();
    let mut child = Command::new(exe)
        .args([
            "child::entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE, role)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child process");
    let mut out = Output::capture(&mut child);
    if let Some(first) = out.next_line() {
        out.pending.push_back(first);
    }
    (child, out)
}

/// The child's output, read on background threads so the child never blocks on a full pipe.
pub struct Output {
    pending: VecDeque<String>,
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Output {
    fn capture(child: &mut Child) -> Self {
        let out: ChildStdout = child.stdout.take().expect("piped stdout");
        let err: ChildStderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            s
        });
        Output {
            pending: VecDeque::new(),
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The next line, or `None` once the child closed its stdout. The long timeout only guards
    /// against a hung child; nothing is measured.
    pub fn next_line(&mut self) -> Option<String> {
        if let Some(line) = self.pending.pop_front() {
            return Some(line);
        }
        self.lines.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// Every line not read yet, and the child's stderr, once the child has exited.
    pub fn finish(mut self) -> (Vec<String>, String) {
        if let Some(h) = self.stdout.take() {
            h.join().expect("stdout reader");
        }
        let mut rest: Vec<String> = self.pending.drain(..).collect();
        rest.extend(self.lines.try_iter());
        let err = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        (rest, err)
    }
}

/// The entry point of child processes; returns at once unless started by [`spawn`].
#[test]
fn entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match role.as_str() {
            "commit" => crate::crash::child_commit_loop().await,
            "compact" => crate::compact_crash::child_compact_loop().await,
            "hold" => crate::api::child_hold().await,
            "hostile" => crate::hostile::child_hostile_inputs().await,
            other => panic!("unknown child role {other:?}"),
        }
    });
}
