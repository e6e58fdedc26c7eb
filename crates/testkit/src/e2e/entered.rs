//! Pid namespaces whose readers enter from outside, as `docker exec`'s do: Python
//! for test scripts that run in a container.

/// Python defining `entered(inits, before_read)`: it makes a pid namespace whose init
/// moves to the cgroup of `inits` (its `cgroup.procs` files) and waits; calls
/// `before_read()`; then forks a reader into the namespace (its parent, the caller,
/// is outside it), which reads `/proc/meminfo` once and prints its first line if
/// `show`; the init is killed after. Returns 0 when the read began `MemTotal:`. Call
/// it in a child: the caller stays in the namespace's parent with `unshare`.
pub const ENTERED_PY: &str = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def entered(inits, before_read, show=False):
    if libc.unshare(0x20000000) != 0:
        return 3
    r, w = os.pipe()
    init = os.fork()
    if init == 0:
        for f in inits:
            with open(f, "w") as p:
                p.write("0")
        os.write(w, b"x")
        signal.pause()
        os._exit(0)
    os.read(r, 1)
    before_read()
    reader = os.fork()
    if reader == 0:
        with open("/proc/meminfo", "rb") as f:
            text = f.read()
        if show:
            print(text.decode().splitlines()[0], flush=True)
        os._exit(0 if text.startswith(b"MemTotal:") else 1)
    _, st = os.waitpid(reader, 0)
    os.kill(init, 9)
    os.waitpid(init, 0)
    return os.waitstatus_to_exitcode(st)
"#;
