//! The limits a serving process sets for itself.

/// The soft limit on open descriptors a serving process raises itself to, within the
/// hard one. systemd starts services at 1 024 (for `select(2)`, which we do not use),
/// and what we serve holds descriptors per container: the worker one per PSI trigger,
/// the seccomp agent one per container whose `sysinfo` it answers. Past the limit the
/// agent could not take a new container's listener, and that container's calls would
/// wait on a descriptor nobody reads.
const OPEN_FILES: u64 = 1 << 20;

/// Raise the soft `RLIMIT_NOFILE` to the hard one (at most [`OPEN_FILES`]); never lowers
/// it. A failure is logged, and serving goes on under the limit it has.
pub fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = limit
        .maximum
        .map_or(OPEN_FILES, |hard| hard.min(OPEN_FILES));
    let Some(was) = limit.current.filter(|&soft| soft < want) else {
        return;
    };
    limit.current = Some(want);
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) => tracing::debug!("open file limit raised from {was} to {want}"),
        Err(e) => tracing::warn!("the open file limit stays {was}, not {want}: {e}"),
    }
}
