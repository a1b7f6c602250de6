"""Property-based fuzzing of the REST API against its own OpenAPI document (schemathesis).

The app runs in uvicorn on 127.0.0.1 on a SQLite file seeded with the demo flood (so incident,
update, question, subscriber and feed ids exist), with the SMS channel on against the Twilio
stand-in (so the sign-up endpoints work), and every documented operation is called with generated
valid and invalid input as an officer, a volunteer and an anonymous caller. Each call must answer
without a 500, with a status the document lists for that operation, with a body and headers
matching it, and must reject input the document rules out. Reproducible: hypothesis is
derandomized and has no deadline.

Not in the document, so not fuzzed here: the public HTML pages and the console (tested in
tests/web and tests/console), the SSE stream (it never ends), /metrics (Prometheus text, not
JSON), and the providers' webhooks (signed requests; tests/channels send real ones).
"""

from __future__ import annotations

import shutil
import socket

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from broadcast import demo
from broadcast.app import create_app
from broadcast.settings import Settings
from channels.platform import PlatformChannel
from channels.sms import SmsChannel
from channels.webhook import WebhookChannel
from tests.conftest import ROOT
from tests.fakes.server import FakeServer
from tests.fakes.twilio import FakeTwilio
from tests.support import sms_config

EXAMPLES = 30  # per operation and caller: ~40 operations x 3 callers, about a minute in all


@schemathesis.check
def no_internal_error(ctx, response, case) -> None:
    """A 500 is a crash; another 5xx is fine where documented (503: a channel that is off)."""
    if response.status_code == 500:
        raise AssertionError(f"500 internal error: {response.text[:200]}")


CHECKS = [
    no_internal_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,  # a 2xx with a token must become a refusal without one or with a wrong one
]


@pytest.fixture(scope="module")
def twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def loopback_only():
    """Generated feed addresses must never reach the network, also when a feed the fuzzer added
    is polled between two tests: while the service runs, only loopback names resolve and only
    loopback addresses connect (the suite's own guard holds during each test only)."""
    resolve, connect = socket.getaddrinfo, socket.socket.connect
    loopback = ("localhost", "127.0.0.1", "::1")

    def resolve_loopback(host, *args, **kwargs):
        if host not in loopback:
            raise socket.gaierror(socket.EAI_NONAME, "not resolved in the fuzz test")
        return resolve(host, *args, **kwargs)

    def connect_loopback(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in loopback:
            raise OSError("only loopback in the fuzz test")
        return connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", resolve_loopback)
        patch.setattr(socket.socket, "connect", connect_loopback)
        yield


@pytest.fixture(scope="module")
def service(tmp_path_factory, _sqlite_template, twilio, loopback_only):
    """The app on a demo-seeded SQLite file; ``(url, {role: token})``."""
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copy(_sqlite_template, folder / "broadcast.db")
    config = Settings(
        database_url=f"sqlite:///{folder / 'broadcast.db'}",
        media_dir=folder / "media",
        public_url="http://127.0.0.1:8000",
        areas_file=ROOT / "config" / "areas.toml",
        log_json=False,
        signup_secret="test-signup-key",
        channels={"webhook": {"secret": "fuzz"}, "sms": sms_config(twilio)},
    )
    lines = demo.seed(config).splitlines()
    tokens = {
        role: next(line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"{role} "))
        for role in ("officer", "volunteer")
    }
    channels = [PlatformChannel, WebhookChannel, SmsChannel]
    app = create_app(config, dispatch=False, channel_classes=channels)
    with FakeServer(app, lifespan="on") as server:
        yield server.url, tokens | {"anonymous": None}


@pytest.fixture
def fuzz_schema(service):
    url, _ = service
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.config.generation.update(with_security_parameters=False)  # each test sends its own
    return schema


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same cases on every run: CI is reproducible
    deadline=None,  # no wall-clock dependence on a busy machine
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],  # report the first failing case, unshrunk
)


def fuzz(operation, call) -> str | None:
    """Run generated valid and invalid cases of one operation; the first failure, if any."""
    modes = [operation.as_strategy(mode) for mode in GenerationMode]

    @FUZZ
    @given(case=st.one_of(modes))
    def run(case):
        call(case)

    try:
        run()
    except (Exception, BaseExceptionGroup) as failure:
        return f"{operation.label}: {str(failure)[:2000]}"
    return None


@pytest.mark.parametrize("role", ["officer", "volunteer", "anonymous"])
def test_api_keeps_its_contract(fuzz_schema, service, role):
    url, tokens = service
    token = {"Authorization": f"Bearer {tokens[role]}"} if tokens[role] else {}
    called = set()

    def call(case):
        case.call_and_validate(base_url=url, headers=token, checks=CHECKS, timeout=60)
        called.add(case.operation.label)

    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    failures = [f for f in (fuzz(op, call) for op in operations) if f]
    assert not failures, "\n\n".join(failures)
    assert called == {op.label for op in operations}  # none skipped
