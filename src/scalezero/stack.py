"""``stack.yml`` (OpenFaaS stack format v1.0) into immutable ``FunctionSpec``s.

Scaling settings come from OpenFaaS labels or Knative annotations through one
table, ``SCALING_KEYS``; the same table feeds the local autoscaler and the Helm
values (``scalezero chart-values``), so a function scales the same way in both.
"""

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from scalezero.errors import ConfigError
from scalezero.units import parse_duration

DEFAULT_NAMESPACE = "openfaas-fn"  # OpenFaaS's function namespace: the one a gateway serves
KNATIVE = "autoscaling.knative.dev/"
SCALEZERO = "scalezero.dev/"
# A function name is a DNS-1123 label: it becomes a host name, a Kubernetes
# object name and a folder under functions/, so nothing else may get through.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# faas-cli's envsubst (drone/envsubst): $$, ${V}, ${V-d}, ${V:-d}, ${V=d}, ${V:=d}, $V.
_ENVSUBST_RE = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# A secret name becomes a file name under /var/openfaas/secrets: no '/', no leading dot.
SECRET_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# Languages whose handler.py the runtime serves unchanged (the templates' own, and ours
# from template/scalezero-python); any other lang needs a Dockerfile in its handler folder.
PYTHON_LANGS = frozenset({"python3-http", "python3-http-debian", "python3-flask",
                          "python3-flask-debian", "python3", "python3-debian", "python"})
RUNTIME_LANGS = PYTHON_LANGS | {"scalezero-python"}
# stack.yml keys faas-cli knows (go-sdk stack/schema.go); anything else is warned about.
TOP_KEYS = frozenset({"version", "provider", "functions", "configuration"})
PROVIDER_KEYS = frozenset({"name", "gateway", "network"})
FUNCTION_KEYS = frozenset({
    "lang", "handler", "image", "fprocess", "environment", "environment_file", "secrets",
    "skip_build", "constraints", "labels", "annotations", "limits", "requests",
    "readonly_root_filesystem", "build_options", "build_args", "build_secrets", "namespace",
    "platforms"})
# Fields that only faas-cli build/publish reads: no effect on a running function.
BUILD_ONLY = ("skip_build", "build_options", "build_args", "build_secrets", "platforms")
# Kubernetes' rule for environment variable names; '=' or a NUL byte can never reach execve.
ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid function name, else raise ConfigError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            f"function name {name!r} is invalid: use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
        )
    return name


@dataclass(frozen=True)
class ScalingSettings:
    """Per-function autoscaling settings; defaults are Knative's (knative-notes §1.2)."""

    metric: str = "concurrency"  # what the target counts: "concurrency" or "rps"
    target: float | None = None  # per-instance target; None = cc, or 100 (concurrency) / 200 (rps)
    target_utilization: float = 0.7  # fraction of the target to aim for
    container_concurrency: int = 0  # hard in-flight limit per instance (max_inflight); 0 = none
    target_burst_capacity: float = 211.0  # Knative TBC: -1 = activator always in path
    min_scale: int = 0  # never fewer instances than this
    max_scale: int = 0  # never more instances than this; 0 = unlimited
    # Knative's default is 1; we register functions at zero (our Knative config sets
    # allow-zero-initial-scale too, so both backends start the same way).
    initial_scale: int = 0  # instances started at deploy
    activation_scale: int = 1  # instances started when scaling up from zero
    stable_window_s: float = 60.0  # averaging window for normal decisions
    panic_window_pct: float = 10.0  # panic window as a percentage of the stable window
    panic_threshold_pct: float = 200.0  # panic when desired/ready exceeds this
    max_scale_up_rate: float = 1000.0  # at most ready * rate after one decision
    max_scale_down_rate: float = 2.0  # at least ready / rate after one decision
    scale_down_delay_s: float = 0.0  # keep the max desired over this window before going down
    scale_to_zero_grace_s: float = 30.0  # Knative global: wait after the last request before 0
    scale_to_zero_retention_s: float = 0.0  # keep the last instance at least this long
    enable_scale_to_zero: bool = True  # False: never below one instance

    def __post_init__(self):
        _validate_scaling(self)


def _validate_scaling(s: ScalingSettings) -> None:
    checks = [
        (s.metric in ("concurrency", "rps"), "metric", "must be concurrency or rps"),
        (s.target is None or s.target >= 0.01, "target", "must be >= 0.01"),
        (0 < s.target_utilization <= 1, "target_utilization", "must be in (0, 1]"),
        (s.container_concurrency >= 0, "container_concurrency", "must be >= 0"),
        (s.target_burst_capacity >= 0 or s.target_burst_capacity == -1,
         "target_burst_capacity", "must be >= 0 or -1"),
        (s.min_scale >= 0, "min_scale", "must be >= 0"),
        (s.max_scale >= 0, "max_scale", "must be >= 0 (0 = unlimited)"),
        (s.max_scale == 0 or s.min_scale <= s.max_scale, "min_scale", "must be <= max_scale"),
        (s.initial_scale >= 0, "initial_scale", "must be >= 0"),
        (s.activation_scale >= 1, "activation_scale", "must be >= 1"),
        (1 <= s.stable_window_s <= 3600, "stable_window_s", "must be in [1s, 1h]"),
        (1 <= s.panic_window_pct <= 100, "panic_window_pct", "must be in [1, 100]"),
        (110 <= s.panic_threshold_pct <= 1000, "panic_threshold_pct", "must be in [110, 1000]"),
        (s.max_scale_up_rate > 1, "max_scale_up_rate", "must be > 1"),
        (s.max_scale_down_rate > 1, "max_scale_down_rate", "must be > 1"),
        (0 <= s.scale_down_delay_s <= 3600, "scale_down_delay_s", "must be in [0, 1h]"),
        (s.scale_to_zero_grace_s > 0, "scale_to_zero_grace_s", "must be > 0"),
        (s.scale_to_zero_retention_s >= 0, "scale_to_zero_retention_s", "must be >= 0"),
    ]
    for ok, name, rule in checks:
        if not ok:
            raise ConfigError(f"{name} = {getattr(s, name)!r}, {rule}")


def _int(v: str) -> int:
    return int(float(v))


def _percentage(v: str) -> float:
    """Knative's target-utilization-percentage: 70 means 0.7 (Knative accepts 1 to 100)."""
    pct = float(v)
    if not 1 <= pct <= 100:
        raise ConfigError(f"{pct:g} is not a percentage in [1, 100] (70 aims at 70 % of target)")
    return pct / 100


def _fraction(v: str) -> float:
    """OpenFaaS's target-proportion: a fraction of the target, 0.7 means 70 %."""
    return float(v)


def _scale_type(v: str) -> str:
    kinds = {"capacity": "concurrency", "rps": "rps", "concurrency": "concurrency"}
    if v not in kinds:
        raise ConfigError(f"com.openfaas.scale.type = {v!r}, must be capacity or rps")
    return kinds[v]


def _bool(v: str) -> bool:
    return str(v).lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ScalingKey:
    """One row of the mapping: a setting, its Knative annotation and OpenFaaS label."""

    field: str
    knative: str | None  # annotation key (full), or None
    openfaas: str | None  # label key, or None
    parse: Callable[[str], Any]  # the annotation's (and by default the label's) text to a value
    to_knative: Callable[[Any], str] = str
    # The label's parser where its unit differs from the annotation's (fraction vs percent).
    parse_openfaas: Callable[[str], Any] | None = None

    def parser(self, key: str) -> Callable[[str], Any]:
        """The parser of one key of this row, ``knative`` or ``openfaas``."""
        if key == self.openfaas and self.parse_openfaas is not None:
            return self.parse_openfaas
        return self.parse


def _seconds(v: float) -> str:
    return f"{int(v)}s" if float(v).is_integer() else f"{int(v * 1000)}ms"


def _number(field: str, knative: str, openfaas: str | None = None) -> ScalingKey:
    """A row whose value is a plain number (``5``, ``2.5``) in both directions."""
    return ScalingKey(field, knative, openfaas, float, lambda v: f"{v:g}")


def _duration(field: str, knative: str, openfaas: str | None = None) -> ScalingKey:
    """A row whose value is a duration: ``6s``, ``500ms`` or seconds in, ``6s`` out."""
    return ScalingKey(field, knative, openfaas, parse_duration, _seconds)


# The one table. Knative annotations win over OpenFaaS labels when both are given.
SCALING_KEYS: tuple[ScalingKey, ...] = (
    ScalingKey("metric", KNATIVE + "metric", "com.openfaas.scale.type", _scale_type),
    _number("target", KNATIVE + "target", "com.openfaas.scale.target"),
    ScalingKey("target_utilization", KNATIVE + "target-utilization-percentage",
               "com.openfaas.scale.target-proportion", _percentage, lambda v: f"{v * 100:g}",
               parse_openfaas=_fraction),
    _number("target_burst_capacity", KNATIVE + "target-burst-capacity"),
    ScalingKey("min_scale", KNATIVE + "min-scale", "com.openfaas.scale.min", _int),
    ScalingKey("max_scale", KNATIVE + "max-scale", "com.openfaas.scale.max", _int),
    ScalingKey("initial_scale", KNATIVE + "initial-scale", None, _int),
    ScalingKey("activation_scale", KNATIVE + "activation-scale", None, _int),
    _duration("stable_window_s", KNATIVE + "window", "com.openfaas.scale.down.window"),
    _number("panic_window_pct", KNATIVE + "panic-window-percentage"),
    _number("panic_threshold_pct", KNATIVE + "panic-threshold-percentage"),
    _duration("scale_down_delay_s", KNATIVE + "scale-down-delay"),
    _duration("scale_to_zero_retention_s", KNATIVE + "scale-to-zero-pod-retention-period",
              "com.openfaas.scale.zero-duration"),
    # Global settings in Knative (config-autoscaler); per function here, for tests and demos.
    _duration("scale_to_zero_grace_s", SCALEZERO + "scale-to-zero-grace-period"),
    _number("max_scale_up_rate", SCALEZERO + "max-scale-up-rate"),
    _number("max_scale_down_rate", SCALEZERO + "max-scale-down-rate"),
    ScalingKey("enable_scale_to_zero", SCALEZERO + "enable-scale-to-zero", None, _bool,
               lambda v: str(v).lower()),
)


def scaling_from(labels: dict[str, str], annotations: dict[str, str],
                 environment: dict[str, str]) -> ScalingSettings:
    """Build ScalingSettings from a function's labels, annotations and environment."""
    values: dict[str, Any] = {}
    for key in SCALING_KEYS:
        for source, k in ((labels, key.openfaas), (annotations, key.knative)):
            if k and k in source:
                try:
                    values[key.field] = key.parser(k)(source[k])
                except (ValueError, ConfigError) as e:
                    raise ConfigError(f"{k} = {source[k]!r}: {e}") from None
    if "max_inflight" in environment:
        values["container_concurrency"] = _int(environment["max_inflight"])
    return ScalingSettings(**values)


# Knative's webhook (pkg/apis/autoscaling/annotation_validation.go) is stricter than
# the local platform, which allows 1 s windows for tests and benchmarks: these are
# its rules for the duration annotations, checked before anything reaches a cluster.
KNATIVE_DURATIONS = (
    ("stable_window_s", KNATIVE + "window", 6.0, 3600.0, True),
    ("scale_down_delay_s", KNATIVE + "scale-down-delay", 0.0, 3600.0, True),
    ("scale_to_zero_retention_s", KNATIVE + "scale-to-zero-pod-retention-period", 0.0, 3600.0,
     False),
)


def check_knative(s: ScalingSettings) -> None:
    """Raise ConfigError for a setting Knative's webhook would reject, naming the rule."""
    for name, key, low, high, whole in KNATIVE_DURATIONS:
        v = getattr(s, name)
        if not low <= v <= high:
            raise ConfigError(f"{key} = {_seconds(v)}, Knative needs it in "
                              f"[{_seconds(low)}, {_seconds(high)}]")
        if whole and not float(v).is_integer():
            raise ConfigError(f"{key} = {_seconds(v)}, Knative needs whole seconds")


def scaling_annotations(s: ScalingSettings) -> dict[str, str]:
    """Knative annotations for every setting that differs from its default.

    Raises ConfigError for values Knative would reject (``check_knative``).
    """
    check_knative(s)
    default = ScalingSettings()
    out = {}
    for key in SCALING_KEYS:
        value = getattr(s, key.field)
        if key.knative and value is not None and value != getattr(default, key.field):
            out[key.knative] = key.to_knative(value)
    return out


@dataclass(frozen=True)
class FunctionSpec:
    """One function of stack.yml, validated."""

    name: str  # DNS-1123 label
    handler: Path  # folder holding handler.py
    image: str = ""  # container image name (faas-cli build/push, docker and knative backends)
    lang: str = "python3-http"  # template name; informational here
    namespace: str = DEFAULT_NAMESPACE  # OpenFaaS namespace
    environment: dict[str, str] = field(default_factory=dict)  # env of every instance
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)  # memory, cpu, nvidia.com/gpu
    requests: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # names; read at /var/openfaas/secrets/<name>
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    constraints: dict[str, str] = field(default_factory=dict)  # node selector (Kubernetes)
    build_args: dict[str, str] = field(default_factory=dict)  # docker build --build-arg
    readonly_root_filesystem: bool = False  # docker --read-only; Kubernetes securityContext
    fprocess: str = ""  # OpenFaaS watchdog command; the scalezero runtime ignores it

    def replace(self, **changes) -> "FunctionSpec":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Stack:
    gateway: str  # provider.gateway, or the default local gateway
    functions: dict[str, FunctionSpec]
    path: Path | None = None
    warnings: tuple[str, ...] = ()  # unknown keys, each named (see also ignored_fields)


def ignored_fields(spec: FunctionSpec, backend: str, *, fprocess: bool = True) -> list[str]:
    """Warnings for the fields of ``spec`` that have no effect on ``backend``.

    ``backend`` is process, docker or knative. Build-only fields (``BUILD_ONLY``) never
    act at run time: ``parse_stack`` warns about those whatever the backend.
    ``fprocess=False`` leaves out the fprocess warning.
    """
    where = f"functions.{spec.name}"
    out = []
    if spec.constraints and backend != "knative":
        out.append(f"{where}.constraints: node selectors apply on Kubernetes only; "
                   f"ignored by the {backend} backend")
    if spec.readonly_root_filesystem and backend == "process":
        out.append(f"{where}.readonly_root_filesystem: needs an image (docker or knative "
                   f"backend); ignored by the process backend")
    if fprocess and spec.fprocess:
        out.append(f"{where}.fprocess: the scalezero runtime serves handler.py itself; "
                   f"fprocess is ignored")
    return out


def _strmap(value: Any, what: str) -> dict[str, str]:
    """yaml.v3 decodes these into map[string]string: stringify scalars as faas-cli does."""
    if value is None:
        return {}
    if isinstance(value, list):  # build_args' list form: ["K=V"]
        bad = [item for item in value if "=" not in str(item)]
        if bad:
            raise ConfigError(f"{what}: {bad[0]!r} is not KEY=VALUE (the list form)")
        value = dict(str(item).split("=", 1) for item in value)
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping of strings, got {type(value).__name__}")
    return {str(k): _scalar(v) for k, v in value.items()}


def check_environment(env: dict[str, str], what: str) -> dict[str, str]:
    """``env`` if every name and value can be an instance's environment, else ConfigError."""
    for key, value in env.items():
        if not ENV_NAME_RE.match(key):
            raise ConfigError(f"{what}: name {key!r} is invalid: use letters, digits, '_', "
                              "'-' and '.', not starting with a digit (no '=' or spaces)")
        if "\0" in value:
            raise ConfigError(f"{what}.{key}: the value holds a NUL byte, which no process "
                              "environment can carry")
    return env


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return str(int(v))
    return str(v)


def envsubst(text: str, env: dict[str, str]) -> str:
    """faas-cli's substitution over the raw file (drone/envsubst rules).

    ``$$`` is a literal ``$``; ``${V-d}``/``${V=d}`` use d when V is unset,
    ``${V:-d}``/``${V:=d}`` when V is unset or empty; ``${V}`` and ``$V`` the value or "".
    """
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(4):
            return env.get(m.group(4), "")
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op and (value is None or (op.startswith(":") and value == "")):
            return default
        return value or ""
    return _ENVSUBST_RE.sub(one, text)


def _unknown(keys, known: frozenset, where: str) -> list[str]:
    return [f"{where}{k}: unknown key, ignored (faas-cli's stack format has no such field)"
            for k in keys if str(k) not in known]


def _secrets(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"functions.{name}.secrets = {value!r}, must be a list of secret "
                          f"names (secrets: [{value}])")
    for s in value:
        if not isinstance(s, str) or not SECRET_NAME_RE.match(s):
            raise ConfigError(f"functions.{name}.secrets: {s!r} is not a secret name (lower-case "
                              "letters, digits, '-' and '.', starting and ending with a "
                              "letter or digit)")
    return tuple(value)


def _constraints(value: Any, name: str) -> dict[str, str]:
    """``["key=value"]`` (or Swarm's ``key == value``) into a node selector."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ConfigError(f"functions.{name}.constraints must be a list like [\"gpu=true\"]")
    out = {}
    for c in value:
        key, sep, val = str(c).replace("==", "=").partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ConfigError(f"functions.{name}.constraints: {c!r}, must be key=value")
        out[key.strip()] = val.strip()
    return out


def _environment_files(value: Any, name: str, base: Path) -> dict[str, str]:
    """faas-cli's environment_file: YAML files with an ``environment:`` map, later wins."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ConfigError(f"functions.{name}.environment_file must be a list of file names")
    out: dict[str, str] = {}
    for item in value:
        path = base / str(item)
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"functions.{name}.environment_file: cannot read {path}: "
                              f"{e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"functions.{name}.environment_file: {path} is not YAML: {e}") \
                from None
        env = doc.get("environment") if isinstance(doc, dict) else None
        if not isinstance(env, dict):
            raise ConfigError(f"functions.{name}.environment_file: {path} must hold an "
                              "'environment:' mapping")
        out.update(_strmap(env, f"{path}: environment"))
    return out


def _check_lang(name: str, lang: str, handler: Path) -> None:
    if lang.lower() in RUNTIME_LANGS or (handler / "Dockerfile").is_file():
        return
    raise ConfigError(
        f"functions.{name}.lang = {lang!r}: scalezero runs Python handlers "
        f"({', '.join(sorted(RUNTIME_LANGS))}); any other lang needs a Dockerfile in "
        f"{handler} (lang: dockerfile) to build its image")


def function_from(name: str, raw: dict, base: Path) -> FunctionSpec:
    """One function entry of stack.yml (or of a deploy request) into a FunctionSpec."""
    check_name(name)
    if not isinstance(raw, dict):
        raise ConfigError(f"functions.{name} must be a mapping")
    env = check_environment(
        {**_strmap(raw.get("environment"), f"functions.{name}.environment"),
         **_environment_files(raw.get("environment_file"), name, base)},
        f"functions.{name}.environment")
    labels = _strmap(raw.get("labels"), f"functions.{name}.labels")
    annotations = _strmap(raw.get("annotations"), f"functions.{name}.annotations")
    handler = (base / str(raw.get("handler", f"./functions/{name}"))).resolve()
    lang = str(raw.get("lang", "python3-http"))
    _check_lang(name, lang, handler)
    return FunctionSpec(
        name=name,
        handler=handler,
        image=str(raw.get("image", "")),
        lang="dockerfile" if lang.lower() == "dockerfile" else lang,
        namespace=str(raw.get("namespace") or DEFAULT_NAMESPACE),
        environment=env,
        labels=labels,
        annotations=annotations,
        limits=_strmap(raw.get("limits"), f"functions.{name}.limits"),
        requests=_strmap(raw.get("requests"), f"functions.{name}.requests"),
        secrets=_secrets(raw.get("secrets"), name),
        scaling=scaling_from(labels, annotations, env),
        constraints=_constraints(raw.get("constraints"), name),
        build_args=_strmap(raw.get("build_args"), f"functions.{name}.build_args"),
        readonly_root_filesystem=_bool(raw.get("readonly_root_filesystem", False)),
        fprocess=str(raw.get("fprocess") or ""),
    )


def parse_stack(text: str, base: Path, env: dict[str, str] | None = None) -> Stack:
    """Parse stack.yml text; relative handler paths resolve against ``base``."""
    try:
        doc = yaml.safe_load(envsubst(text, dict(os.environ if env is None else env)))
    except yaml.YAMLError as e:
        raise ConfigError(f"stack file is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("stack file must be a mapping with provider and functions")
    version = doc.get("version")
    if version is not None and _scalar(version) not in ("1", "1.0"):
        raise ConfigError(f"version = {version!r}, must be 1.0")
    provider = doc.get("provider") or {}
    if provider.get("name") != "openfaas":
        raise ConfigError("provider.name must be openfaas (the OpenFaaS stack format)")
    functions = doc.get("functions") or {}
    if not isinstance(functions, dict):
        raise ConfigError("functions must be a mapping of name to function")
    specs = {str(n): function_from(str(n), f, base) for n, f in functions.items()}
    return Stack(gateway=str(provider.get("gateway", "http://127.0.0.1:8080")),
                 functions=specs, warnings=tuple(_stack_warnings(doc)))


def stack_warnings(stack: Stack, backend: str) -> list[str]:
    """Every warning for ``stack`` run on ``backend``: unknown keys, then ignored fields."""
    out = list(stack.warnings)
    for spec in stack.functions.values():
        out += ignored_fields(spec, backend)
    return out


def _stack_warnings(doc: dict) -> list[str]:
    out = _unknown(doc, TOP_KEYS, "")
    out += _unknown(doc.get("provider") or {}, PROVIDER_KEYS, "provider.")
    if doc.get("configuration"):
        out.append("configuration: templates and copy are read by faas-cli build only; "
                   "no effect on scalezero")
    for name, raw in (doc.get("functions") or {}).items():
        out += _unknown(raw, FUNCTION_KEYS, f"functions.{name}.")
        out += [f"functions.{name}.{k}: read when building the image (faas-cli build); no "
                f"effect on the running function" for k in BUILD_ONLY if k in raw]
    return out


# The stack files faas-cli 0.18 picks when -f is not given, in its order (commands/faas.go
# checkAndSetDefaultYaml): `faas-cli new` writes stack.yaml; older faas-cli wrote stack.yml.
DEFAULT_STACK_FILES = ("stack.yaml", "stack.yml")
STACK_FILE_HELP = "stack file (default: stack.yaml, else stack.yml, as faas-cli picks)"


def default_stack_file(folder: Path | None = None) -> Path:
    """The stack file faas-cli would read in ``folder`` (default the working directory):
    the first of DEFAULT_STACK_FILES that exists, else stack.yml (so the error names it)."""
    base = Path(".") if folder is None else folder
    return next((base / n for n in DEFAULT_STACK_FILES if (base / n).is_file()),
                base / DEFAULT_STACK_FILES[-1])


def load_stack(path: str | Path | None, env: dict[str, str] | None = None) -> Stack:
    """Read and parse a stack file (``${VAR}`` from ``env``, default os.environ);
    ``None``: ``default_stack_file()``."""
    p = default_stack_file() if path is None else Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read stack file {p}: {e.strerror}") from None
    stack = parse_stack(text, p.parent.resolve(), env)
    return dataclasses.replace(stack, path=p.resolve())
