//! Scenario 13 (P13): compaction of a chain whose every record was written ten times.
//!
//! One log of `events` values of 1 KiB, written as scenario 5's are (1000 values per
//! transaction): every key stored once, then updated nine times, round after round. In the same
//! run: `Chain::compact` on it (timed from the call to its return: decode, plan, write, fsync,
//! rename, and the replay of the new log into the view the chain goes on with) beside a plain
//! copy of the same file with fsync (`std::fs::copy` then `File::sync_all` of the copy, median
//! of several); the log's size before and after; the open (replay) time before and after
//! (median of a few opens); and the view's memory before and after (RSS growth of an open in a
//! fresh process, as scenario 6 measures it).

use std::path::Path;
use std::time::Instant;

use ate::prelude::*;

use crate::data::{self, Blob};
use crate::engines::ate_open;
use crate::replay;
use crate::util::{Res, int, median};
use crate::{Plan, Report};

/// Versions of each key (the first write and nine updates).
const VERSIONS: usize = 10;
/// Bytes of each value.
const VALUE_BYTES: usize = 1024;
/// Values per transaction, as in the other scenarios' logs.
const PER_TX: usize = 1000;

/// Writes `keys` records and updates each `VERSIONS - 1` times, `PER_TX` values per
/// transaction; returns the seconds the writing took.
async fn build(chain: &Chain, vals: &[Blob], keys: usize) -> Res<f64> {
    let t = Instant::now();
    let written = crate::engines::ate_populate(chain, vals, keys, PER_TX).await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    let mut i = keys;
    for _round in 1..VERSIONS {
        for chunk in written.chunks(PER_TX) {
            for k in chunk {
                let mut dao = dio.load::<Blob>(k).await?;
                *dao.as_mut() = vals[i % vals.len()].clone();
                i += 1;
            }
            dio.commit().await?;
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds to copy `path` to a new file beside it and fsync the copy (which is then removed).
fn copy_fsync(path: &Path) -> Res<f64> {
    let to = path.with_extension("copy");
    let t = Instant::now();
    std::fs::copy(path, &to)?;
    std::fs::File::open(&to)?.sync_all()?;
    let secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&to)?;
    Ok(secs)
}

/// Median seconds of `rounds` opens of the chain, and the RSS growth of one open in a child
/// process.
fn opens(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    path: &Path,
    keys: usize,
    rounds: usize,
    when: &str,
) -> Res<(f64, i64)> {
    let mut secs = Vec::new();
    for _ in 0..rounds {
        secs.push(rt.block_on(replay::reopen(dir, "compact", path, keys))?);
    }
    let rss = replay::memory_in_child(dir, "compact", path, keys)?;
    let open = median(&secs);
    println!(
        "  open {when}: {} (median {open:.3} s) · RSS +{:.1} MB",
        secs.iter()
            .map(|s| format!("{s:.3} s"))
            .collect::<Vec<_>>()
            .join(", "),
        rss as f64 / 1e6
    );
    Ok((open, rss))
}

/// Scenario 13.
pub fn scenario_compact(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Res<()> {
    let events = plan.compact_events;
    let keys = (events / VERSIONS).max(1);
    let rounds = plan.rounds.min(3);
    let dash = || "—".to_string();
    println!(
        "\n[13] compaction: {} keys × {VERSIONS} versions of {VALUE_BYTES} B ({} events, \
         written {PER_TX} per tx)",
        int(keys as f64),
        int((keys * VERSIONS) as f64)
    );
    let dir = tempfile::tempdir_in(base)?;
    let vals = data::values(8192, VALUE_BYTES, 130);
    let (path, secs) = rt.block_on(async {
        let chain = ate_open(dir.path(), "compact").await?;
        let secs = build(&chain, &vals, keys).await?;
        let path = chain
            .path()
            .ok_or("an on-disk chain has a path")?
            .to_path_buf();
        Res::Ok((path, secs))
    })?;
    drop(vals);
    let file_before = std::fs::metadata(&path)?.len();
    println!(
        "  log written: {:.1} MB in {secs:.1} s ({} values/s)",
        file_before as f64 / 1e6,
        int((keys * VERSIONS) as f64 / secs)
    );

    // The copy baseline, around the opens (a neighbour's burst then moves one sample).
    let mut copies = Vec::new();
    copies.push(copy_fsync(&path)?);
    let (open_before, rss_before) = opens(rt, dir.path(), &path, keys, rounds, "before")?;
    for _ in 1..rounds.max(2) {
        copies.push(copy_fsync(&path)?);
    }
    let copy_s = median(&copies);
    let copy_mbs = file_before as f64 / copy_s / 1e6;
    println!(
        "  copy + fsync of the file ({:.1} MB): {} (median {copy_s:.3} s, {copy_mbs:.0} MB/s)",
        file_before as f64 / 1e6,
        copies
            .iter()
            .map(|s| format!("{s:.3} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let (report, compact_s) = rt.block_on(async {
        let chain = ate_open(dir.path(), "compact").await?;
        let t = Instant::now();
        let report = chain.compact().await?;
        let secs = t.elapsed().as_secs_f64();
        if chain.len() != keys {
            return Err(
                format!("{} records after compacting, expected {keys}", chain.len()).into(),
            );
        }
        Res::Ok((report, secs))
    })?;
    let compact_mbs = report.bytes_before as f64 / compact_s / 1e6;
    println!(
        "  compact: {compact_s:.3} s ({compact_mbs:.0} MB/s of the log before) · {:.1} → {:.1} MB \
         · {} → {} events · {} → {} transactions",
        report.bytes_before as f64 / 1e6,
        report.bytes_after as f64 / 1e6,
        int(report.events_before as f64),
        int(report.events_after as f64),
        int(report.transactions_before as f64),
        int(report.transactions_after as f64),
    );
    let (open_after, rss_after) = opens(rt, dir.path(), &path, keys, rounds, "after")?;
    drop(dir);

    let copy_ratio = compact_mbs / copy_mbs;
    let open_ratio = open_before / open_after;
    let size_ratio = report.bytes_before as f64 / report.bytes_after as f64;
    let mem_ratio = rss_before as f64 / rss_after as f64;
    let scale = if keys * VERSIONS == 1_000_000 {
        "1M".to_string()
    } else {
        int((keys * VERSIONS) as f64)
    };
    let what = format!(
        "{scale} events = {} keys × {VERSIONS} versions",
        int(keys as f64)
    );
    rep.row(
        &format!("13. compaction MB/s (of the log before), {what} × 1 KiB"),
        format!("{compact_mbs:.0} MB/s ({compact_s:.2} s)"),
        dash(),
        dash(),
        format!("{copy_ratio:.2}x of a plain copy + fsync ({copy_mbs:.0} MB/s)"),
    );
    rep.row(
        "13. log size before / after compaction",
        format!(
            "{:.1} / {:.1} MB",
            report.bytes_before as f64 / 1e6,
            report.bytes_after as f64 / 1e6
        ),
        dash(),
        dash(),
        format!(
            "÷ {size_ratio:.1}; {} of {} events kept",
            int(report.events_after as f64),
            int(report.events_before as f64)
        ),
    );
    rep.row(
        "13. open/replay before / after compaction, warm page cache",
        format!("{open_before:.3} / {open_after:.3} s"),
        dash(),
        dash(),
        format!("{open_ratio:.1}x faster after"),
    );
    rep.row(
        "13. view memory before / after compaction (RSS growth of open)",
        format!(
            "{:.1} / {:.1} MB",
            rss_before as f64 / 1e6,
            rss_after as f64 / 1e6
        ),
        dash(),
        dash(),
        format!("÷ {mem_ratio:.1}"),
    );
    rep.metric("s13.events", (keys * VERSIONS) as f64);
    rep.metric("s13.keys", keys as f64);
    rep.metric("s13.compact_s", compact_s);
    rep.metric("s13.compact_mb_per_s", compact_mbs);
    rep.metric("s13.copy_fsync_mb_per_s", copy_mbs);
    rep.metric("s13.compact_over_copy", copy_ratio);
    rep.metric("s13.bytes_before", report.bytes_before as f64);
    rep.metric("s13.bytes_after", report.bytes_after as f64);
    rep.metric("s13.events_after", report.events_after as f64);
    rep.metric("s13.open_before_s", open_before);
    rep.metric("s13.open_after_s", open_after);
    rep.metric("s13.open_before_over_after", open_ratio);
    rep.metric("s13.rss_before_bytes", rss_before as f64);
    rep.metric("s13.rss_after_bytes", rss_after as f64);
    rep.target(
        "P13",
        copy_ratio >= 0.5 && open_ratio >= 5.0,
        format!(
            "compaction ≥ 0.5x a plain copy + fsync of the same bytes: {copy_ratio:.2}x \
             ({compact_mbs:.0} vs {copy_mbs:.0} MB/s); open after ≥ 5x faster at \
             {VERSIONS} versions per key: {open_ratio:.1}x ({open_before:.3} → {open_after:.3} s)"
        ),
    );
    rep.note(format!(
        "13: compaction is timed from the call of Chain::compact to its return: decoding the log, \
         choosing what is kept, writing the new log, fsync, rename and folder fsync, and \
         replaying the new log into the view the chain goes on with; the copy is std::fs::copy \
         of the log file then File::sync_all of the copy, from a warm page cache (the chain \
         compacts from the log bytes it holds in memory). View memory: RSS growth of an open in \
         a fresh process (log bytes included); {} keys live before and after. A record's first \
         version is kept beside its last (replay checks the last against the rules the first \
         carries), so at {VERSIONS} versions per key 2 events in {VERSIONS} stay: the log and the \
         view shrink about {}x.",
        int(keys as f64),
        VERSIONS / 2
    ));
    Ok(())
}
