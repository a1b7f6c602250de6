"""Publish → outbox → dispatch → a real HTTP receiver, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import auth, new_incident, post_update, token_for, wait_for


def test_published_update_reaches_partner_webhook_signed(app_factory, receiver):
    with TestClient(
        app_factory(
            channels={
                "webhook": {
                    "secret": "test-webhook-secret",
                    "urls": f"{receiver.url}/hook",
                    "allow_private_addresses": True,
                }
            }
        )
    ) as client:
        officer = token_for(client.app, "officer")
        incident = new_incident(client, officer)
        update = post_update(
            client,
            officer,
            incident["id"],
            body={"nl": "Dijk bij Mook versterkt.", "en": "Dike reinforced."},
        )
        assert update["state"] == "published"

        wait_for(lambda: receiver.state.received)
        received = receiver.state.received[0]
        assert received.signature_ok
        assert received.document["id"] == update["id"]
        assert received.document["body"]["nl"] == "Dijk bij Mook versterkt."
        assert received.delivery_id.isdigit()

        counts = wait_for(
            lambda: (
                (
                    c := client.get(
                        f"/api/v1/updates/{update['id']}/deliveries", headers=auth(officer)
                    ).json()
                )
                .get("webhook", {})
                .get("delivered")
                and c.get("platform", {}).get("delivered")
                and c
            )
        )
        assert counts == {"webhook": {"delivered": 1}, "platform": {"delivered": 1}}
