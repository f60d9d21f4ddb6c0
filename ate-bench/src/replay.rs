//! Opening a chain replays its whole log into the view: time it, and measure what the view
//! costs in memory per record.

use std::fs::File;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::Blob;
use crate::engines::{ate_open, ate_populate};
use crate::util::{Res, rss_bytes, trim_heap};

/// Writes a log of `n` values in transactions of `per_tx`; returns its path and the seconds the
/// writing took. The chain is closed when this returns.
pub async fn build_log(
    dir: &Path,
    name: &str,
    vals: &[Blob],
    n: usize,
    per_tx: usize,
) -> Res<(PathBuf, f64)> {
    let chain = ate_open(dir, name).await?;
    let t = Instant::now();
    let keys = ate_populate(&chain, vals, n, per_tx).await?;
    let secs = t.elapsed().as_secs_f64();
    drop(keys);
    let path = chain
        .path()
        .ok_or("an on-disk chain has a path")?
        .to_path_buf();
    drop(chain);
    Ok((path, secs))
}

/// Seconds to read the whole file with `std::fs::read`.
pub fn raw_read(path: &Path) -> Res<f64> {
    let t = Instant::now();
    let bytes = std::fs::read(path)?;
    let secs = t.elapsed().as_secs_f64();
    black_box(bytes.len());
    Ok(secs)
}

/// Opens the chain `name` under `dir` again and checks it holds `expect` records; returns the
/// seconds from `open()` to the ready handle (log read, checked, replayed into the view). Fails
/// if the log file is still held open (a live handle would make `open` return the cached chain).
pub async fn reopen(dir: &Path, name: &str, path: &Path, expect: usize) -> Res<f64> {
    ensure_closed(path)?;
    let t = Instant::now();
    let chain = ate_open(dir, name).await?;
    let secs = t.elapsed().as_secs_f64();
    check_len(&chain, expect)?;
    drop(chain);
    Ok(secs)
}

fn check_len(chain: &ate::Chain, expect: usize) -> Res<()> {
    if chain.len() != expect {
        return Err(format!("replayed {} records, expected {expect}", chain.len()).into());
    }
    Ok(())
}

/// The child-process side of [`memory_in_child`]: opens the chain, prints the RSS growth.
pub fn measure_open(dir: &Path, name: &str, expect: usize) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Start the blocking pool's thread first: only the open itself is counted.
        tokio::task::spawn_blocking(|| ()).await?;
        trim_heap();
        let rss0 = rss_bytes();
        let chain = ate_open(dir, name).await?;
        trim_heap();
        let rss1 = rss_bytes();
        check_len(&chain, expect)?;
        println!("rss_delta={}", rss1 as i64 - rss0 as i64);
        Ok(())
    })
}

/// How much the process RSS grows when the chain `name` is opened, measured in a fresh process
/// of this program: in this one, memory freed by earlier scenarios stays with the allocator
/// and would be reused without growing RSS.
pub fn memory_in_child(dir: &Path, name: &str, path: &Path, expect: usize) -> Res<i64> {
    ensure_closed(path)?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--measure-open")
        .arg(dir)
        .arg("--measure-name")
        .arg(name)
        .arg("--records")
        .arg(expect.to_string())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "memory probe failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    text.lines()
        .find_map(|l| l.strip_prefix("rss_delta="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("memory probe printed no figure: {text}").into())
}

/// The engine locks an open log; taking the lock proves no chain holds the file.
pub fn ensure_closed(path: &Path) -> Res<()> {
    let f = File::open(path)?;
    f.try_lock().map_err(|_| {
        format!(
            "{} is still open: the chain was not dropped",
            path.display()
        )
    })?;
    f.unlock()?;
    Ok(())
}

/// Drops the file's pages from the page cache (they are clean: every byte was fsynced), so the
/// next read comes from the disk.
#[allow(unsafe_code)]
pub fn evict(path: &Path) -> Res<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path)?;
    // SAFETY: posix_fadvise takes a descriptor that `f` keeps open for the call, and integers.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("posix_fadvise: {}", std::io::Error::from_raw_os_error(rc)).into());
    }
    Ok(())
}
