"""A typical hand-written Python watch loop (the `kubernetes` client) against `kube-chaos
serve` (URL in KUBE_URL): list, then watch ConfigMaps from the list's resourceVersion with
bookmarks and a 2 s read timeout (`_request_timeout`), resuming from the last
resourceVersion whenever the stream ends or times out, relisting on a 410. After every change
it writes its cache to CACHE_FILE (`namespace/name resourceVersion` lines) for the server's
`no_event_loss`. Runs for RUN_FOR seconds; prints `listed` after its first list and one
line per watch that ended badly."""
import os
import time

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

conf = client.Configuration(host=os.environ["KUBE_URL"])
api = client.CoreV1Api(client.ApiClient(conf))
ns = "default"
deadline = time.monotonic() + float(os.environ["RUN_FOR"])
cache = {}


def write_cache():
    tmp = os.environ["CACHE_FILE"] + ".tmp"
    with open(tmp, "w") as f:
        for key, rv in sorted(cache.items()):
            f.write(f"{key} {rv}\n")
    os.replace(tmp, os.environ["CACHE_FILE"])


def relist():
    lst = api.list_namespaced_config_map(ns)
    cache.clear()
    for o in lst.items:
        cache[f"{o.metadata.namespace}/{o.metadata.name}"] = o.metadata.resource_version
    write_cache()
    return lst.metadata.resource_version


rv = relist()
print("listed", flush=True)
while time.monotonic() < deadline:
    try:
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_config_map, ns, resource_version=rv,
                           allow_watch_bookmarks=True, _request_timeout=2):
            if ev["type"] == "BOOKMARK":
                rv = ev["raw_object"]["metadata"]["resourceVersion"]
                continue
            obj = ev["object"]
            rv = obj.metadata.resource_version
            key = f"{obj.metadata.namespace}/{obj.metadata.name}"
            if ev["type"] == "DELETED":
                cache.pop(key, None)
            else:
                cache[key] = rv
            write_cache()
            if time.monotonic() >= deadline:
                break
    except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as e:
        print(f"watch timed out: {type(e).__name__}", flush=True)
    except ApiException as e:
        print(f"watch failed: {e.status}", flush=True)
        if e.status == 410:
            rv = relist()
        else:
            time.sleep(0.5)
print("done", flush=True)
