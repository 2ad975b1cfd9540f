"""`make slurm` on a real one-node Slurm (Debian's slurmctld, slurmd, munge): the CPU demo trains, and a
job that fails inside Slurm says why.

The cluster is made by the test, in a temp dir: a munge key, slurm.conf (one node `r4bnode` with this
machine's CPUs and memory, NodeAddr 127.0.0.1, no cgroups: proctrack/linuxproc, task/none, no
accounting; job completions to a jobcomp/filetxt file), munged, slurmctld and slurmd in the foreground.
Everything runs in a private network namespace whose only interface is loopback (see loopback_netns.py),
like the local Ray cluster test: Ray's daemons, started by the batch script inside the job, listen on
every interface, which there means loopback only. The daemons are stopped and every process of the
namespace killed at the end, also when a test fails; the teardown asserts that nothing is left.

Needs root and the Slurm binaries (`make slurm-deps`); skipped without them, except with R4B_REQUIRE_SLURM=1,
where their absence is an error (.ci/run installs them and sets it; a hosted runner's CI=true does not)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper module importable
from loopback_netns import Netns, cmdline, listening, listening_inodes, socket_owners  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RAY = BIN / "ray"
NODE = "r4bnode"
CTLD_PORT, SLURMD_PORT = 46817, 46818  # private namespace: no collision possible, distinct anyway
GCS_PORT, DASHBOARD_PORT = 46380, 48266
MODULE_BUDGET_S = 1800  # both jobs; the demo job alone takes ~1.5 min on 2 idle cores
JOB_TIMEOUT_S = 900
DAEMONS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel")
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _slurm_conf(root: Path) -> str:
    mem_mib = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return f"""\
ClusterName=r4btest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
# bind to 127.0.0.1, not INADDR_ANY (slurmctld; slurmd and srun)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/run/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={mem_mib * 9 // 10} State=UNKNOWN
PartitionName=r4b Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Slurm:
    """The running cluster: run commands in its namespace with its SLURM_CONF."""

    def __init__(self, root: Path, ns: Netns, env: dict):
        self.root, self.ns, self.env = root, ns, env
        self.daemons: dict[str, subprocess.Popen] = {}

    def run(self, *args, timeout=60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ns.prefix, *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout, **kw)

    def start(self, name: str, *args):
        log = open(self.root / "log" / f"{name}.out", "w")
        self.daemons[name] = subprocess.Popen([*self.ns.prefix, *args], cwd=self.root, env=self.env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)

    def job(self, job_id: str) -> dict[str, str]:
        out = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_job(self, job_id: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") not in (None, "PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
                return info
            time.sleep(2)
        self.run("scancel", job_id)
        pytest.fail(f"job {job_id} not finished within {timeout:.0f}s: {self.job(job_id)}")

    def stop(self):
        self.run("scancel", "--full", "--user=root", timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):  # slurmd first: it ends the job steps it runs
            proc = self.daemons.get(name)
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _missing() -> list[str]:
    return [tool for tool in (*DAEMONS, "unshare", "nsenter", "make") if shutil.which(tool, path=SBIN) is None]


@pytest.fixture(scope="module")
def slurm():
    missing = _missing()
    why = None
    if missing:
        why = f"needs Debian's Slurm (`make slurm-deps`: slurm-wlm, munge); missing {', '.join(missing)}"
    elif os.geteuid() != 0:
        why = "needs root: slurmd runs jobs as root here (SlurmdUser=root) and munged uses a key made by the test"
    elif not RAY.exists():
        why = f"no ray executable next to {sys.executable}"
    if why:
        if os.environ.get("R4B_REQUIRE_SLURM") == "1":
            pytest.fail(f"R4B_REQUIRE_SLURM=1: the real-Slurm test must run here: {why}")
        pytest.skip(why)
    ns = Netns(MODULE_BUDGET_S + 300, extra_addresses=("127.0.0.2",))
    if ns.holder is None:
        pytest.skip("cannot create a network namespace here (unshare --net): the cluster would not be loopback-only")
    # Short path (Ray's unix sockets live under it); 0755: munged wants its socket's directory searchable by all.
    root = Path(tempfile.mkdtemp(prefix="r4b-slurm-", dir="/tmp"))
    root.chmod(0o755)
    for sub, mode in (("munge", 0o700), ("run", 0o755), ("state", 0o700), ("spool", 0o755), ("log", 0o755)):
        (root / sub).mkdir(mode=mode)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (root / "slurm.conf").write_text(_slurm_conf(root))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")) and k not in
           {"RAY_ADDRESS", "VERL_PLATFORM", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{SBIN}",  # `python` and `ray` in the job = this env's
        "SLURM_CONF": str(root / "slurm.conf"),
        "HEAD_IP": "127.0.0.1",  # the Ray head's address in slurm.sbatch (else `hostname --ip-address`)
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),  # neither read nor write ~/.ray
        "RAY_USAGE_STATS_ENABLED": "0",
    })
    cluster = Slurm(root, ns, env)
    try:
        cluster.start("munged", shutil.which("munged", path=SBIN), "--foreground", f"--key-file={key}",
                      f"--socket={root}/run/munge.sock", f"--pid-file={root}/run/munged.pid",
                      f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/seed")
        _wait(lambda: (root / "run" / "munge.sock").exists(), 30, "munged socket", root / "log" / "munged.out")
        cluster.start("slurmctld", shutil.which("slurmctld", path=SBIN), "-D")
        cluster.start("slurmd", shutil.which("slurmd", path=SBIN), "-D", "-N", NODE)
        _wait(lambda: cluster.run("sinfo", "-h", "-N", "-o", "%T").stdout.strip() == "idle", 90,
              f"node {NODE} idle in sinfo", root / "log" / "slurmctld.log")
        yield cluster
    finally:
        cluster.stop()
        ns.close()
        time.sleep(1)
        strays = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                  if str(root) in cmdline(pid) or pid in ns.survivors()]
        for pid in strays:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        assert not strays, [cmdline(p) for p in strays]


def _wait(ready, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"no {what} within {timeout}s; {log}:\n{tail}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def assets(slurm):
    out = slurm.root / "assets"
    # a random model is enough for the plumbing (no bi-mode annealing: minutes on a busy CPU)
    subprocess.run([sys.executable, "-m", "r4b_verl.demo", "--out", str(out), "--anneal-steps", "0"],
                   check=True, cwd=slurm.root, capture_output=True, timeout=300)
    return out


def _slurm_args(slurm: Slurm, model: Path, assets: Path, name: str) -> list[str]:
    """`make slurm` of the CPU demo (as recipes/README.md shows it for a local cluster)."""
    return ["make", "--no-print-directory", "slurm", "RECIPE=r4b_bpo_cpu", f"MODEL={model}",
            f"TRAIN={assets / 'train.parquet'}", f"VAL={assets / 'val.parquet'}", "NNODES=1",
            # no GPUs in this Slurm: no --gpus-per-node; Ray gets the logical GPU and the CPU slots verl asks for
            "NGPUS=", f"RAY_START_ARGS=--num-cpus=8 --num-gpus=1 --temp-dir={slurm.root / 'ray'}",
            "ROLLOUT=", "PROJECT=", "LOGGER=", f"EXPERIMENT={name}", f"JOB_PYTHON={sys.executable}", f"RAY={RAY}",
            f"RAY_PORT={GCS_PORT}", f"DASHBOARD_PORT={DASHBOARD_PORT}",
            f"SBATCH_ARGS=--output={slurm.root}/slurm-%x-%j.out",  # not into the checkout
            f"ARGS=trainer.total_training_steps=2 trainer.default_local_dir={slurm.root / 'checkpoints' / name}"]


def _make_slurm(slurm: Slurm, model: Path, assets: Path, name: str, *extra: str) -> str:
    """`make slurm` of the CPU demo; returns the job id."""
    out = slurm.run(*_slurm_args(slurm, model, assets, name), *extra, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (job_id,) = re.findall(r"^Submitted batch job (\d+)$", out.stdout, re.M)
    return job_id


def _loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return (ip.ipv4_mapped or ip).is_loopback if ip.version == 6 else ip.is_loopback


def _jobcomp(slurm: Slurm, job_id: str) -> str:
    (line,) = [line for line in (slurm.root / "log" / "jobcomp.txt").read_text().splitlines()
               if line.startswith(f"JobId={job_id} ")]
    return re.search(r"JobState=(\S+)", line).group(1)


def test_slurm_daemons_listen_on_loopback_only(slurm):
    assert slurm.ns.interfaces() == ["lo"], slurm.ns.interfaces()
    sockets = listening(slurm.ns.holder.pid)
    assert ("127.0.0.1", CTLD_PORT) in sockets and ("127.0.0.1", SLURMD_PORT) in sockets, sockets
    assert not [s for s in sockets if s[1] in (CTLD_PORT, SLURMD_PORT) and s[0] != "127.0.0.1"], sockets


def test_make_slurm_trains_the_cpu_demo_on_a_real_slurm(slurm, assets):
    began = time.monotonic()
    job_id = _make_slurm(slurm, assets / "model", assets, "demo")
    info = slurm.job(job_id)
    log = Path(info["StdOut"])
    assert log == slurm.root / f"slurm-demo-{job_id}.out", info
    # While it runs: Ray's GCS listens on 127.0.0.1 (HEAD_IP); what listens on every interface (some of
    # Ray's processes do) is recorded: in this namespace that is loopback too.
    gcs_at, wildcard = set(), {}
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline and slurm.job(job_id).get("JobState") in ("PENDING", "CONFIGURING", "RUNNING"):
        sockets = listening_inodes(slurm.ns.holder.pid)
        gcs_at |= {addr for addr, port in sockets if port == GCS_PORT}
        owners = socket_owners(slurm.ns.processes())
        for (addr, port), inode in sockets.items():
            if not _loopback(addr):
                assert ipaddress.ip_address(addr).is_unspecified, sockets
                wildcard[port] = cmdline(owners[inode])[:80] if inode in owners else "?"
        assert slurm.ns.interfaces() == ["lo"]
        time.sleep(3)
    print(f"listening on every interface (= lo here) during the job: {wildcard}")
    info = slurm.wait_job(job_id, max(10, deadline - time.monotonic()))
    text = log.read_text(errors="replace")
    print(f"[{time.monotonic() - began:6.1f}s] job {job_id}: {info.get('JobState')}; log {log}")
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text[-6000:]
    assert _jobcomp(slurm, job_id) == "COMPLETED"
    assert gcs_at and all(_loopback(addr) for addr in gcs_at), gcs_at  # seen, and on loopback
    assert f"head {NODE} at 127.0.0.1:{GCS_PORT}" in text, text[-6000:]
    assert "training/global_step:2" in text, text[-6000:]  # both training steps ran, through verl's trainer
    assert "bpo/think/count" in text and "bpo/no_think/count" in text, text[-6000:]  # bi-mode rollout + bpo
    assert f"job r4b-{job_id} succeeded" in text and "Ray cluster stopped" in text, text[-6000:]
    # slurm.sbatch's tear-down left nothing of Ray: soon only the daemons (and slurmctld's helper
    # process slurmscriptd) are in the namespace
    daemons = {p.pid for p in slurm.daemons.values()}
    deadline = time.monotonic() + 30
    while (rest := [p for p in slurm.ns.survivors() if p not in daemons
                    and not cmdline(p).startswith("slurmctld: slurmscriptd")]) and time.monotonic() < deadline:
        time.sleep(1)
    assert not rest, [cmdline(p) for p in rest]


def test_a_job_that_fails_inside_slurm_names_the_command_and_the_log(slurm, assets):
    bad_model = slurm.root / "not-a-model"  # exists, holds no model
    bad_model.mkdir()
    # the preflight refuses it on the submitting host, before sbatch (no job)
    refused = slurm.run(*_slurm_args(slurm, bad_model, assets, "broken"), timeout=120)
    assert refused.returncode != 0 and "FAIL  verl HFModelConfig" in refused.stdout, refused.stdout + refused.stderr
    assert "Submitted batch job" not in refused.stdout
    # past it (PREFLIGHT=), the job fails inside Slurm, and says where
    job_id = _make_slurm(slurm, bad_model, assets, "broken", "PREFLIGHT=")
    info = slurm.wait_job(job_id, JOB_TIMEOUT_S)
    log = Path(info["StdOut"])
    text = log.read_text(errors="replace")
    assert info["JobState"] == "FAILED" and info["ExitCode"] != "0:0", (info, text[-6000:])
    assert _jobcomp(slurm, job_id) == "FAILED"
    # the job's own error, streamed by `ray job submit`, names the config key to fix
    assert f"Job 'r4b-{job_id}' failed" in text and "full_key: actor_rollout_ref.model" in text, text[-6000:]
    report = [line for line in text.splitlines() if line.startswith("slurm.sbatch: ")][-3:]
    print("\n".join(report))
    assert len(report) == 3, text[-6000:]
    assert re.fullmatch(rf"slurm\.sbatch: job {job_id} FAILED with exit code [1-9]\d*", report[0]), report
    assert report[1].startswith(f"slurm.sbatch: failing command: {RAY} job submit "), report
    assert f"actor_rollout_ref.model.path={bad_model}" in report[1], report
    assert report[2].startswith(f"slurm.sbatch: log: {log} "), report
    assert "Ray cluster stopped" in text


def test_make_anneal_slurm_runs_stage_1_on_a_real_slurm(slurm):
    """Stage 1 on Slurm: `make anneal-slurm` -> recipes/anneal.sbatch -> srun -> run_anneal.sh -> torchrun
    (c10d rendezvous on the first node, 127.0.0.1 here) -> verl's SFT trainer, to an HF checkpoint."""
    work = slurm.root / "anneal"
    subprocess.run([sys.executable, "-m", "r4b_verl.demo", "--out", str(work), "--n-anneal", "16"],
                   check=True, cwd=slurm.root, capture_output=True, timeout=300)
    sft = work / "sft.parquet"
    subprocess.run([sys.executable, "-m", "r4b_verl.anneal.build", "--in", str(work / "anneal.parquet"),
                    "--out", str(sft), "--label-key", "level_label", "--tokenizer", str(work / "model"),
                    "--max-length", "128"], check=True, cwd=slurm.root, capture_output=True, timeout=300)
    out = slurm.run("make", "--no-print-directory", "anneal-slurm", "ANNEAL_RECIPE=r4b_anneal_cpu",
                    f"MODEL={work / 'model'}", f"DATA={sft}", "NNODES=1", "NGPUS=", "LOGGER=[console]",
                    f"ANNEAL_OUT={work / 'checkpoints'}", "RDZV_PORT=46390", "EXPERIMENT=anneal",
                    f"JOB_PYTHON={sys.executable}", f"SBATCH_ARGS=--output={slurm.root}/slurm-%x-%j.out",
                    "ARGS=trainer.total_training_steps=3 trainer.total_epochs=10 data.train_batch_size=4 "
                    "data.micro_batch_size_per_gpu=4", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (job_id,) = re.findall(r"^Submitted batch job (\d+)$", out.stdout, re.M)
    info = slurm.wait_job(job_id, JOB_TIMEOUT_S)
    text = Path(info["StdOut"]).read_text(errors="replace")
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text[-6000:]
    assert "rendezvous on r4bnode at 127.0.0.1:46390" in text, text[-3000:]
    assert re.search(r"step:3 - .*train/loss:", text), text[-3000:]  # three SFT steps through verl's trainer
    hf = work / "checkpoints" / "global_step_3" / "huggingface"
    assert f"annealed model (HF format, with tokenizer): {hf}" in text, text[-3000:]
    assert (hf / "config.json").is_file() and list(hf.glob("*.safetensors")), sorted(hf.iterdir())


def test_a_failing_anneal_job_names_the_command_and_the_log(slurm):
    empty = slurm.root / "no-model"
    empty.mkdir(exist_ok=True)
    data = slurm.root / "no-data.parquet"
    data.write_bytes(b"not a parquet file")
    args = ["make", "--no-print-directory", "anneal-slurm", "ANNEAL_RECIPE=r4b_anneal_cpu",
            f"MODEL={empty}", f"DATA={data}", "NNODES=1", "NGPUS=", "RDZV_PORT=46391",
            f"ANNEAL_OUT={slurm.root / 'anneal-broken'}", f"JOB_PYTHON={sys.executable}",
            f"SBATCH_ARGS=--job-name=anneal-broken --output={slurm.root}/slurm-%x-%j.out"]
    refused = slurm.run(*args, timeout=120)  # the preflight, on the submitting host: no job
    assert refused.returncode != 0 and "not a readable parquet file" in refused.stdout, refused.stdout + refused.stderr
    assert "Submitted batch job" not in refused.stdout
    out = slurm.run(*args, "PREFLIGHT=", timeout=120)  # past it, the job fails inside Slurm and says where
    assert out.returncode == 0, out.stdout + out.stderr
    (job_id,) = re.findall(r"^Submitted batch job (\d+)$", out.stdout, re.M)
    info = slurm.wait_job(job_id, JOB_TIMEOUT_S)
    log = Path(info["StdOut"])
    text = log.read_text(errors="replace")
    assert info["JobState"] == "FAILED", (info, text[-3000:])
    report = [line for line in text.splitlines() if line.startswith("anneal.sbatch: ")][-3:]
    assert len(report) == 3 and report[0].startswith(f"anneal.sbatch: job {job_id} FAILED with exit code "), \
        text[-3000:]
    assert report[1].startswith("anneal.sbatch: failing command: srun ") and "run_anneal.sh" in report[1], report
    assert report[2].startswith(f"anneal.sbatch: log: {log} "), report
