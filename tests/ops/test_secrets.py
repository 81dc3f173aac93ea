"""Finding 2 of the security review: no insecure defaults for the keys. Outside DEBUG and the
embedded SQLite database the app refuses to start without SECRET_KEY and FIELD_ENCRYPTION_KEY;
the encryption key is never derived from SECRET_KEY; keys rotate without downtime."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from dte import vault
from ops import secrets

ROOT = Path(__file__).resolve().parents[2]


def test_a_deployment_without_keys_refuses_to_start(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY and FIELD_ENCRYPTION_KEY"):
        secrets.resolve({}, debug=False, embedded=False, var_dir=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY must be set"):
        secrets.resolve({"SECRET_KEY": "x" * 50}, debug=False, embedded=False, var_dir=tmp_path)
    public = {"SECRET_KEY": vault.PUBLIC_DEVELOPMENT_KEY, "FIELD_ENCRYPTION_KEY": "k"}
    with pytest.raises(ImproperlyConfigured, match="public development key"):
        secrets.resolve(public, debug=False, embedded=True, var_dir=tmp_path)
    assert not (tmp_path / secrets.LOCAL_FILE).exists()  # nothing made for a deployment


def test_settings_refuse_to_load_on_postgresql_without_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY")}
    env.update(
        DEBUG="0",
        DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
        VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="ops.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "must be set" in result.stderr


def test_the_embedded_database_gets_keys_of_its_own_machine(tmp_path):
    first = secrets.resolve({}, debug=False, embedded=True, var_dir=tmp_path)
    again = secrets.resolve({}, debug=False, embedded=True, var_dir=tmp_path)
    other = secrets.resolve({}, debug=False, embedded=True, var_dir=tmp_path / "other")
    assert first == again and first.local
    assert first.secret_key != vault.PUBLIC_DEVELOPMENT_KEY
    assert first.secret_key != other.secret_key  # random per machine, never public
    Fernet(first.field_encryption_key)  # a real key
    mode = stat.S_IMODE((tmp_path / secrets.LOCAL_FILE).stat().st_mode)
    assert mode == 0o600
    given = {"SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEY": first.field_encryption_key}
    assert not secrets.resolve(given, debug=False, embedded=True, var_dir=tmp_path).local


def test_check_deploy_flags_keys_from_the_local_file(settings):
    from ops.checks import secrets_set_in_the_environment

    settings.SECRETS_FROM_LOCAL_FILE = True
    assert [e.id for e in secrets_set_in_the_environment(None)] == ["ops.E001"]
    settings.SECRETS_FROM_LOCAL_FILE = False
    assert secrets_set_in_the_environment(None) == []


def test_the_encryption_key_is_never_derived_from_secret_key(settings):
    settings.SECRETS_FROM_LOCAL_FILE = False
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    token = vault.encrypt(b"clave del certificado")
    settings.SECRET_KEY = "another-secret-key-entirely" * 2
    assert vault.decrypt(token) == b"clave del certificado"  # SECRET_KEY plays no part
    # What an old version wrote with the public development key: not readable in a deployment
    legacy = Fernet(vault.legacy_development_key()).encrypt(b"viejo")
    with pytest.raises(vault.VaultError):
        vault.decrypt(legacy)
    settings.SECRETS_FROM_LOCAL_FILE = True  # ... readable on the laptop that made it
    assert vault.decrypt(legacy) == b"viejo"


@pytest.mark.django_db
def test_rotation_re_encrypts_every_secret_without_downtime(issuer, settings):
    from dte.keyring import load_caf, load_certificate
    from dte.models import Caf, Certificate

    settings.SECRETS_FROM_LOCAL_FILE = False
    old = settings.FIELD_ENCRYPTION_KEY.split(",")[0]
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"  # the switch: both readable
    call_command("rotate_encryption_key", "--check")
    call_command("rotate_encryption_key")
    settings.FIELD_ENCRYPTION_KEY = new  # the old key dropped
    call_command("rotate_encryption_key", "--check")
    certificate = Certificate.objects.get(company=issuer)
    load_certificate.cache_clear()
    load_caf.cache_clear()
    assert load_certificate(certificate.pk, certificate.fingerprint).rut
    caf = Caf.objects.filter(company=issuer).first()
    assert load_caf(caf.pk, bytes(caf.caf_xml)).folio_desde == 1
    settings.FIELD_ENCRYPTION_KEY = old  # only the old one: nothing reads any more
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No se pudo descifrar"):
        call_command("rotate_encryption_key", "--check")
