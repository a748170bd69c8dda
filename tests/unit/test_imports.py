"""Importing a module changes nothing: no backend chosen, no environment written."""

import subprocess
import sys

PROBE = """
import os, sys
import matplotlib
env, backend = dict(os.environ), dict.__getitem__(matplotlib.rcParams, "backend")
import scalezero.loadgen.plot, scalezero.loadgen.report, scalezero.model, scalezero.cli
print(dict(os.environ) == env, dict.__getitem__(matplotlib.rcParams, "backend") == backend,
      "matplotlib.pyplot" in sys.modules)
"""


def test_importing_plot_and_model_has_no_side_effects():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert out.returncode == 0, out.stderr
    env_same, backend_same, pyplot = out.stdout.split()
    assert env_same == "True", "an import wrote os.environ"
    assert backend_same == "True", "an import chose a matplotlib backend"
    assert pyplot == "False", "an import loaded pyplot (global figure state)"


def test_the_gateway_imports_none_of_the_instance_runtime_http_side():
    # The gateway image installs docker/gateway-requirements.txt only: no Flask, no werkzeug.
    probe = ("import sys, scalezero.gateway.app, scalezero.backends.process, "
             "scalezero.backends.docker, scalezero.backends.knative\n"
             "print(sorted(m for m in ('flask', 'werkzeug', 'waitress') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", "the gateway would need the runtime's packages"
