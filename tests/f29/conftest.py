import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded RCV files (RcvImport.file) go to this test's temporary directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
