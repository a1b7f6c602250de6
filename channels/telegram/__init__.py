"""The Telegram channel adapter (entry point ``channels.telegram:TelegramChannel``)."""

from channels.telegram.channel import TelegramChannel, TelegramSettings

__all__ = ["TelegramChannel", "TelegramSettings"]
