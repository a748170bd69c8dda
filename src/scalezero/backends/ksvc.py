"""A function as a Knative Service manifest (``serving.knative.dev/v1``).

The Helm chart's ``templates/ksvc.yaml`` renders the same shape from values;
both take the autoscaling annotations from ``scalezero.stack.scaling_annotations``
(the table the local autoscaler uses), so a function scales alike everywhere,
add the ``scalezero.dev/`` event annotations, and mount the data volume where
the function's environment points into it.
"""

from dataclasses import dataclass, field

from scalezero.backends.base import function_environment
from scalezero.errors import ConfigError
from scalezero.secrets import SECRETS_DIR
from scalezero.stack import SCALEZERO, FunctionSpec, scaling_annotations

KSVC_GROUP, KSVC_VERSION, KSVC_PLURAL = "serving.knative.dev", "v1", "services"
READY_PATH = "/_/ready"
DATA_DIR = "/data"  # the chart's data.mountPath default
# Annotations the gateway reads for event subscriptions (README "Event-driven pipelines");
# Knative ignores them, and on the Service they say what the function subscribes to.
EVENT_ANNOTATIONS = tuple(SCALEZERO + k for k in (
    "trigger", "s3-bucket", "s3-prefix", "s3-suffix", "s3-events", "cloudevent-type",
    "cloudevent-source", "event-path"))


@dataclass(frozen=True)
class KsvcOptions:
    """Cluster-wide settings of every function's Knative Service."""

    # Above the slowest cold start plus one inference: Knative fails a request
    # that waits longer, however long the pod takes to become ready.
    timeout_seconds: int = 300  # spec.template.spec.timeoutSeconds
    response_start_timeout_seconds: int = 300  # time to the first response byte
    progress_deadline: str = "900s"  # image pull + model load before a revision fails
    image_pull_policy: str = "IfNotPresent"  # kind-loaded images are never pulled
    port: int = 8080  # the runtime's port in every image
    data_dir: str = DATA_DIR  # where the data volume is mounted (stack.yml's ${SCALEZERO_DATA})
    # Knative allows emptyDir without feature flags; a shared volume needs them.
    data_volume: dict = field(default_factory=lambda: {"emptyDir": {}})

    def __post_init__(self):
        if self.timeout_seconds < 1:
            raise ConfigError(f"timeout_seconds = {self.timeout_seconds}, must be >= 1")
        if not 0 < self.response_start_timeout_seconds <= self.timeout_seconds:
            raise ConfigError(f"response_start_timeout_seconds = "
                              f"{self.response_start_timeout_seconds}, must be in [1, timeout_seconds]")


def event_annotations(spec: FunctionSpec) -> dict[str, str]:
    """The function's ``scalezero.dev/`` event subscription annotations."""
    return {k: v for k, v in spec.annotations.items() if k in EVENT_ANNOTATIONS}


def template_annotations(spec: FunctionSpec) -> dict[str, str]:
    """Scaling (Knative-checked) and event annotations of the revision template."""
    return {**scaling_annotations(spec.scaling), **event_annotations(spec)}


def uses_data(spec: FunctionSpec, data_dir: str = DATA_DIR) -> bool:
    """True if the function's environment points into the data volume."""
    root = data_dir.rstrip("/") + "/"
    return any(v == data_dir or v.startswith(root) for v in spec.environment.values())


def resources(spec: FunctionSpec) -> dict:
    """stack.yml limits/requests as container resources (``nvidia.com/gpu`` passes through)."""
    out = {}
    if spec.limits:
        out["limits"] = dict(spec.limits)
    if spec.requests:
        out["requests"] = dict(spec.requests)
    return out


def container(spec: FunctionSpec, opts: KsvcOptions) -> dict:
    if not spec.image:
        raise ConfigError(f"functions.{spec.name}.image is empty: the knative backend runs images")
    c = {
        "name": "function",
        "image": spec.image,
        "imagePullPolicy": opts.image_pull_policy,
        "ports": [{"name": "http1", "containerPort": opts.port}],
        "env": [{"name": k, "value": v} for k, v in sorted(function_environment(spec).items())],
        # No periodSeconds: the queue-proxy then probes every 50 ms, so a cold
        # start is routed the moment the model is loaded.
        "readinessProbe": {"httpGet": {"path": READY_PATH}, "successThreshold": 1},
        # seccompProfile: Knative 1.18's webhook warns without it (Kubernetes defaults
        # to Unconfined).
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if spec.readonly_root_filesystem:
        c["securityContext"]["readOnlyRootFilesystem"] = True
    res = resources(spec)
    if res:
        c["resources"] = res
    mounts = [{"name": _secret_volume(s), "readOnly": True, "mountPath": f"{SECRETS_DIR}/{s}",
               "subPath": s} for s in spec.secrets]
    if uses_data(spec, opts.data_dir):
        mounts.append({"name": "data", "mountPath": opts.data_dir})
    if mounts:
        c["volumeMounts"] = mounts
    return c


def _secret_volume(name: str) -> str:
    return f"secret-{name}".replace(".", "-")  # a volume name is a DNS label: no dots


def ksvc_manifest(spec: FunctionSpec, namespace: str, opts: KsvcOptions = KsvcOptions()) -> dict:
    """The Knative Service for one function."""
    labels = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "scalezero",
              "app.kubernetes.io/managed-by": "scalezero"}
    annotations = {**template_annotations(spec),
                   "serving.knative.dev/progress-deadline": opts.progress_deadline}
    pod = {
        "containerConcurrency": spec.scaling.container_concurrency,
        "timeoutSeconds": opts.timeout_seconds,
        "responseStartTimeoutSeconds": opts.response_start_timeout_seconds,
        "containers": [container(spec, opts)],
    }
    if spec.constraints:
        pod["nodeSelector"] = dict(spec.constraints)
    # One Secret volume per name in ``secrets``; each Secret holds the value under a key
    # of the same name (kubectl create secret generic NAME --from-literal=NAME=...).
    volumes = [{"name": _secret_volume(s), "secret": {"secretName": s}} for s in spec.secrets]
    if uses_data(spec, opts.data_dir):
        volumes.append({"name": "data", **opts.data_volume})
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": f"{KSVC_GROUP}/{KSVC_VERSION}",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": labels},
        "spec": {"template": {
            "metadata": {"labels": dict(labels), "annotations": annotations},
            "spec": pod,
        }},
    }
