"""The ``knative`` backend: functions as Knative Services; Knative does the scaling.

Deploy, update and remove are create/replace/delete of ``serving.knative.dev/v1``
Services through the ``kubernetes`` client. Instances are the pods of each
Service's latest ready revision (label ``serving.knative.dev/revision``), read by
a poll loop, with start and ready times from the pod status, so the gateway fills
the same metrics as with local processes (ready instances; pod start -> ready).
Every instance routes to the Service's cluster-local URL (``status.address.url``):
Knative's activator and queue-proxy pick the pod, and hold requests at zero.

The client is synchronous, so every API call runs in a worker thread.
"""

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from scalezero.backends.base import DEAD, DRAINING, READY, STARTING, Instance, LogLine
from scalezero.backends.ksvc import KSVC_GROUP, KSVC_PLURAL, KSVC_VERSION, KsvcOptions, ksvc_manifest
from scalezero.errors import ConfigError, Conflict, FunctionNotFound
from scalezero.stack import KNATIVE, FunctionSpec, scaling_from

log = logging.getLogger(__name__)
REVISION_LABEL = "serving.knative.dev/revision"
MIN_SCALE = KNATIVE + "min-scale"
INITIAL_SCALE = KNATIVE + "initial-scale"
KNATIVE_STAMPS = ("serving.knative.dev/creator", "serving.knative.dev/lastModifier")
QUEUE_PROXY = "queue-proxy"  # the container Knative adds to every pod; not the function's
LOG_TAIL_LINES = 500  # lines read per pod and container on each read
LOG_KEEP_LINES = 1000  # lines kept per function, as the process backend keeps


@dataclass(frozen=True)
class KnativeConfig:
    """How the backend talks to the cluster."""

    namespace: str = "default"  # namespace of the Knative Services
    poll_interval_s: float = 2.0  # how often pods and Service status are re-read
    ksvc: KsvcOptions = KsvcOptions()  # what goes into every Service

    def __post_init__(self):
        if not self.namespace:
            raise ConfigError("namespace = '', must name a namespace")
        if self.poll_interval_s <= 0:
            raise ConfigError(f"poll_interval_s = {self.poll_interval_s}, must be > 0")


def config_from_env(env: dict[str, str]) -> KnativeConfig:
    """KnativeConfig from the variables the Helm chart sets on the gateway."""
    try:
        poll = float(env.get("SCALEZERO_KNATIVE_POLL_INTERVAL", "2"))
    except ValueError:
        raise ConfigError("SCALEZERO_KNATIVE_POLL_INTERVAL = "
                          f"{env['SCALEZERO_KNATIVE_POLL_INTERVAL']!r}, must be seconds") from None
    return KnativeConfig(namespace=env.get("SCALEZERO_KNATIVE_NAMESPACE", "default"),
                         poll_interval_s=poll)


def backend_from_env(env: dict[str, str]) -> "KnativeBackend":
    """What ``scalezero up`` builds when SCALEZERO_BACKEND=knative (in-cluster or kubeconfig)."""
    return KnativeBackend(api_client_from_environment(), config_from_env(env))


def _api_exception():
    from kubernetes.client.exceptions import ApiException
    return ApiException


def api_client_from_environment():
    """An ApiClient for the cluster we run in, else for the current kubeconfig context."""
    from kubernetes import client, config
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def api_client_for(host: str):
    """An ApiClient for an API server at ``host`` (tests: the fake on 127.0.0.1)."""
    from kubernetes import client
    cfg = client.Configuration()
    cfg.host = host
    return client.ApiClient(cfg)


def _seconds_ago(ts: datetime.datetime | None, wall_now: datetime.datetime) -> float | None:
    if ts is None:
        return None
    return (wall_now - ts).total_seconds()


def pod_instance(pod, function: str, url: str, mono_now: float,
                 wall_now: datetime.datetime) -> Instance:
    """One pod as an Instance; times turned from wall clock into monotonic seconds."""
    status = pod.status
    conditions = {c.type: c for c in (status.conditions or [])}
    ready = conditions.get("Ready")
    is_ready = ready is not None and ready.status == "True"
    start_ago = _seconds_ago(status.start_time or pod.metadata.creation_timestamp, wall_now)
    ready_ago = _seconds_ago(ready.last_transition_time, wall_now) if is_ready else None
    if pod.metadata.deletion_timestamp is not None:
        state = DRAINING
    elif status.phase in ("Failed", "Succeeded"):
        state = DEAD
    else:
        state = READY if is_ready else STARTING
    return Instance(
        id=pod.metadata.name, function=function, url=url, state=state,
        started_at=mono_now - (start_ago or 0.0),
        ready_at=None if ready_ago is None else mono_now - ready_ago,
    )


def pod_log_line(raw: str, pod: str) -> LogLine:
    """One line of ``pods/log?timestamps=true`` ("2026-12-02T06:00:00.123456789Z text")."""
    stamp, _, text = raw.partition(" ")
    whole, _, frac = stamp.rstrip("Z").partition(".")
    try:
        when = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
        ts = when.timestamp() + (float(f"0.{frac}") if frac.isdigit() else 0.0)
    except ValueError:  # not a timestamp after all: keep the whole line, stamped now
        return LogLine(timestamp=time.time(), instance=pod, text=raw)
    return LogLine(timestamp=ts, instance=pod, text=text)


class KnativeBackend:
    """Backend protocol over the Kubernetes API; Knative scales, we observe."""

    scales_itself = True

    def __init__(self, api_client, config: KnativeConfig = KnativeConfig(),
                 on_change: Callable[[str], None] = lambda name: None,
                 clock: Callable[[], float] = time.monotonic):
        from kubernetes import client
        self.config = config
        self.on_change = on_change
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._clock = clock
        self._functions: dict[str, FunctionSpec] = {}
        self._urls: dict[str, str] = {}
        self._instances: dict[str, list[Instance]] = {}
        self._logs: dict[str, list[LogLine]] = {}  # per function, as last read_logs read them
        self._adopted: set[str] = set()  # Helm's Services, adopted at the first deploy
        self._poller: asyncio.Task | None = None

    # -- Backend protocol ---------------------------------------------------------
    async def deploy(self, spec: FunctionSpec) -> None:
        """Create the function's Knative Service, or replace it (a new revision)."""
        body = ksvc_manifest(spec, self.config.namespace, self.config.ksvc)
        await asyncio.to_thread(self._create_or_replace, spec.name, body)
        self._functions[spec.name] = spec
        await self.refresh(spec.name)
        self._ensure_poller()

    async def remove(self, name: str) -> None:
        """Delete the Service (Knative deletes its revisions and pods)."""
        if name not in self._functions:
            raise FunctionNotFound(f"function {name!r} is not deployed")
        try:
            await asyncio.to_thread(self._custom.delete_namespaced_custom_object, KSVC_GROUP,
                                    KSVC_VERSION, self.config.namespace, KSVC_PLURAL, name)
        except _api_exception() as e:
            if e.status != 404:  # already gone is what we wanted
                raise
        self._forget(name)
        self.on_change(name)

    async def scale(self, name: str, replicas: int) -> None:
        """Set a floor Knative honours: ``min-scale = replicas`` (it still scales above it).

        A merge patch of the revision template's annotations, so it works on a
        Service Helm installed too (a redeploy skips those: Helm owns them), and
        Knative rolls a revision with the new bound. ``initial-scale`` goes with it:
        with the cluster's ``initial-scale: 0`` a new revision starts at zero pods, and
        Knative's KPA applies min-scale only once it has a metric or is activating (its
        ``scaler.scale``); CI once waited 180 s for such a revision's pod. Above
        ``max-scale`` is refused: the cap in stack.yml is deliberate (surveillance merges
        alerts per instance).
        """
        spec = self._spec(name)
        cap = spec.scaling.max_scale
        if cap and replicas > cap:
            raise Conflict(f"replicas = {replicas} is above {KNATIVE}max-scale = {cap} of "
                           f"{name}: raise max-scale in stack.yml and deploy again")
        bounds = {MIN_SCALE: str(replicas), INITIAL_SCALE: str(replicas)}
        ann = {**spec.annotations, **bounds}
        patch = {"spec": {"template": {"metadata": {"annotations": bounds}}}}
        try:
            await asyncio.to_thread(self._custom.patch_namespaced_custom_object, KSVC_GROUP,
                                    KSVC_VERSION, self.config.namespace, KSVC_PLURAL, name, patch)
        except _api_exception() as e:
            if e.status == 404:
                raise FunctionNotFound(f"function {name!r} has no Knative Service "
                                       f"in namespace {self.config.namespace}") from None
            raise
        self._functions[name] = spec.replace(
            annotations=ann, scaling=scaling_from(spec.labels, ann, spec.environment))
        await self.refresh(name)

    def instances(self, name: str) -> list[Instance]:
        """Pods of the latest ready revision as last polled (not dead)."""
        return [i for i in self._instances.get(name, []) if i.state != DEAD]

    def url(self, name: str) -> str | None:
        """The Service's cluster-local URL; valid at zero pods too (Knative's activator holds)."""
        return self._urls.get(name)

    def logs(self, name: str) -> list[LogLine]:
        """The function's log lines as last read by ``read_logs``, oldest first."""
        self._spec(name)
        return list(self._logs.get(name, ()))

    async def read_logs(self, name: str) -> list[LogLine]:
        """Read the function container's log of each pod of the latest ready revision
        (the API's ``pods/log``, which the chart's Role grants), oldest first. Lines of
        pods that have gone since (scaled to zero) stay from the last read."""
        self._spec(name)
        present, fresh = await asyncio.to_thread(self._read_pod_logs, name)
        kept = [ln for ln in self._logs.get(name, ()) if ln.instance not in present]
        lines = sorted(kept + fresh, key=lambda ln: ln.timestamp)[-LOG_KEEP_LINES:]
        self._logs[name] = lines
        return list(lines)

    async def close(self) -> None:
        """Stop polling; the Services stay (they belong to the cluster, not to us)."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    # -- cluster state ----------------------------------------------------------------
    async def refresh(self, name: str) -> None:
        """Re-read one Service's status and its latest ready revision's pods."""
        ksvc, pods = await asyncio.to_thread(self._read_state, name)
        if ksvc is None:
            return
        url = (ksvc.get("status") or {}).get("address", {}).get("url")
        if url:
            self._urls[name] = url
        mono, wall = self._clock(), datetime.datetime.now(datetime.timezone.utc)
        new = [pod_instance(p, name, url or "", mono, wall) for p in pods]
        old = [(i.id, i.state) for i in self._instances.get(name, [])]
        self._instances[name] = new
        if old != [(i.id, i.state) for i in new]:
            self.on_change(name)

    def _read_state(self, name: str) -> tuple[dict | None, list[Any]]:
        try:
            ksvc = self._custom.get_namespaced_custom_object(
                KSVC_GROUP, KSVC_VERSION, self.config.namespace, KSVC_PLURAL, name)
        except _api_exception() as e:
            if e.status == 404:
                return None, []
            raise
        revision = (ksvc.get("status") or {}).get("latestReadyRevisionName")
        if not revision:
            return ksvc, []
        pods = self._core.list_namespaced_pod(
            self.config.namespace, label_selector=f"{REVISION_LABEL}={revision}")
        return ksvc, list(pods.items)

    def _read_pod_logs(self, name: str) -> tuple[set[str], list[LogLine]]:
        _, pods = self._read_state(name)
        present, lines = set(), []
        for pod in pods:
            pod_name = pod.metadata.name
            present.add(pod_name)
            for c in pod.spec.containers or ():
                if c.name == QUEUE_PROXY:
                    continue
                try:
                    text = self._core.read_namespaced_pod_log(
                        pod_name, self.config.namespace, container=c.name, timestamps=True,
                        tail_lines=LOG_TAIL_LINES)
                except _api_exception() as e:
                    if e.status in (400, 404):  # not started yet, or just deleted
                        continue
                    raise
                lines += [pod_log_line(raw, pod_name) for raw in (text or "").splitlines()]
        return present, lines

    def _create_or_replace(self, name: str, body: dict) -> None:
        ns = self.config.namespace
        try:
            self._custom.create_namespaced_custom_object(KSVC_GROUP, KSVC_VERSION, ns,
                                                         KSVC_PLURAL, body)
            return
        except _api_exception() as e:
            if e.status != 409:
                raise
        current = self._custom.get_namespaced_custom_object(KSVC_GROUP, KSVC_VERSION, ns,
                                                            KSVC_PLURAL, name)
        labels = current["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/managed-by") == "Helm":
            # The chart installed it: Helm owns it, we only route and observe. The
            # gateway's own stack.yml (the chart's) names it at start: adopt it then;
            # a later deploy (faas-cli deploy) would be silently lost, so refuse it.
            if name in self._adopted:
                release = (current["metadata"].get("annotations") or {}).get(
                    "meta.helm.sh/release-name", "?")
                raise Conflict(f"function {name} is managed by Helm (release {release}): "
                               "change its values and run helm upgrade; the gateway does not "
                               "overwrite what Helm installed")
            self._adopted.add(name)
            log.info("knative: %s is managed by Helm, adopting it unchanged", name)
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        # Knative's webhook stamps serving.knative.dev/creator (and lastModifier) and
        # refuses a replace that drops the creator: "annotation value is immutable".
        kept = {k: v for k, v in (current["metadata"].get("annotations") or {}).items()
                if k.startswith(KNATIVE_STAMPS)}
        if kept:
            body["metadata"]["annotations"] = {**kept, **(body["metadata"].get("annotations") or {})}
        self._custom.replace_namespaced_custom_object(KSVC_GROUP, KSVC_VERSION, ns,
                                                      KSVC_PLURAL, name, body)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval_s)
            for name in list(self._functions):
                try:
                    await self.refresh(name)
                except Exception as e:  # a flaky API server must not kill the loop
                    log.warning("knative: refreshing %s failed: %s", name, e)

    def _spec(self, name: str) -> FunctionSpec:
        if name not in self._functions:
            raise FunctionNotFound(f"function {name!r} is not deployed")
        return self._functions[name]

    def _forget(self, name: str) -> None:
        self._functions.pop(name, None)
        self._adopted.discard(name)
        self._urls.pop(name, None)
        self._instances.pop(name, None)
        self._logs.pop(name, None)
