"""scripts/ps's view of a live formation: registry entries joined with real processes."""
import subprocess

import requests

from tests.procs import ROOT, process_env
from web.formation import live_instances


def test_live_instances_list_masters_workers_and_hits_served(procs, redis_url, redis_client):
    first = procs.web(redis_url, name="web.1", WEB_WORKERS=2)
    procs.web(redis_url, name="web.2", WEB_WORKERS=1)
    for _ in range(3):
        requests.post(first.url + "/hits")
    instances = {i.name: i for i in live_instances(redis_client)}
    assert set(instances) == {"web.1", "web.2"}
    assert instances["web.1"].master == first.popen.pid
    assert sorted(w.pid for w in instances["web.1"].workers) == sorted(w.pid for w in first.workers)
    assert len(instances["web.2"].workers) == 1
    assert (instances["web.1"].served, instances["web.2"].served) == (3, 0)


def test_scripts_ps_prints_one_row_per_instance(procs, redis_url):
    web = procs.web(redis_url, name="web.7")
    out = subprocess.run([str(ROOT / "scripts/ps"), "--redis-url", redis_url], env=process_env(),
                         capture_output=True, text=True, check=True).stdout
    backing, header, *rows = out.strip().splitlines()
    assert backing.startswith("backing: ") and "server pid" in backing
    assert header.split()[:3] == ["INSTANCE", "ADDRESS", "MASTER"]
    assert len(rows) == 1 and rows[0].split()[:3] == ["web.7", web.address, str(web.popen.pid)]
