"""A kopf operator for example.com/v1 widgets: create/update/delete handlers; kopf adds its
finalizer before the first handler and removes it after the delete handler."""
import os

import kopf


@kopf.on.login()
def login(**_):
    return kopf.ConnectionInfo(server=os.environ["KUBE_URL"], insecure=True)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.posting.enabled = False
    settings.watching.server_timeout = 10


@kopf.on.create("example.com", "v1", "widgets")
def created(spec, **_):
    return {"size": spec.get("size")}


@kopf.on.update("example.com", "v1", "widgets")
def updated(spec, **_):
    return {"size": spec.get("size")}


@kopf.on.delete("example.com", "v1", "widgets")
def deleted(name, patch, **_):
    # A delete handler's return value lands nowhere visible; the finalizer's removal
    # (and so the object's disappearance) is the observable proof it ran.
    return None
