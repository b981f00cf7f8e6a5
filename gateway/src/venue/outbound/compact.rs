//! Compacting the outbound log off the gateway thread. A helper thread
//! reads the log up to where it ended when compaction started and writes,
//! to `outbound.log.tmp`, the header and every record still inside its
//! account's replay window then. The gateway keeps appending to the live
//! file meanwhile; when the helper is done, it copies what was appended
//! since (a few milliseconds' worth) to the new file and renames it over
//! the old one. A crash at any point leaves the old file whole.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::{HEADER, RECORD_HEAD};

/// A compaction under way.
pub(super) struct Compaction {
    job: JoinHandle<std::io::Result<File>>,
    /// Where the live file ended when it started: the helper copied up to here.
    upto: u64,
    tmp: PathBuf,
}

impl Compaction {
    /// Starts compacting `path` up to byte `upto`, keeping each account's
    /// records from sequence `keep_from[account]` on; `header` opens the new
    /// file, written out (durable) before it replaces the old one.
    pub fn start(
        path: &Path,
        upto: u64,
        header: Vec<u8>,
        keep_from: HashMap<u64, u64>,
    ) -> Compaction {
        let tmp = path.with_extension("log.tmp");
        let (from, to) = (path.to_path_buf(), tmp.clone());
        let job = std::thread::Builder::new()
            .name("outbound-compaction".into())
            .spawn(move || copy_windows(&from, &to, upto, &header, &keep_from))
            .expect("spawning the compaction thread");
        Compaction { job, upto, tmp }
    }

    /// Whether the helper is done.
    pub fn is_finished(&self) -> bool {
        self.job.is_finished()
    }

    /// Completes the compaction: appends the live file's bytes from where
    /// the helper stopped up to `live_end` to the new file, and renames it
    /// over `path`. Returns the new file and its length.
    pub fn finish(
        self,
        live: &File,
        live_end: u64,
        path: &Path,
        sync: bool,
    ) -> std::io::Result<(File, u64)> {
        let mut file = self
            .job
            .join()
            .map_err(|_| std::io::Error::other("the compaction thread panicked"))??;
        let mut tail = vec![0u8; (live_end - self.upto) as usize];
        live.read_exact_at(&mut tail, self.upto)?;
        file.write_all(&tail)?;
        if sync {
            file.sync_data()?;
        }
        std::fs::rename(&self.tmp, path)?;
        let length = file.metadata()?.len();
        Ok((file, length))
    }
}

fn copy_windows(
    from: &Path,
    to: &Path,
    upto: u64,
    header: &[u8],
    keep_from: &HashMap<u64, u64>,
) -> std::io::Result<File> {
    let mut input = BufReader::with_capacity(1 << 20, File::open(from)?.take(upto));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(to)?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    out.write_all(header)?;
    let mut skip = vec![0u8; HEADER];
    input.read_exact(&mut skip)?;
    let mut head = [0u8; RECORD_HEAD];
    let mut framed = Vec::with_capacity(4096);
    loop {
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4")) as usize;
        let account = u64::from_le_bytes(head[4..].try_into().expect("8"));
        framed.resize(len, 0);
        input.read_exact(&mut framed)?;
        let seq = u64::from_le_bytes(
            framed
                .get(tonnex_protocol::frame::HEADER_BYTES..tonnex_protocol::frame::HEADER_BYTES + 8)
                .ok_or_else(|| std::io::Error::other("a record too short for its sequence"))?
                .try_into()
                .expect("8"),
        );
        if keep_from.get(&account).is_some_and(|&first| seq >= first) {
            out.write_all(&head)?;
            out.write_all(&framed)?;
        }
    }
    out.flush()?;
    drop(out);
    // Always, not only under `sync`: ext4 writes out a file's delayed
    // blocks when it is renamed over another, and that rename is on the
    // gateway thread. Written out here, they cost the helper, not the
    // event loop (a compaction's rename and close were about 5 % of the
    // gateway thread's time at full load).
    file.sync_all()?;
    Ok(file)
}
