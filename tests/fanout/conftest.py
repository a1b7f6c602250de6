"""The fan-out tests use ``store`` (tests/conftest.py): the application's database and channels,
without a dispatcher."""
