"""manage.py import_upstreams [--if-empty]: the UPSTREAMS JSON, all or nothing."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from conftest import manage_py
from gatewaysite.tests.adminsite import rows_containing
from upstreams import crypto
from upstreams.models import Upstream

ROOT = Path(__file__).resolve().parents[2]
OPENAI = {
    "name": "openai",
    "provider": "openai",
    "base_url": "https://api.openai.com/v1",
    "api_key": "sk-import-openai-secret-1111",
    "is_default": True,
    "timeout": 120,
}
ANTHROPIC = {
    "name": "anthropic",
    "provider": "anthropic",
    "base_url": "https://api.anthropic.com/v1/",
    "api_key": "sk-ant-import-secret-2222",
}


def _import(settings, value, *args):
    settings.UPSTREAMS = value if isinstance(value, str) else json.dumps(value)
    out = io.StringIO()
    call_command("import_upstreams", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_imports_every_entry_with_its_secret_encrypted(settings):
    out = _import(settings, [OPENAI, ANTHROPIC])
    assert out == "Imported 2 upstream(s); 0 already existed and were left unchanged.\n"
    openai = Upstream.objects.get(name="openai")
    assert (openai.is_default, openai.timeout) == (True, 120)
    assert crypto.decrypt(openai.secret_encrypted) == OPENAI["api_key"]
    assert Upstream.objects.get(name="anthropic").base_url == "https://api.anthropic.com/v1"
    assert rows_containing(OPENAI["api_key"]) == rows_containing(ANTHROPIC["api_key"]) == []


@pytest.mark.django_db
def test_existing_names_are_left_unchanged(settings, make_upstream):
    make_upstream(name="openai", api_key="sk-the-existing-one-0000")
    out = _import(settings, [OPENAI, ANTHROPIC])
    assert out == "Imported 1 upstream(s); 1 already existed and were left unchanged.\n"
    assert crypto.decrypt(Upstream.objects.get(name="openai").secret_encrypted) == (
        "sk-the-existing-one-0000"
    )


@pytest.mark.django_db
def test_if_empty_imports_only_into_an_empty_table(settings, make_upstream):
    make_upstream(name="manual")
    out = _import(settings, [OPENAI], "--if-empty")
    assert "Upstreams exist already; UPSTREAMS not imported (--if-empty)." in out
    assert list(Upstream.objects.values_list("name", flat=True)) == ["manual"]


@pytest.mark.django_db
def test_unset_upstreams_is_not_an_error(settings):
    assert _import(settings, "") == "UPSTREAMS is not set; nothing to import.\n"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"name": "openai",', "UPSTREAMS: is not valid JSON (line 1, column"),
        ({"name": "openai"}, "must be a JSON list of objects"),
        ([OPENAI, "oops"], "entry 1: entry: must be an object"),
        ([OPENAI, {**ANTHROPIC, "api_key": None} | {"name": "bad"}], "entry 1 (bad): api_key"),
        (
            [OPENAI, {k: v for k, v in ANTHROPIC.items() if k != "api_key"}],
            "entry 1 (anthropic): api_key: is required",
        ),
        ([{**ANTHROPIC, "colour": "red"}], "entry 0 (anthropic): colour: is not a known field"),
        (
            [{**ANTHROPIC, "provider": "mistral"}],
            "provider: Must be one of: openai, anthropic, azure.",
        ),
        (
            [{**ANTHROPIC, "base_url": "https://user:pw@x.example/v1"}],
            "Must not contain credentials",
        ),
        ([OPENAI, {**ANTHROPIC, "name": "openai"}], "names repeat within UPSTREAMS"),
        ([OPENAI, {**ANTHROPIC, "is_default": True}], "at most one entry may be the default"),
    ],
)
def test_a_bad_value_or_entry_is_a_clear_error_and_nothing_is_imported(settings, value, message):
    with pytest.raises(CommandError) as failure:
        _import(settings, value)
    text = str(failure.value)
    assert text.startswith("UPSTREAMS not imported: ")
    assert message in text
    assert OPENAI["api_key"] not in text and ANTHROPIC["api_key"] not in text
    assert not Upstream.objects.exists()  # the valid entries before it were not kept either


def test_from_the_shell(transactional_db, gateway_env):
    env = {**gateway_env, "UPSTREAMS": json.dumps([OPENAI, {**ANTHROPIC, "provider": "x"}])}

    def run(*args):
        return manage_py("import_upstreams", *args, env=env)

    help_text = run("--help")
    assert help_text.returncode == 0 and "--if-empty" in help_text.stdout
    bad = run()
    assert bad.returncode == 1
    assert "entry 1 (anthropic): provider" in bad.stderr
    assert OPENAI["api_key"] not in bad.stderr + bad.stdout
    assert not Upstream.objects.exists()
    env["UPSTREAMS"] = json.dumps([OPENAI, ANTHROPIC])
    good = run("--if-empty")
    assert good.returncode == 0 and "Imported 2 upstream(s)" in good.stdout
    assert Upstream.objects.count() == 2


def _import_file(tmp_path, entries, *args):
    path = tmp_path / "upstreams.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_upstreams", "--file", str(path), *args, stdout=out, stderr=err)
    return str(path), out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_file_dry_run_says_what_would_happen_and_writes_nothing(tmp_path, make_upstream):
    make_upstream(name="anthropic")
    _, out, err = _import_file(tmp_path, [OPENAI, ANTHROPIC], "--dry-run")
    assert out == (
        "Would import 1 upstream(s): openai; 1 already exist and would be left unchanged "
        "(anthropic). Dry run: nothing imported.\n"
    )
    assert err == ""
    assert list(Upstream.objects.values_list("name", flat=True)) == ["anthropic"]
    _, out, _ = _import_file(tmp_path, [OPENAI, ANTHROPIC])
    assert out.startswith("Imported 1 upstream(s); 1 already existed")
    assert Upstream.objects.get(name="openai").base_url == OPENAI["base_url"]


@pytest.mark.django_db
def test_a_file_error_names_the_file(tmp_path):
    path, *_ = _import_file(tmp_path, [])
    with pytest.raises(CommandError, match=r"upstreams.json not imported: .*is not valid JSON"):
        _import_file(tmp_path, "[{")
    with pytest.raises(CommandError, match="cannot be read"):
        call_command("import_upstreams", "--file", path + ".missing", stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize("base_url", ["https://api.openai.com", "https://api.openai.com/"])
def test_a_base_url_without_version_segment_is_imported_with_a_warning(tmp_path, base_url):
    _, out, err = _import_file(tmp_path, [{**OPENAI, "base_url": base_url}], "--dry-run")
    assert err.startswith(f"warning: openai: base_url {base_url!r} has no version segment")
    assert "https://api.openai.com/v1" in err
    assert out.startswith("Would import 1 upstream(s): openai")
    _, _, err = _import_file(tmp_path, [OPENAI])  # with /v1: nothing to say
    assert err == ""
