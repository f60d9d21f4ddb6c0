//! Child processes: this test binary started again, running only [`entry`], which does what the
//! `ATE_REMOTE_CHILD` variable says. The parent reads the child's stdout line by line.
//!
//! `entry` is an ordinary test: in a normal run the variable is not set and it returns at once;
//! only a child started by [`spawn`] (which sets the variable) does any work in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the child does: `sync` (open a remote chain into a replica file, then wait) or
/// `consume` (take items from a queue until it is empty).
const ROLE: &str = "ATE_REMOTE_CHILD";

/// Starts this binary as a child running [`entry`] with `role` and the variables `envs`, and
/// captures its output.
pub fn spawn(role: &str, envs: &[(&str, String)]) -> (Child, Output) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "remote::child::entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE, role)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child process");
    let out = Output::capture(&mut child);
    (child, out)
}

/// The child's output, read on background threads so the child never blocks on a full pipe.
pub struct Output {
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Output {
    fn capture(child: &mut Child) -> Self {
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
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
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The next line if one is there within `wait`.
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Every line not read yet, and the child's stderr, once the child has exited.
    pub fn finish(mut self) -> (Vec<String>, String) {
        if let Some(h) = self.stdout.take() {
            h.join().expect("stdout reader");
        }
        let rest = self.lines.try_iter().collect();
        let err = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        (rest, err)
    }
}

/// Writes a line for the parent.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write to the parent");
    out.flush().expect("flush to the parent");
}

/// The entry point of child processes; returns at once unless started by [`spawn`].
#[test]
fn entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match role.as_str() {
            "sync" => super::killed_sync::child_sync().await,
            "consume" => super::killed_consumer::child_consume().await,
            other => panic!("unknown child role {other:?}"),
        }
    });
}
