"""A function as a Knative Service manifest (``serving.knative.dev/v1``).

The Helm chart's ``templates/ksvc.yaml`` renders the same shape from values;
both take the autoscaling annotations from ``scalezero.stack.scaling_annotations``
(the table the local autoscaler uses), so a function scales alike everywhere.
"""

from dataclasses import dataclass

from scalezero.backends.base import function_environment
from scalezero.errors import ConfigError
from scalezero.stack import FunctionSpec, scaling_annotations

KSVC_GROUP, KSVC_VERSION, KSVC_PLURAL = "serving.knative.dev", "v1", "services"
READY_PATH = "/_/ready"


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

    def __post_init__(self):
        if self.timeout_seconds < 1:
            raise ConfigError(f"timeout_seconds = {self.timeout_seconds}, must be >= 1")
        if not 0 < self.response_start_timeout_seconds <= self.timeout_seconds:
            raise ConfigError(f"response_start_timeout_seconds = "
                              f"{self.response_start_timeout_seconds}, must be in [1, timeout_seconds]")


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
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    res = resources(spec)
    if res:
        c["resources"] = res
    return c


def ksvc_manifest(spec: FunctionSpec, namespace: str, opts: KsvcOptions = KsvcOptions()) -> dict:
    """The Knative Service for one function."""
    labels = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "scalezero",
              "app.kubernetes.io/managed-by": "scalezero"}
    annotations = {**scaling_annotations(spec.scaling),
                   "serving.knative.dev/progress-deadline": opts.progress_deadline}
    return {
        "apiVersion": f"{KSVC_GROUP}/{KSVC_VERSION}",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": labels},
        "spec": {"template": {
            "metadata": {"labels": dict(labels), "annotations": annotations},
            "spec": {
                "containerConcurrency": spec.scaling.container_concurrency,
                "timeoutSeconds": opts.timeout_seconds,
                "responseStartTimeoutSeconds": opts.response_start_timeout_seconds,
                "containers": [container(spec, opts)],
            },
        }},
    }
