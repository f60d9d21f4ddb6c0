//! The costs every engine builds on, measured in the same run for context.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use sha3::{Digest, Sha3_256};

use crate::data::{self, Blob};

/// Operations per second of a run timed per operation.
pub fn rate(lat: &[Duration]) -> f64 {
    lat.len() as f64 / lat.iter().map(Duration::as_secs_f64).sum::<f64>()
}
use crate::util::Res;

/// Microseconds per SHA3-256 of 1 KiB.
pub fn sha3_1k_us(iters: usize) -> f64 {
    let buf = data::values(1, 1024, 3).remove(0).data;
    let t = Instant::now();
    for _ in 0..iters {
        black_box(Sha3_256::digest(black_box(&buf[..])));
    }
    t.elapsed().as_secs_f64() * 1e6 / iters as f64
}

/// Microseconds per SHA3-256 of 1 KiB when 64 messages are hashed together
/// (`Hash::of_many`, the engine's batched path).
pub fn sha3_1k_batched_us(iters: usize) -> f64 {
    const BATCH: usize = 64;
    let bufs = data::values(BATCH, 1024, 5);
    let msgs: Vec<&[u8]> = bufs.iter().map(|b| &b.data[..]).collect();
    let rounds = iters.div_ceil(BATCH).max(1);
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(ate::crypto::Hash::of_many(black_box(&msgs)));
    }
    t.elapsed().as_secs_f64() * 1e6 / (rounds * BATCH) as f64
}

/// Microseconds per MessagePack encode + decode of a [`Blob`] of `size` bytes.
pub fn rmp_roundtrip_us(size: usize, iters: usize) -> f64 {
    let v: Blob = data::values(1, size, 4).remove(0);
    let t = Instant::now();
    for _ in 0..iters {
        let bytes = data::encode(black_box(&v));
        black_box(data::decode(&bytes));
    }
    t.elapsed().as_secs_f64() * 1e6 / iters as f64
}

/// Latencies of `n` appends of 4 KiB to a new file, each followed by `fdatasync`.
pub fn append_fsync(dir: &Path, n: usize) -> Res<Vec<Duration>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("append.bin"))?;
    let block = data::values(1, 4096, 5).remove(0).data;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&block, (i * 4096) as u64)?;
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// Latencies of `n` overwrites of 4 KiB inside a file already written with zeros and synced,
/// each followed by `fdatasync` (no size or extent change to flush: the floor of a commit).
pub fn overwrite_fsync(dir: &Path, n: usize) -> Res<Vec<Duration>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("overwrite.bin"))?;
    f.write_all_at(&vec![0u8; n * 4096], 0)?;
    f.sync_all()?;
    let block = data::values(1, 4096, 6).remove(0).data;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&block, (i * 4096) as u64)?;
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// MB/s of appending `mib` MiB to a new file in 1 MiB writes, each followed by `fdatasync`
/// (the bound of a replica that makes each batch it receives durable).
pub fn sequential_write_mb_s(dir: &Path, mib: usize) -> Res<f64> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join("sequential.bin"))?;
    let block = data::values(1, 1 << 20, 8).remove(0).data;
    let t = Instant::now();
    for i in 0..mib {
        f.write_all_at(&block, (i << 20) as u64)?;
        f.sync_data()?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(dir.join("sequential.bin"))?;
    Ok((mib << 20) as f64 / 1e6 / secs)
}
