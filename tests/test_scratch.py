"""No scratch folder outlives its process: a web worker killed outright (SIGKILL runs no exit handler) has its
folder removed by the next web process to start, a real gunicorn's replacement worker here. The control: a live
worker's folder stays."""
import os
import signal

from tests.procs import wait_until


def folders(base):
    return {path.name for path in base.iterdir()}


def test_a_killed_workers_scratch_folder_goes_when_its_replacement_starts(procs, redis_url, tmp_path):
    base = tmp_path / "scratch"
    web = procs.web(redis_url, name="web.1", WEB_WORKERS=2, SCRATCH_DIR=base)
    workers = {worker.pid for worker in web.workers}
    wait_until(lambda: len(folders(base)) == 2, timeout=30, what="a scratch folder per worker")
    victim, survivor = sorted(workers)
    [dead] = [name for name in folders(base) if f"-{victim}-" in name]
    [kept] = [name for name in folders(base) if f"-{survivor}-" in name]
    os.kill(victim, signal.SIGKILL)
    def replacement_folder():
        return [name for pid in {w.pid for w in web.workers} - workers for name in folders(base) if f"-{pid}-" in name]

    wait_until(replacement_folder, timeout=30, what="the replacement worker's folder")
    assert dead not in folders(base), "the killed worker's folder was swept"
    assert kept in folders(base), "a live worker's folder stays"
