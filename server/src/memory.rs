//! The console's memory: how the allocator is tuned at start, and what it and the kernel say about it (for
//! `/metrics`).
//!
//! Measured as `bench/topology`'s third part does (a console watching 20 clusters) before the tuning: 103 MB
//! resident, of which 71 MB anonymous (heap and stacks); with it 57 MB, of which 25 MB anonymous. The
//! difference was memory freed long before and never given back: glibc's malloc raises its mmap threshold
//! to the largest block freed so far (up to 32 MiB on 64-bit), so after the start-up compression of the
//! browser files (brotli 11 works in blocks of megabytes) every large buffer came from the heap, where a
//! freed block stays part of the process as long as anything above it lives. With the threshold fixed,
//! blocks of 128 KiB and more are their own mappings, returned when freed.
//!
//! The only unsafe code of the console: glibc's `mallopt`, `malloc_trim` and `mallinfo2` have no safe
//! wrapper. Each call only sets or reads the allocator's own parameters and counters.
#![allow(unsafe_code)]

/// Called first thing in `main`, before the console allocates anything large.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc's parameters (taking its lock); no memory is touched.
    unsafe {
        // Fixing either threshold turns glibc's dynamic adjustment off (mallopt(3)); both are set to glibc's
        // own defaults: blocks of 128 KiB and more are mapped apart, and a heap's free top beyond 128 KiB
        // goes back to the system.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Hands the allocator's free pages back to the system (the ones in the middle of its heaps too, which the
/// trim threshold never reaches): after the start-up compression, which allocates much and then frees it,
/// and from the trimmer below after anything else that did (a setup job, a burst of pages).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system; allocated memory is untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every `every`, hands free memory back when the console's heap grew since the last time: what a setup job,
/// a burst of pages or a cluster's relist left behind is returned once the console is quiet again, so its
/// memory is flat when idle. A quiet round costs one read of `/proc/self/status`.
pub fn spawn_trimmer(every: std::time::Duration) {
    if heap().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut after_last = 0;
        loop {
            tokio::time::sleep(every).await;
            let Some((anon, _)) = resident() else { return };
            if anon > after_last + (1 << 20) {
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
                after_last = resident().map_or(anon, |(a, _)| a);
            }
        }
    });
}

/// What the allocator holds, in bytes (glibc's `mallinfo2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heap {
    /// Allocated and in use.
    pub in_use: u64,
    /// Held by the allocator but free (reused for the next allocations, or returned by a trim).
    pub free: u64,
    /// Of `in_use`, the blocks mapped apart (large ones).
    pub mapped: u64,
}

pub fn heap() -> Option<Heap> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 reads malloc's counters under its lock and returns them by value.
        let m = unsafe { libc::mallinfo2() };
        Some(Heap {
            in_use: (m.uordblks + m.hblkhd) as u64,
            free: m.fordblks as u64,
            mapped: m.hblkhd as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// The process's resident memory, in bytes: anonymous (heap, stacks) and file-backed (the program's code,
/// shared with the page cache) apart, from `/proc/self/status`.
pub fn resident() -> Option<(u64, u64)> {
    parse_resident(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_resident(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
        })
    };
    Some((field("RssAnon")? * 1024, field("RssFile")? * 1024))
}

/// The Prometheus lines for the above.
pub fn write_metrics(out: &mut String) {
    use std::fmt::Write;
    if let Some((anon, file)) = resident() {
        let _ = writeln!(
            out,
            "# HELP meshdeck_resident_memory_bytes The console's resident memory: anonymous (heap, stacks) and \
             file-backed (its code) apart.\n\
             # TYPE meshdeck_resident_memory_bytes gauge\n\
             meshdeck_resident_memory_bytes{{kind=\"anonymous\"}} {anon}\n\
             meshdeck_resident_memory_bytes{{kind=\"file\"}} {file}"
        );
    }
    if let Some(h) = heap() {
        let _ = writeln!(
            out,
            "# HELP meshdeck_heap_bytes What the allocator holds: in use (of which mapped apart) and free.\n\
             # TYPE meshdeck_heap_bytes gauge\n\
             meshdeck_heap_bytes{{state=\"in_use\"}} {}\n\
             meshdeck_heap_bytes{{state=\"mapped\"}} {}\n\
             meshdeck_heap_bytes{{state=\"free\"}} {}",
            h.in_use, h.mapped, h.free
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_status_file() {
        let status = "Name:\tmeshdeck\nVmRSS:\t  57140 kB\nRssAnon:\t   25236 kB\nRssFile:\t   31904 kB\n\
                      RssShmem:\t       0 kB\n";
        assert_eq!(parse_resident(status), Some((25236 * 1024, 31904 * 1024)));
        assert_eq!(parse_resident("Name:\tx\n"), None);
        // This process's own, on Linux.
        let (anon, file) = resident().expect("/proc/self/status");
        assert!(anon > 0 && file > 0, "{anon} {file}");
    }

    /// Set in the process the test below starts to run its own body.
    const ALONE: &str = "MESHDECK_MEMORY_TEST_ALONE";

    #[test]
    fn large_blocks_are_mapped_apart_even_after_a_larger_one_was_freed() {
        // The allocator is the process's, and this binary's other tests allocate and free large blocks
        // meanwhile (brotli's, in assets): one freed in the heap can serve the block below. So the test runs
        // in a process of its own — this test binary again, with this test only.
        if std::env::var_os(ALONE).is_none() {
            let name =
                "memory::tests::large_blocks_are_mapped_apart_even_after_a_larger_one_was_freed";
            let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
                .args([name, "--exact", "--test-threads=1"])
                .env(ALONE, "1")
                .output()
                .expect("run the test binary");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        }
        tune_allocator();
        // Left to itself glibc would now raise its mmap threshold to 16 MiB…
        drop(std::hint::black_box(vec![1u8; 16 << 20]));
        // …and take the next 1 MiB from the heap, sized to the byte. Mapped apart, a block is whole pages.
        let n = (1 << 20) + 100;
        let block: Vec<u8> = Vec::with_capacity(n);
        // SAFETY: the pointer is a live allocation of the system allocator (malloc).
        let usable = unsafe { libc::malloc_usable_size(block.as_ptr() as *mut libc::c_void) };
        assert!(
            usable >= n + 1024 && usable % 4096 > 4000,
            "a block of {n} B was taken from the heap ({usable} B usable), not mapped apart"
        );
        let h = heap().expect("glibc");
        assert!(h.mapped >= n as u64 && h.in_use >= h.mapped, "{h:?}");
        drop(block);
        release_free_memory();
    }
}
