"""Web Push with VAPID: ``PushChannel`` ("push").

Reads ``BROADCAST_VAPID_PRIVATE_KEY``, ``BROADCAST_VAPID_SUBJECT`` and
``BROADCAST_PUSH_ALLOW_PRIVATE_ADDRESSES``. Modules: ``channel`` (settings, render, send, error
classification), ``crypto`` (keys, subscriptions, ``aes128gcm``, VAPID tokens).
"""

from channels.push.channel import PushChannel, PushSettings

__all__ = ["PushChannel", "PushSettings"]
