"""stack.yml read as faas-cli reads it (go-sdk stack/schema.go, drone/envsubst).

Reference: /work/shared/ref/openfaas-notes.md §2.4 and openfaas-stack-schema.json.
"""

from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.stack import envsubst, load_stack, parse_stack, stack_warnings


def _stack(functions: str, top: str = "") -> str:
    return f"version: 1.0\nprovider:\n  name: openfaas\n{top}functions:\n{functions}"


@pytest.mark.parametrize("text, env, out", [
    ("${V}", {"V": "x"}, "x"),
    ("${V}", {}, ""),
    ("$V/b", {"V": "a"}, "a/b"),
    ("${V:-d}", {}, "d"),
    ("${V:-d}", {"V": ""}, "d"),
    ("${V:-d}", {"V": "x"}, "x"),
    ("${V-d}", {"V": ""}, ""),
    ("${V=d}", {}, "d"),
    ("${V=d}", {"V": ""}, ""),
    ("${V:=d}", {"V": ""}, "d"),
    ("${V=d}", {"V": "x"}, "x"),
    ("cost: $$5 and $${V}", {"V": "x"}, "cost: $5 and ${V}"),
])
def test_envsubst_follows_drone_envsubst(text, env, out):
    assert envsubst(text, env) == out


def test_environment_file_overrides_inline_and_later_files_win(tmp_path):
    (tmp_path / "a.yml").write_text("environment:\n  A: from-a\n  B: from-a\n  N: 5\n")
    (tmp_path / "b.yml").write_text("environment:\n  B: from-b\n")
    (tmp_path / "stack.yml").write_text(_stack(
        "  f:\n    environment: {A: inline, C: inline}\n"
        "    environment_file: [a.yml, b.yml]\n"))
    spec = load_stack(tmp_path / "stack.yml").functions["f"]
    assert spec.environment == {"A": "from-a", "B": "from-b", "C": "inline", "N": "5"}


def test_environment_file_missing_names_the_file(tmp_path):
    (tmp_path / "stack.yml").write_text(_stack("  f:\n    environment_file: [nope.yml]\n"))
    with pytest.raises(ConfigError, match=r"functions\.f\.environment_file: cannot read .*nope"):
        load_stack(tmp_path / "stack.yml")


def test_secrets_must_be_a_list():
    with pytest.raises(ConfigError, match=r"functions\.f\.secrets = 'api-key', must be a list"):
        parse_stack(_stack("  f:\n    secrets: api-key\n"), Path("/tmp"))
    with pytest.raises(ConfigError, match="not a secret name"):
        parse_stack(_stack("  f:\n    secrets: [../etc]\n"), Path("/tmp"))
    spec = parse_stack(_stack("  f:\n    secrets: [api-key, db.pass]\n"), Path("/tmp"))
    assert spec.functions["f"].secrets == ("api-key", "db.pass")


def test_constraints_become_a_node_selector_and_are_warned_about_locally():
    stack = parse_stack(_stack("  f:\n    constraints: [\"gpu=true\", \"zone == a\"]\n"),
                        Path("/tmp"))
    assert stack.functions["f"].constraints == {"gpu": "true", "zone": "a"}
    local = stack_warnings(stack, "process")
    assert any("functions.f.constraints" in w and "ignored by the process" in w for w in local)
    assert not any("constraints" in w for w in stack_warnings(stack, "knative"))
    with pytest.raises(ConfigError, match=r"constraints: 'gpu', must be key=value"):
        parse_stack(_stack("  f:\n    constraints: [gpu]\n"), Path("/tmp"))


def test_build_args_map_or_list_and_each_build_field_is_warned_about():
    stack = parse_stack(_stack(
        "  f:\n    build_args: {PYTHON_VERSION: 3.12}\n    build_options: [dev]\n"
        "    skip_build: true\n  g:\n    build_args: [ADDITIONAL_PACKAGE=libgl1]\n"),
        Path("/tmp"))
    assert stack.functions["f"].build_args == {"PYTHON_VERSION": "3.12"}
    assert stack.functions["g"].build_args == {"ADDITIONAL_PACKAGE": "libgl1"}
    warned = stack_warnings(stack, "process")
    for field in ("f.build_args", "f.build_options", "f.skip_build", "g.build_args"):
        assert any(w.startswith(f"functions.{field}:") for w in warned), (field, warned)


def test_unknown_keys_are_each_named_in_a_warning():
    stack = parse_stack(_stack("  f:\n    lang: python3-http\n    enviroment: {A: 1}\n"
                               "    fprocess: python index.py\n"
                               "    readonly_root_filesystem: true\n",
                               top="extra: 1\n"), Path("/tmp"))
    warned = stack_warnings(stack, "process")
    assert any(w.startswith("functions.f.enviroment: unknown key") for w in warned), warned
    assert any(w.startswith("extra: unknown key") for w in warned), warned
    assert any(w.startswith("functions.f.fprocess:") for w in warned), warned
    assert any(w.startswith("functions.f.readonly_root_filesystem:") for w in warned), warned
    assert stack.functions["f"].readonly_root_filesystem is True
    assert not any("readonly" in w for w in stack_warnings(stack, "docker"))


@pytest.mark.parametrize("lang", ["python3-http", "python3-flask", "python3", "Python3-HTTP",
                                  "scalezero-python", "python3-http-debian"])
def test_python_langs_are_accepted(lang, tmp_path):
    parse_stack(_stack(f"  f:\n    lang: {lang}\n"), tmp_path)


def test_non_python_lang_without_dockerfile_is_an_error_naming_the_function(tmp_path):
    with pytest.raises(ConfigError, match=r"functions\.hello\.lang = 'node18'.*Dockerfile"):
        parse_stack(_stack("  hello:\n    lang: node18\n    handler: ./hello\n"), tmp_path)
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "Dockerfile").write_text("FROM scratch\n")
    stack = parse_stack(_stack("  hello:\n    lang: node18\n    handler: ./hello\n"), tmp_path)
    assert stack.functions["hello"].lang == "node18"


def test_repo_stack_loads_without_warnings():
    repo = Path(__file__).resolve().parents[2]
    stack = load_stack(repo / "stack.yml")
    assert stack_warnings(stack, "process") == []


def test_without_a_file_name_stack_yaml_then_stack_yml_as_faas_cli_picks(tmp_path, monkeypatch):
    """faas-cli 0.18.12 `new` writes stack.yaml and reads stack.yaml before stack.yml
    (commands/faas.go checkAndSetDefaultYaml); `scalezero up` in that folder must agree."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot read stack file stack\.yml"):
        load_stack(None)
    (tmp_path / "stack.yml").write_text(_stack("  old:\n    lang: python3-http\n"))
    assert list(load_stack(None).functions) == ["old"]
    (tmp_path / "stack.yaml").write_text(_stack("  new:\n    lang: scalezero-python\n"))
    assert list(load_stack(None).functions) == ["new"]
    assert load_stack(None).path == (tmp_path / "stack.yaml").resolve()


@pytest.mark.parametrize("argv", [["up"], ["deploy"], ["chart-values"]])
def test_commands_that_read_a_stack_default_to_faas_clis_choice(argv):
    from scalezero import cli
    args = cli.build_parser(cli.command_of(argv)).parse_args(argv)
    assert args.file is None  # load_stack(None): stack.yaml, else stack.yml
