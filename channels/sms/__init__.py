"""SMS and WhatsApp through Twilio: ``SmsChannel`` ("sms") and ``WhatsAppChannel`` ("whatsapp").

Both read ``BROADCAST_TWILIO_*``. Modules: ``channel`` (settings, render, send, error
classification), ``numbers`` (E.164 normalisation), ``inbound`` (signed webhooks: status
callbacks and residents' replies).
"""

from channels.sms.channel import SmsChannel, TwilioSettings, WhatsAppChannel, WhatsAppSettings

__all__ = ["SmsChannel", "TwilioSettings", "WhatsAppChannel", "WhatsAppSettings"]
