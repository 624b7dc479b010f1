//! A real memory limit for a daemon under test: a cgroup v1 memory group
//! (these machines have the v1 memory controller; tests run as root).

use std::fs;
use std::path::PathBuf;

pub struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    /// A new group limited to `limit_bytes`, or `None` (with the reason
    /// printed) where the v1 memory controller is missing.
    pub fn new(name: &str, limit_bytes: u64) -> Option<MemoryCgroup> {
        let root = PathBuf::from("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() {
            eprintln!("no cgroup v1 memory controller at {}", root.display());
            return None;
        }
        let dir = root.join(format!("{name}-{}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string()).unwrap();
        // No swap on these machines; where there is, it must not soften the limit.
        let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), limit_bytes.to_string());
        Some(MemoryCgroup { dir })
    }

    pub fn add(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    /// Times the group hit its limit (the kernel reclaimed or the OOM killer ran).
    pub fn failcnt(&self) -> u64 {
        self.read("memory.failcnt")
    }

    pub fn max_usage_bytes(&self) -> u64 {
        self.read("memory.max_usage_in_bytes")
    }

    /// Whether the OOM killer killed anything in the group.
    pub fn oom_kills(&self) -> u64 {
        let control = fs::read_to_string(self.dir.join("memory.oom_control")).unwrap_or_default();
        control.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    fn read(&self, file: &str) -> u64 {
        fs::read_to_string(self.dir.join(file)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Processes left in it go back to the root group so it can be removed.
        if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = fs::write("/sys/fs/cgroup/memory/cgroup.procs", pid);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A process's resident memory that it holds itself (anonymous: heap, stacks,
/// guests' linear memories) and its peak resident memory, bytes
/// (`/proc/<pid>/status`). File-backed pages (the debug binary's own code,
/// hundreds of MiB) are left out of the first: they are the page cache's,
/// shared and reclaimable, and they grow with whatever code paths ran.
pub fn rss_of(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("RssAnon:"), field("VmHWM:"))
}

/// The process's largest anonymous mappings, for a failure message: where the
/// resident memory is (heap arenas, thread stacks, guest memories).
pub fn anon_breakdown(pid: u32) -> String {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut maps: Vec<(u64, String)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            current = line.to_string();
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            let kb: u64 = kb.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0);
            if kb > 0 {
                maps.push((kb, current.clone()));
            }
        }
    }
    maps.sort_by(|a, b| b.0.cmp(&a.0));
    let total: u64 = maps.iter().map(|m| m.0).sum();
    let mut text = format!("{} anonymous mappings, {} MiB:\n", maps.len(), total / 1024);
    for (kb, map) in maps.iter().take(15) {
        text.push_str(&format!("  {:>8} kB  {map}\n", kb));
    }
    text
}
