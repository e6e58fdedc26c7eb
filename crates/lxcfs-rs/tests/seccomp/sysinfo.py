# Calls sysinfo(2) from inside a container (Python's ctypes, from the host's /usr bound
# read-only), for e2e_seccomp_agent.rs.
#   show                   every field, one `name=value` per line
#   loop SECS RATE PROGRESS  call for SECS seconds at RATE calls/s (0: flat out), writing
#                          the count of successful calls to PROGRESS now and then;
#                          prints `ok=N errno_E=M ... rate=R`
#   read PATH SECS         open+read+close PATH for SECS seconds; prints
#                          `reads=N per_s=R p50_us=A p99_us=B`
import ctypes
import sys
import time


class Sysinfo(ctypes.Structure):
    _fields_ = [
        ("uptime", ctypes.c_long),
        ("loads", ctypes.c_ulong * 3),
        ("totalram", ctypes.c_ulong),
        ("freeram", ctypes.c_ulong),
        ("sharedram", ctypes.c_ulong),
        ("bufferram", ctypes.c_ulong),
        ("totalswap", ctypes.c_ulong),
        ("freeswap", ctypes.c_ulong),
        ("procs", ctypes.c_ushort),
        ("pad", ctypes.c_ushort),
        ("totalhigh", ctypes.c_ulong),
        ("freehigh", ctypes.c_ulong),
        ("mem_unit", ctypes.c_uint),
    ]


libc = ctypes.CDLL(None, use_errno=True)


def call():
    s = Sysinfo()
    rc = libc.sysinfo(ctypes.byref(s))
    return rc, ctypes.get_errno(), s


def show():
    rc, err, s = call()
    print(f"rc={rc}")
    print(f"errno={err}")
    for name, _ in Sysinfo._fields_:
        if name == "loads":
            for i, v in enumerate(s.loads):
                print(f"load{i}={v}")
        elif name != "pad":
            print(f"{name}={getattr(s, name)}")


def loop(secs, rate, progress):
    counts = {}
    ok = 0
    start = time.monotonic()
    end = start + secs
    n = 0
    last_report = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if rate > 0 and n >= (now - start) * rate:
            time.sleep(0.0005)
            continue
        rc, err, _ = call()
        n += 1
        if rc == 0:
            ok += 1
        else:
            counts[err] = counts.get(err, 0) + 1
        if n - last_report >= 200:
            last_report = n
            with open(progress, "w") as f:
                f.write(f"{ok} {sum(counts.values())}\n")
    elapsed = time.monotonic() - start
    errs = " ".join(f"errno_{e}={c}" for e, c in sorted(counts.items()))
    print(f"ok={ok} {errs} rate={n / elapsed:.0f}".replace("  ", " "))


def read(path, secs):
    lat = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t = time.perf_counter()
        with open(path, "rb") as f:
            f.read()
        lat.append(time.perf_counter() - t)
    lat.sort()
    n = len(lat)
    print(
        f"reads={n} per_s={n / secs:.0f} p50_us={lat[n // 2] * 1e6:.0f} p99_us={lat[n * 99 // 100] * 1e6:.0f}"
    )


mode = sys.argv[1]
if mode == "show":
    show()
elif mode == "loop":
    loop(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
elif mode == "read":
    read(sys.argv[2], float(sys.argv[3]))
