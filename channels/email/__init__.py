"""E-mail through SMTP (``aiosmtplib``): ``EmailChannel`` ("email").

Modules: ``channel`` (settings, render, send), ``classify`` (SMTP answers as channel errors),
``links`` (the one-click unsubscribe router, RFC 8058), ``templates/`` (the text and HTML parts).
"""

from channels.email.channel import EmailChannel, EmailSettings

__all__ = ["EmailChannel", "EmailSettings"]
