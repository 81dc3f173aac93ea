"""`manage.py check --deploy`: what a deployment must not run with."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def secrets_set_in_the_environment(app_configs, **kwargs):
    if getattr(settings, "SECRETS_FROM_LOCAL_FILE", False):
        return [
            checks.Error(
                "SECRET_KEY or FIELD_ENCRYPTION_KEY comes from this machine's local file "
                "(var/local-secrets.json), not from the environment.",
                hint="Set both in the deployment's environment (deploy/env/app.env).",
                id="ops.E001",
            )
        ]
    return []
