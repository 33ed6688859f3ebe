"""The Python `kubernetes` client's own watch handling (`watch.Watch().stream`, no read
timeout) against `kube-chaos serve` (URL in KUBE_URL): list, then stream ConfigMap events
from the list's resourceVersion; the library decides what to do with a 410. Prints `listed`
after the list, one line per event, and `raised 410` if the library raised it."""
import os

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

api = client.CoreV1Api(client.ApiClient(client.Configuration(host=os.environ["KUBE_URL"])))
rv = api.list_namespaced_config_map("default").metadata.resource_version
print("listed", flush=True)
while True:
    try:
        for ev in watch.Watch().stream(api.list_namespaced_config_map, "default",
                                       resource_version=rv):
            rv = ev["object"].metadata.resource_version
            print(ev["type"], ev["object"].metadata.name, rv, flush=True)
    except ApiException as e:
        print(f"raised {e.status}", flush=True)
        rv = api.list_namespaced_config_map("default").metadata.resource_version
