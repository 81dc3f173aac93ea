"""The signed XML columns compressed with LZ4 instead of PostgreSQL's default pglz.

A batch of 500 facturas writes about 2.5 MB of XML twice (the DTEs and their envelope); pglz
spent about 40 ms of server time on it, LZ4 a few. Reading a document back (download, PDF,
resend) decompresses faster too. Only the catalogue changes: values stored before keep pglz
until rewritten, and both stay readable. PostgreSQL 14 or newer built with LZ4 (the official
images and Debian's are); elsewhere, and on SQLite, nothing is done.
"""

import logging

from django.db import NotSupportedError, migrations, transaction

log = logging.getLogger(__name__)

COLUMNS = (
    ("dte_dte", "xml"),
    ("dte_envelope", "xml"),
    ("dte_receivedenvelope", "xml"),
    ("dte_receiveddte", "xml"),
)


def _set_compression(method):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or connection.pg_version < 140000:
            return
        quote = connection.ops.quote_name
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                for table, column in COLUMNS:
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} "
                        f"SET COMPRESSION {method}"
                    )
        except NotSupportedError as exc:  # a server built without LZ4: pglz stays
            log.warning("XML columns keep pglz: %s", exc)

    return run


class Migration(migrations.Migration):
    dependencies = [("dte", "0016_dte_collect")]

    operations = [
        migrations.RunPython(_set_compression("lz4"), _set_compression("pglz"), elidable=True),
    ]
