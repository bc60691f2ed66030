//! What the operating system says about this process: CPU time, resident
//! memory, the file descriptor limit. Linux only (`/proc`, `getrusage`).

use std::time::Duration;

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut u) };
    if rc != 0 {
        return Duration::ZERO;
    }
    timevals(&u)
}

/// User + system time of a `rusage`.
fn timevals(u: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// User + system CPU time of the calling OS thread.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// User + system CPU time of the whole process, all threads.
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User + system CPU time of another process (from `/proc/PID/stat`).
pub fn pid_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Resident set size of a process in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Sends SIGTERM to process `pid`.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    match unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sends SIGKILL to process `pid`.
pub fn kill(pid: u32) {
    // SAFETY: as in `terminate`.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// If child `pid` has ended: reaps it and returns the CPU time it and the
/// descendants it reaped used (`wait4`). `None` while it runs.
pub fn try_wait_cpu(pid: u32) -> std::io::Result<Option<Duration>> {
    // SAFETY: wait4 writes only the status and the struct we hand it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    match unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut u) } {
        0 => Ok(None),
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(Some(timevals(&u))),
    }
}

/// True if a TCP socket listens on `port` (IPv4, any address), from
/// `/proc/net/tcp`.
pub fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // local_address is field 1 (ADDR:PORT in hex), the state field 3;
        // 0A is LISTEN.
        f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
    })
}

/// True if this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// This process's user name (`id -un`).
pub fn user_name() -> Option<String> {
    let out = std::process::Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// Raises this process's open-file limit to at least `want` (as far as the
/// kernel allows: root may raise the hard limit up to `fs.nr_open`). Returns
/// the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(r.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: want.min(nr_open.max(r.rlim_max)),
            rlim_max: r.rlim_max.max(want.min(nr_open)),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            // Not allowed to raise the hard limit: go as far as it goes.
            let soft = libc::rlimit {
                rlim_cur: want.min(r.rlim_max),
                rlim_max: r.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}
