"""The environment a local instance starts with: an allow-list, never the gateway's own.

The gateway's environment holds its credentials and settings
(``SCALEZERO_PASSWORD``, ``SCALEZERO_*``, whatever else the operator exported).
An instance runs the function's code, so it gets only what a process needs to
run (``PATH``, ``HOME``, locale, time zone, temp dir), the ``PYTHONPATH`` the
runtime itself may need (a source checkout), and the function's own
environment (``function_environment``: stack.yml or the deploy's ``envVars``,
plus the runtime knobs from annotations and limits). A container on the docker
or knative backend starts from its image's environment in the same way.

Interpreter-control variables (``PYTHON*``, ``LD_*``) decide what code the
interpreter loads before the handler (``PYTHONPATH`` + ``sitecustomize.py``,
``LD_PRELOAD``): from the API they are refused unless the operator started
``scalezero up --allow-interpreter-env``; stack.yml, which the operator wrote,
may set them.
"""

from typing import Mapping

from scalezero.backends.base import function_environment
from scalezero.errors import BadRequest
from scalezero.stack import FunctionSpec

PASSED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                    "PYTHONPATH"})  # PYTHONPATH: the runtime may run from a source checkout
PASSED_PREFIXES = ("LC_",)
INTERPRETER_CONTROL = ("PYTHON", "LD_")


def instance_environment(spec: FunctionSpec, gateway_env: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of one local instance (or pre-fork template) of ``spec``."""
    base = {k: v for k, v in gateway_env.items()
            if k in PASSED or k.startswith(PASSED_PREFIXES)}
    return {**base, **function_environment(spec), "PYTHONUNBUFFERED": "1"}


def check_api_environment(env: Mapping[str, str], allow_interpreter_env: bool) -> None:
    """Refuse interpreter-control variables in a deploy through the API (400 naming the key)."""
    if allow_interpreter_env:
        return
    for key in env:
        if key.upper().startswith(INTERPRETER_CONTROL):
            raise BadRequest(
                f"envVars.{key}: PYTHON* and LD_* variables control what the interpreter loads "
                "and are refused from the API; set them in stack.yml, or start the gateway with "
                "scalezero up --allow-interpreter-env")

