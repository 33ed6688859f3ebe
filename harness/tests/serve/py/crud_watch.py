"""The Python `kubernetes` client against `kube-chaos serve` (URL in KUBE_URL): typed CRUD,
a JSON patch (a list body), a Status on delete, and a watch resumed from its last
resourceVersion. Any failed expectation raises; success prints OK."""
import os
import sys

from kubernetes import client, watch

conf = client.Configuration(host=os.environ["KUBE_URL"])
api = client.CoreV1Api(client.ApiClient(conf))
ns = "default"


def cm(name, value):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": value})


a = api.create_namespaced_config_map(ns, cm("a", "1"))
assert a.metadata.resource_version, a
assert a.metadata.generation is None, "ConfigMaps have no generation"
got = api.read_namespaced_config_map("a", ns)
assert got.data == {"k": "1"}, got.data
# A list body is sent as application/json-patch+json.
patched = api.patch_namespaced_config_map("a", ns, [{"op": "add", "path": "/data/j", "value": "2"}])
assert patched.data == {"k": "1", "j": "2"}, patched.data
got.data = {"k": "3"}
got.metadata.resource_version = patched.metadata.resource_version
replaced = api.replace_namespaced_config_map("a", ns, got)
assert replaced.data == {"k": "3"}, replaced.data
try:
    api.replace_namespaced_config_map("a", ns, got)
    raise AssertionError("a stale resourceVersion must conflict")
except client.ApiException as e:
    assert e.status == 409, e

start = replaced.metadata.resource_version
api.create_namespaced_config_map(ns, cm("b", "1"))
api.create_namespaced_config_map(ns, cm("c", "1"))
w = watch.Watch()
seen = []
for ev in w.stream(api.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=2):
    seen.append((ev["type"], ev["object"].metadata.name))
    last = ev["object"].metadata.resource_version
    if len(seen) == 2:
        w.stop()
assert seen == [("ADDED", "b"), ("ADDED", "c")], seen

status = api.delete_namespaced_config_map("b", ns)
# Depending on the client version the Status comes back as a model or a plain dict.
status = status if isinstance(status, dict) else status.to_dict()
assert status["kind"] == "Status" and status["status"] == "Success", status
assert status["details"]["name"] == "b", status
seen = []
for ev in w.stream(api.list_namespaced_config_map, ns, resource_version=last, timeout_seconds=2):
    seen.append((ev["type"], ev["object"].metadata.name))
    w.stop()
assert seen == [("DELETED", "b")], f"resumed from {last}: {seen}"
names = [i.metadata.name for i in api.list_namespaced_config_map(ns).items]
assert names == ["a", "c"], names
print("OK")
sys.exit(0)
