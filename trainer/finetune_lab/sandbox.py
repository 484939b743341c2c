"""Where model-generated code runs: lm-eval tasks marked ``unsafe_code`` (humaneval, mbpp, ...)
are scored by a child process, ``python -m finetune_lab.sandbox``, confined before it scores:

- no network: the child starts inside a new network namespace (``unshare --net``, with
  ``--map-root-user`` so no privilege is needed where user namespaces are enabled); where
  ``unshare`` cannot do that, Python's sockets refuse internet addresses in the child (a
  best-effort guard that code calling the OS directly can get around; the event says which);
- resource limits (``resource.setrlimit``, inherited by every process the code starts): CPU time
  (FINETUNE_LAB_SANDBOX_CPU_S, default 600 s), address space beyond what the harness already
  holds (FINETUNE_LAB_SANDBOX_MEMORY_MB, default 4096), size of any file written
  (FINETUNE_LAB_SANDBOX_FILE_MB, default 64), no core files, and for a non-root user at most 64
  more processes (lm-eval's code_eval runs each program in a process of its own, with its own
  3 s timeout; the kernel does not limit root's processes);
- a time limit on the child's own work (FINETUNE_LAB_SANDBOX_WALL_S, default 1800 s; time spent
  waiting for the model is not counted); at the end the child's whole process group is killed.

The child runs lm-eval's own harness for the task (its filters, its metric: the code execution
happens there) against a stand-in model that sends every request back over a pipe; this process
answers them with the real model (``HFLM`` over the model in memory). So the numbers are
lm-eval's own, and generated code never runs in the training process.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

LIMIT_ENV = {"cpu_s": ("FINETUNE_LAB_SANDBOX_CPU_S", 600), "memory_mb": ("FINETUNE_LAB_SANDBOX_MEMORY_MB", 4096),
             "file_mb": ("FINETUNE_LAB_SANDBOX_FILE_MB", 64), "wall_s": ("FINETUNE_LAB_SANDBOX_WALL_S", 1800)}
EXTRA_PROCESSES = 64


class SandboxError(RuntimeError):
    """The sandboxed harness failed or was stopped by a limit; the message says which."""


def sandbox_limits() -> dict:
    """The limits in force, from the environment (FINETUNE_LAB_SANDBOX_*) or the defaults."""
    out = {}
    for key, (env, default) in LIMIT_ENV.items():
        raw = os.environ.get(env, "").strip()
        out[key] = float(raw) if raw else float(default)
    return out


@lru_cache(maxsize=1)
def network_prefix() -> tuple[str, ...]:
    """The command prefix that starts a process without network, or () where none works here."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    for args in ((exe, "--net", "--map-root-user"), (exe, "--net")):
        try:
            ok = subprocess.run([*args, "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return args
    return ()


# ---------------------------------------------------------------------------- the parent's side

def _read_line(fd: int, buf: bytearray, timeout: float) -> bytes | None:
    """One line from ``fd`` within ``timeout`` seconds; None at EOF. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buf += chunk
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[: i + 1]
    return line


def _answer(lm, method: str, args: list) -> list:
    """Run the child's requests on the real model (HFLM)."""
    from lm_eval.api.instance import Instance
    if method not in ("loglikelihood", "loglikelihood_rolling", "generate_until"):
        raise SandboxError(f"the sandboxed harness asked for an unknown request type {method!r}")
    reqs = [Instance(request_type=method, doc={}, arguments=tuple(a), idx=i) for i, a in enumerate(args)]
    out = getattr(lm, method)(reqs)
    return [list(r) if isinstance(r, tuple) else r for r in out]


def _death(returncode: int, limits: dict, log_tail: str) -> str:
    if returncode < 0:
        sig = signal.Signals(-returncode)
        why = {signal.SIGXCPU: f"it reached the CPU time limit ({limits['cpu_s']:.0f} s, FINETUNE_LAB_SANDBOX_CPU_S)",
               signal.SIGXFSZ: f"it wrote a file larger than {limits['file_mb']:.0f} MB (FINETUNE_LAB_SANDBOX_FILE_MB)",
               signal.SIGKILL: "it was killed (SIGKILL: out of memory?)"}.get(sig, f"it was killed by {sig.name}")
    else:
        why = f"it exited with code {returncode}"
    return f"the sandboxed evaluation stopped: {why}" + (f"; last output: {log_tail}" if log_tail else "")


def evaluate_in_sandbox(request: dict, lm) -> dict:
    """Run lm-eval's harness for one unsafe task in the sandboxed child; answer its model
    requests with ``lm``.

    Args:
        request (dict): task, include_dirs, cwd, limit, num_fewshot, gen_kwargs, bootstrap_iters.
        lm: lm-eval's HFLM around the model in memory.

    Returns:
        dict: lm-eval's results (results, versions, n-samples, n-shot, higher_is_better,
        group_subtasks) plus ``sandbox``: what confined the child.

    Raises:
        SandboxError: the child failed, hit a limit or ran past the time limit.
    """
    limits = sandbox_limits()
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    trainer_dir = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [trainer_dir, os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "HF_ALLOW_CODE_EVAL": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    prefix = network_prefix()
    log = tempfile.TemporaryFile()
    cmd = [*prefix, sys.executable, "-m", "finetune_lab.sandbox", str(to_child_r), str(from_child_w)]
    proc = subprocess.Popen(cmd, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    os.close(to_child_r)
    os.close(from_child_w)
    out = os.fdopen(to_child_w, "wb")
    buf = bytearray()
    budget = limits["wall_s"]

    def send(obj) -> None:
        out.write(json.dumps(obj).encode() + b"\n")
        out.flush()

    def tail() -> str:
        log.seek(0)
        lines = [ln for ln in log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return " | ".join(lines[-3:])[-600:]

    try:
        send({**request, "limits": limits, "network": "namespace" if prefix else "python"})
        while True:
            t0 = time.monotonic()
            try:
                line = _read_line(from_child_r, buf, budget)
            except TimeoutError:
                raise SandboxError(f"the sandboxed evaluation ran past its time limit ({limits['wall_s']:.0f} s of its own "
                                   "work, FINETUNE_LAB_SANDBOX_WALL_S) and was killed") from None
            budget -= time.monotonic() - t0
            if line is None:
                raise SandboxError(_death(proc.wait(), limits, tail()))
            msg = json.loads(line)
            if "call" in msg:
                send({"result": _answer(lm, msg["call"], msg["args"])})
            elif "done" in msg:
                return {**msg["done"], "sandbox": msg["sandbox"]}
            else:
                raise SandboxError(f"the sandboxed evaluation failed: {msg.get('error', 'no result')}")
    finally:
        for closing in (out.close, lambda: os.close(from_child_r)):
            try:
                closing()
            except OSError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the harness and every process the code started
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        log.close()


# ---------------------------------------------------------------------------- the child's side

def _block_internet() -> None:
    """Python-level guard where no network namespace could be made: sockets refuse IPv4/IPv6
    connects and binds (Unix sockets, which multiprocessing uses, still work)."""
    import socket
    inet = (socket.AF_INET, socket.AF_INET6)

    def refuse(orig):
        def guarded(self, *args, **kwargs):
            if self.family in inet:
                raise OSError(101, "network is disabled in the Finetune Lab sandbox")
            return orig(self, *args, **kwargs)
        return guarded
    for name in ("connect", "connect_ex", "bind", "sendto"):
        setattr(socket.socket, name, refuse(getattr(socket.socket, name)))


def _process_count(uid: int) -> int:
    n = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nUid:\t{uid}\t" in status.read_text():
                n += 1
        except OSError:
            continue
    return n


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def confine(limits: dict, network: str) -> dict:
    """Apply the limits to this process (and so to everything it starts). Returns what applies."""
    import resource
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    memory = _vm_size() + int(limits["memory_mb"] * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(limits["file_mb"] * 2**20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    processes = None
    if os.getuid() != 0:
        processes = _process_count(os.getuid()) + EXTRA_PROCESSES
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    if network != "namespace":
        _block_internet()
    return {"network": "none (network namespace)" if network == "namespace" else "python sockets blocked (no unshare here)",
            "cpu_s": limits["cpu_s"], "memory_mb": limits["memory_mb"], "file_mb": limits["file_mb"],
            "wall_s": limits["wall_s"], "processes": "unlimited (root)" if processes is None else processes}


def _remote_lm(inp, out):
    from lm_eval.api.model import LM

    class RemoteLM(LM):
        """lm-eval's model interface, answered by the training process over the pipe."""

        def _ask(self, method: str, requests) -> list:
            out.write(json.dumps({"call": method, "args": [list(r.args) for r in requests]}) + "\n")
            out.flush()
            line = inp.readline()
            if not line:
                raise SystemExit(3)
            return json.loads(line)["result"]

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return [tuple(r) for r in self._ask("loglikelihood", requests)]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return self._ask("loglikelihood_rolling", requests)

        def generate_until(self, requests, disable_tqdm: bool = False):
            return self._ask("generate_until", requests)

    return RemoteLM()


def _slim(results: dict) -> dict:
    keys = ("results", "versions", "n-samples", "n-shot", "higher_is_better", "group_subtasks")
    return json.loads(json.dumps({k: results.get(k) for k in keys}, default=str))


def child_main(read_fd: int, write_fd: int) -> int:
    """The sandboxed harness: load the task (offline, from the caches the trainer filled), confine
    this process, run lm-eval's evaluation against the remote model, send the results."""
    inp = os.fdopen(read_fd, "r")
    out = os.fdopen(write_fd, "w")
    try:
        req = json.loads(inp.readline())
        from .lmeval import _quiet_lm_eval, no_env_info, working_dir
        _quiet_lm_eval()
        import lm_eval
        from lm_eval.tasks import TaskManager
        tm = TaskManager(include_defaults=False, include_path=req["include_dirs"])
        if req["task"] not in tm.all_tasks:
            tm = TaskManager(include_defaults=True, include_path=req["include_dirs"])
        with working_dir(req["cwd"]):
            loaded = tm.load([req["task"]])
        obj = loaded["groups"].get(req["task"]) or loaded["tasks"][req["task"]]
        report = confine(req["limits"], req["network"])
        with no_env_info():
            results = lm_eval.simple_evaluate(
                model=_remote_lm(inp, out), tasks=[obj], task_manager=tm, limit=req["limit"],
                num_fewshot=req["num_fewshot"], gen_kwargs=req["gen_kwargs"], log_samples=False,
                bootstrap_iters=req["bootstrap_iters"], confirm_run_unsafe_code=True)
        out.write(json.dumps({"done": _slim(results), "sandbox": report}) + "\n")
        out.flush()
        return 0
    except BaseException as e:  # report, then exit: the parent turns it into the eval's error
        try:
            out.write(json.dumps({"error": f"{type(e).__name__}: {e}"[:2000]}) + "\n")
            out.flush()
        except Exception:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1]), int(sys.argv[2])))
